// Unconfirmed request ids (identity.ts) shared through a JetStream KV bucket of the EventSource,
// so the sender's retry reuses the id even when it reaches another replica or the process that
// answered 503 has been restarted (a rolling update, a crash). An id is written as soon as its
// request's outcome becomes unknown (identity.ts: a publish not confirmed within a moment), on the
// same connection as the event and after it, and deleted again when its sender got a 200. Writes
// are pipelined (none waits for another's answer), so with the bus paused every record still
// reaches the connection right behind its event and lands with it when the bus resumes; a write
// that failed is sent again. Every process watches the bucket (start waits, briefly, for the
// records already there), and `flush()` on stop sends what is still waiting. The bucket's TTL is
// the stream's duplicates window: past it the bus would not drop the repeat anyway.
import { jetstreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { followKv, openKv } from '../../bus/kv.ts';
import { webhookIdsBucket } from '../../bus/source-state.ts';
import { type BusRef, eventStreamName } from '../../bus/subjects.ts';
import type { Logger } from '../../observability/logger.ts';
import type { UnconfirmedIds } from './identity.ts';

export interface SharedIds {
  /** Sends every write not confirmed yet; resolves once all are confirmed or after `timeoutMs`. */
  flush(timeoutMs?: number): Promise<void>;
  stop(): void;
}

/** Keys are base64url sha256 (identity.ts), already valid KV keys. */
const RETRY_MS = 1_000;
/** Longest wait at start for the records already in the bucket (ms). */
const LOAD_MS = 3_000;

type Write = { put: string; expiresAt: number } | { put: undefined };

/** Pipelined puts and deletes, at most one in flight per key, failed ones sent again. */
function writer(kv: KV) {
  const pending = new Map<string, Write>();
  const sending = new Set<string>();
  const settled: Array<() => void> = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const wakeFlushers = () => {
    if (pending.size === 0) for (const f of settled.splice(0)) f();
  };
  const retryLater = () => {
    if (timer || stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      for (const k of pending.keys()) send(k);
    }, RETRY_MS);
    timer.unref();
  };
  const send = (key: string): void => {
    const w = pending.get(key);
    if (!w || sending.has(key)) return;
    if (w.put !== undefined && w.expiresAt <= Date.now()) {
      pending.delete(key);
      wakeFlushers();
      return;
    }
    sending.add(key);
    const op = w.put !== undefined ? kv.put(key, w.put) : kv.delete(key);
    op.then(() => {
      if (pending.get(key) === w) pending.delete(key);
    }, retryLater).finally(() => {
      sending.delete(key);
      if (pending.has(key) && pending.get(key) !== w) send(key);
      wakeFlushers();
    });
  };
  return {
    pending,
    write(key: string, w: Write) {
      pending.set(key, w);
      send(key);
    },
    /** Resolves once nothing is pending, or after `ms`; true when nothing is. */
    async drain(ms: number): Promise<boolean> {
      for (const k of pending.keys()) send(k);
      if (pending.size === 0) return true;
      let t: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => settled.push(r)),
        new Promise<void>((r) => {
          t = setTimeout(r, ms);
        }),
      ]);
      clearTimeout(t);
      return pending.size === 0;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/**
 * Opens (creating if needed) `bucket` with entries expiring after `ttlMs`, loads and watches what
 * other processes remembered, and writes what `ids` remembers (and forgets) from now on.
 */
export async function shareIds(
  nc: NatsConnection,
  bucket: string,
  ttlMs: number,
  ids: UnconfirmedIds,
  log: Logger,
): Promise<SharedIds> {
  const kv: KV = await openKv(nc, bucket, { ttl: ttlMs });
  const w = writer(kv);
  const unwatch = ids.watch({
    remember: (e) => w.write(e.key, { put: e.id, expiresAt: e.expiresAt }),
    forget: (key) => w.write(key, { put: undefined }),
  });

  // Followed with stored-message gets, not a KV watch: an EventSource's credential may not create
  // the consumer a watch needs (see followKv in src/bus/kv.ts). A retry arriving right after a
  // restart must find the ids the previous process left, so start waits (briefly) to catch up.
  const watcher = followKv(
    nc,
    bucket,
    (e) => ids.adopt({ key: e.key, id: e.string(), expiresAt: e.created.getTime() + ttlMs }),
    500,
    (key) => ids.drop(key),
  );
  let t: NodeJS.Timeout | undefined;
  await Promise.race([
    watcher.caughtUp.catch((err: Error) =>
      log.warn({ err: err.message }, 'webhook: reading shared request ids failed; retrying'),
    ),
    new Promise<void>((r) => {
      t = setTimeout(r, LOAD_MS);
    }),
  ]);
  clearTimeout(t);

  return {
    async flush(timeoutMs = 2_000) {
      if (!(await w.drain(timeoutMs))) {
        log.warn(
          { unconfirmed: w.pending.size },
          'webhook: the bus did not confirm every shared request id (they were sent right behind their events)',
        );
      }
    },
    stop() {
      w.stop();
      unwatch();
      watcher.stop();
    },
  };
}

/** The stream's duplicates window (ms), or 2 minutes when it cannot be read. */
async function duplicatesWindowMs(nc: NatsConnection, bus: BusRef): Promise<number> {
  try {
    const info = await (await jetstreamManager(nc)).streams.info(eventStreamName(bus));
    const ns = info.config.duplicate_window;
    return ns ? Math.round(ns / 1e6) : 120_000;
  } catch {
    return 120_000;
  }
}

/**
 * Sets `ids`' lifetime to the stream's duplicates window (or `o.windowMs`) and shares them through
 * the EventSource's KV bucket; on failure logs and returns undefined (ids then live in this process
 * only).
 */
export async function shareUnconfirmed(
  o: { nc: NatsConnection; bus: BusRef; namespace: string; name: string; log: Logger; windowMs?: number },
  ids: UnconfirmedIds,
): Promise<SharedIds | undefined> {
  ids.ttlMs = o.windowMs ?? (await duplicatesWindowMs(o.nc, o.bus));
  try {
    return await shareIds(o.nc, webhookIdsBucket(o.namespace, o.name), ids.ttlMs, ids, o.log);
  } catch (err) {
    o.log.warn(
      { err: (err as Error).message },
      'webhook: cannot share unconfirmed request ids on the bus; a retry after 503 is deduplicated only by this process',
    );
    return undefined;
  }
}
