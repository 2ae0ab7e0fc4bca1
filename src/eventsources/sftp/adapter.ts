// `sftp`: polls a directory on an SFTP server (ssh2-sftp-client) every `pollIntervalDuration`
// (default 10 s) and reports files that appeared (CREATE) or vanished (REMOVE) since the last
// listing, as upstream does. The last listing is kept in the bus (JetStream KV, one key per
// file, see state.ts; bucket made by the controller), so a restart reports what changed while
// the source was down, and the first run only records a baseline. A change is reported with the
// id "<op>:<path>:<modified>:<size>" and saved right after its event is stored, so a crash in
// between reports that one change again, with the same id (stored once within the bus's
// duplicates window), and a huge directory progresses change by change. While the bus refuses,
// the event is retried with backoff before the listing moves on; one refused for good is
// counted, logged and passed. Wrong credentials fail the start with a clear error; an
// unreachable server is retried at the next poll (with backoff).
import { posix } from 'node:path';
import { RE2JS } from 're2js';
import SftpClient from 'ssh2-sftp-client';
import type { SFTPEventSource } from '../../api/eventsource.ts';
import { parseDurationMs } from '../../api/stream-config.ts';
import { openKv } from '../../bus/kv.ts';
import { sftpBucket } from '../../bus/source-state.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { Backoff, pause, reportRefusal, storeHeld } from '../retry.ts';
import { type Listing, ListingState } from './state.ts';

interface Change {
  name: string;
  op: 'CREATE' | 'REMOVE';
  id: string;
}

/** What changed between two listings (pure), in name order. */
export function diffListings(before: Listing, after: Listing): Change[] {
  const out: Change[] = [];
  for (const name of Object.keys(after).sort()) {
    const f = after[name]!;
    if (!before[name]) out.push({ name, op: 'CREATE', id: `CREATE:${name}:${f.modified}:${f.size}` });
  }
  for (const name of Object.keys(before).sort()) {
    const f = before[name]!;
    if (!after[name]) out.push({ name, op: 'REMOVE', id: `REMOVE:${name}:${f.modified}:${f.size}` });
  }
  return out;
}

async function connectOptions(ctx: SourceContext<SFTPEventSource>) {
  const spec = ctx.spec;
  const address = (await ctx.resolveSecret(spec.address)).trim();
  const at = address.lastIndexOf(':');
  return {
    host: at > 0 ? address.slice(0, at) : address,
    port: at > 0 ? Number(address.slice(at + 1)) : 22,
    ...(spec.username ? { username: (await ctx.resolveSecret(spec.username)).trim() } : {}),
    ...(spec.password ? { password: (await ctx.resolveSecret(spec.password)).trim() } : {}),
    ...(spec.sshKeySecret ? { privateKey: await ctx.resolveSecret(spec.sshKeySecret) } : {}),
    readyTimeout: 10_000,
    retries: 0,
  };
}

const isAuthError = (err: unknown) =>
  /authentication|auth fail|permission denied|all configured authentication methods failed/i.test(
    (err as Error).message ?? '',
  );

export const adapter: SourceAdapter<SFTPEventSource> = {
  type: 'sftp',
  exclusive: true,
  async start(ctx) {
    const spec = ctx.spec;
    const dir = spec.watchPathConfig.directory;
    const pattern = spec.watchPathConfig.pathRegexp
      ? RE2JS.compile(spec.watchPathConfig.pathRegexp)
      : undefined;
    const matches = (name: string) =>
      pattern ? pattern.matcher(name).find() : name === spec.watchPathConfig.path;
    const ops = new Set(
      (spec.eventType ?? '')
        .split('|')
        .map((s) => s.trim().toUpperCase())
        .filter(Boolean),
    );
    const intervalMs = (spec.pollIntervalDuration && parseDurationMs(spec.pollIntervalDuration)) || 10_000;
    const options = await connectOptions(ctx);
    const state = new ListingState(
      await openKv(ctx.nc, sftpBucket(ctx.namespace, ctx.eventSourceName)),
      ctx.eventName,
    );
    let sftp: SftpClient | undefined;

    const list = async (): Promise<Listing> => {
      if (!sftp) {
        const c = new SftpClient();
        await c.connect(options);
        sftp = c;
      }
      const out: Listing = {};
      for (const f of await sftp.list(dir)) {
        if (f.type === '-' && matches(f.name)) out[f.name] = { size: f.size, modified: f.modifyTime };
      }
      return out;
    };
    const drop = async () => {
      const c = sftp;
      sftp = undefined;
      await c?.end().catch(() => {});
    };

    try {
      await list();
    } catch (err) {
      await drop();
      if (isAuthError(err))
        throw new Error(
          `sftp ${options.host}:${options.port}: ${(err as Error).message} (check username, password or sshKeySecret)`,
        );
      ctx.log.warn(
        { err: (err as Error).message },
        'sftp: cannot list the directory; retrying at the next poll',
      );
    }
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, ctx.signal]);

    /** Publishes one change (if its op is watched), then saves it; false when stopping. */
    const publish = async (c: Change, f: Listing[string]): Promise<boolean> => {
      if (!ops.size || ops.has(c.op)) {
        const data = {
          name: posix.join(dir, c.name),
          op: c.op,
          ...(spec.metadata ? { metadata: spec.metadata } : {}),
        };
        const r = await storeHeld(() => ctx.emit(data, { id: c.id }), {
          signal,
          onHold: (err, waitMs) =>
            ctx.log.warn(
              { ...data, err: (err as Error).message, retryInMs: waitMs },
              'sftp: event not stored; retrying',
            ),
        });
        if (r.outcome === 'stopped') return false;
        if (r.outcome === 'refused') reportRefusal(ctx, { id: c.id }, r.err, 'passed');
      }
      if (c.op === 'CREATE') await state.saveFile(c.name, f);
      else await state.removeFile(c.name);
      return true;
    };

    /** One poll: baseline on the first, else every change published and saved in turn. */
    let saved: Listing | undefined;
    const poll = async (): Promise<boolean> => {
      const now = await list();
      saved ??= await state.load();
      if (!saved) {
        await state.saveBaseline(now);
        saved = now;
        return true;
      }
      for (const c of diffListings(saved, now)) {
        const f = c.op === 'CREATE' ? now[c.name]! : saved[c.name]!;
        if (!(await publish(c, f))) return false;
        if (c.op === 'CREATE') saved[c.name] = f;
        else delete saved[c.name];
      }
      return true;
    };

    const loop = (async () => {
      const backoff = new Backoff(intervalMs, Math.max(intervalMs, 60_000));
      while (!signal.aborted) {
        try {
          if (!(await poll())) break;
          backoff.reset();
          await pause(intervalMs, signal);
        } catch (err) {
          if (signal.aborted) break;
          saved = undefined; // read the bucket again: what was saved before the failure counts
          await drop();
          const wait = backoff.take();
          ctx.log.warn({ err: (err as Error).message, retryInMs: wait }, 'sftp: poll failed; retrying');
          await pause(wait, signal);
        }
      }
    })();
    ctx.log.info({ host: options.host, dir, intervalMs }, 'sftp: polling');
    return {
      async stop() {
        stop.abort();
        await loop;
        await drop();
      },
    };
  },
};
