// `file`: changes of files in one directory (one file by `path`, or all matching `pathRegexp`).
// Node's fs.watch only says "something changed", so each notification (or, with `polling`, a
// timer every second) triggers a scan of the directory that is compared with the previous one:
// a new name is CREATE, a vanished one REMOVE, a vanished name whose inode reappears under a new
// name is RENAME (old name) plus CREATE (new name), a changed modification time WRITE, and a
// changed mode with the same modification time CHMOD. Several writes between two scans are
// reported as one WRITE. Payload as upstream: {name, op, metadata}.
import { type FSWatcher, watch } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter } from '../adapter.ts';

interface Seen {
  ino: number;
  mtimeMs: number;
  mode: number;
}

type Op = 'CREATE' | 'WRITE' | 'REMOVE' | 'RENAME' | 'CHMOD';

/** The changes between two scans (pure). */
export function diffScans(
  before: Map<string, Seen>,
  after: Map<string, Seen>,
): Array<{ name: string; op: Op }> {
  const out: Array<{ name: string; op: Op }> = [];
  const appeared = [...after.keys()].filter((n) => !before.has(n));
  const renamedTo = new Map<string, string>();
  for (const [name, old] of before) {
    if (after.has(name)) continue;
    const to = appeared.find((n) => after.get(n)!.ino === old.ino && !renamedTo.has(n));
    if (to) {
      renamedTo.set(to, name);
      out.push({ name, op: 'RENAME' });
    } else {
      out.push({ name, op: 'REMOVE' });
    }
  }
  for (const name of appeared) out.push({ name, op: 'CREATE' });
  for (const [name, now] of after) {
    const old = before.get(name);
    if (!old) continue;
    if (now.mtimeMs !== old.mtimeMs || now.ino !== old.ino) out.push({ name, op: 'WRITE' });
    else if (now.mode !== old.mode) out.push({ name, op: 'CHMOD' });
  }
  return out;
}

export const adapter: SourceAdapter<FileEventSource> = {
  type: 'file',
  exclusive: true,
  async start(ctx) {
    const spec = ctx.spec;
    const dir = spec.watchPathConfig.directory;
    const pattern = spec.watchPathConfig.pathRegexp ? new RegExp(spec.watchPathConfig.pathRegexp) : undefined;
    const matches = (name: string) => (pattern ? pattern.test(name) : name === spec.watchPathConfig.path);
    const ops = new Set(
      (spec.eventType ?? '')
        .split('|')
        .map((s) => s.trim().toUpperCase())
        .filter(Boolean),
    );

    const scan = async (): Promise<Map<string, Seen>> => {
      const out = new Map<string, Seen>();
      for (const name of await readdir(dir)) {
        if (!matches(name)) continue;
        try {
          const s = await stat(join(dir, name));
          if (s.isFile()) out.set(name, { ino: s.ino, mtimeMs: s.mtimeMs, mode: s.mode });
        } catch {
          // vanished between readdir and stat: the next scan reports it
        }
      }
      return out;
    };

    let known = await scan();
    let running: Promise<void> = Promise.resolve();
    let again = false;
    let scanning = false;
    const rescan = () => {
      if (scanning) {
        again = true;
        return;
      }
      scanning = true;
      running = (async () => {
        do {
          again = false;
          let now: Map<string, Seen>;
          try {
            now = await scan();
          } catch (err) {
            ctx.log.warn({ dir, err: (err as Error).message }, 'file: cannot scan the directory');
            break;
          }
          for (const change of diffScans(known, now)) {
            if (ops.size && !ops.has(change.op)) continue;
            const data = {
              name: join(dir, change.name),
              op: change.op,
              ...(spec.metadata ? { metadata: spec.metadata } : {}),
            };
            for (let backoff = 500; ; backoff = Math.min(backoff * 2, 30_000)) {
              try {
                await ctx.emit(data);
                break;
              } catch (err) {
                if (ctx.signal.aborted) return;
                ctx.log.warn({ ...data, err: (err as Error).message }, 'file: event not stored; retrying');
                await new Promise((r) => setTimeout(r, backoff));
              }
            }
          }
          known = now;
        } while (again && !ctx.signal.aborted);
        scanning = false;
      })();
    };

    let watcher: FSWatcher | undefined;
    let timer: NodeJS.Timeout | undefined;
    if (spec.polling) timer = setInterval(rescan, 1000);
    else watcher = watch(dir, () => rescan());
    ctx.log.info(
      {
        dir,
        path: spec.watchPathConfig.path,
        pathRegexp: spec.watchPathConfig.pathRegexp,
        polling: !!spec.polling,
      },
      'file: watching',
    );
    return {
      async stop() {
        watcher?.close();
        clearInterval(timer);
        await running;
      },
    };
  },
};
