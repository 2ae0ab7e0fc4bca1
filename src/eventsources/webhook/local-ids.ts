// Unconfirmed request ids (identity.ts) also kept in a local file, for the process that starts
// next on the same disk: `sluice dev` run again, or a container restarted in its pod (crash, OOM
// kill, failed liveness probe; an emptyDir survives that). The shared KV bucket (shared-ids.ts)
// is the memory every replica and every new pod reads; but while the bus is paused, what the
// bucket will hold is only what reaches it later, and a bus that resumes after the process
// exited may read just the beginning of that process's connection. The file is written (atomically,
// debounced) whenever the ambiguous entries change and on stop, and read at start.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Logger } from '../../observability/logger.ts';
import type { RememberedId, UnconfirmedIds } from './identity.ts';

const WRITE_AFTER_MS = 100;

export interface LocalIds {
  /** Writes the file now. */
  save(): void;
  stop(): void;
}

/** Loads `file` into `ids` (entries still valid) and keeps it up to date from now on. */
export function keepLocally(ids: UnconfirmedIds, file: string, log: Logger): LocalIds {
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as RememberedId[];
    let adopted = 0;
    for (const e of Array.isArray(saved) ? saved : []) {
      if (typeof e?.key !== 'string' || typeof e.id !== 'string' || typeof e.expiresAt !== 'number') continue;
      ids.adopt(e);
      adopted++;
    }
    if (adopted) log.info({ adopted, file }, 'webhook: request ids of the previous process loaded');
  } catch {
    // No file yet (or unreadable): nothing to load.
  }
  let timer: NodeJS.Timeout | undefined;
  let failed = false;
  const save = () => {
    clearTimeout(timer);
    timer = undefined;
    try {
      writeFileSync(`${file}.tmp`, JSON.stringify(ids.entries()));
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      if (!failed)
        log.warn({ err: (err as Error).message, file }, 'webhook: cannot keep request ids locally');
      failed = true;
    }
  };
  const later = () => {
    timer ??= setTimeout(save, WRITE_AFTER_MS);
    timer.unref();
  };
  const unwatch = ids.watch({ remember: later, forget: later });
  return {
    save,
    stop() {
      unwatch();
      if (timer) save();
    },
  };
}
