// Unconfirmed request ids (identity.ts) shared through a JetStream KV bucket of the EventSource,
// so the sender's retry reuses the id even when it reaches another replica or the process that
// answered 503 has been restarted (a rolling update, a crash). Each id is written when it is
// remembered (while the bus is down the write waits and is tried again), every process watches
// the bucket, and `flush()` on stop writes what is still waiting. The bucket's TTL is the stream's
// duplicates window: past it the bus would not drop the repeat anyway.
import { jetstreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { followKv, openKv } from '../../bus/kv.ts';
import { webhookIdsBucket } from '../../bus/source-state.ts';
import { type BusRef, eventStreamName } from '../../bus/subjects.ts';
import type { Logger } from '../../observability/logger.ts';
import type { RememberedId, UnconfirmedIds } from './identity.ts';

export interface SharedIds {
  /** Writes entries not stored yet; resolves within `timeoutMs` either way. */
  flush(timeoutMs?: number): Promise<void>;
  stop(): void;
}

/** Keys are base64url sha256 (identity.ts), already valid KV keys. */
const RETRY_MS = 1_000;

/**
 * Opens (creating if needed) `bucket` with entries expiring after `ttlMs`, loads and watches what
 * other processes remembered, and writes what `ids` remembers from now on.
 */
export async function shareIds(
  nc: NatsConnection,
  bucket: string,
  ttlMs: number,
  ids: UnconfirmedIds,
  log: Logger,
): Promise<SharedIds> {
  const kv: KV = await openKv(nc, bucket, { ttl: ttlMs });
  const pending = new Map<string, RememberedId>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const write = async (): Promise<void> => {
    for (const [key, e] of pending) {
      if (e.expiresAt <= Date.now()) {
        pending.delete(key);
        continue;
      }
      await kv.put(key, e.id);
      pending.delete(key);
    }
  };
  const schedule = () => {
    if (timer || stopped || pending.size === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      write().catch(schedule);
    }, RETRY_MS);
    timer.unref();
  };
  ids.onRemember = (e) => {
    pending.set(e.key, e);
    write().catch(schedule);
  };

  // Followed with stored-message gets, not a KV watch: an EventSource's credential may not create
  // the consumer a watch needs (see followKv in src/bus/kv.ts).
  const watcher = followKv(nc, bucket, (e) =>
    ids.adopt({ key: e.key, id: e.string(), expiresAt: e.created.getTime() + ttlMs }),
  );
  await watcher.caughtUp.catch((err: Error) =>
    log.warn({ err: err.message }, 'webhook: reading shared request ids failed; retrying'),
  );

  return {
    async flush(timeoutMs = 2_000) {
      let t: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        write().then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((r) => {
          t = setTimeout(() => r(false), timeoutMs);
        }),
      ]);
      clearTimeout(t);
      if (!done && pending.size) {
        log.warn({ unwritten: pending.size }, 'webhook: could not store every unconfirmed request id');
      }
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      ids.onRemember = undefined;
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
