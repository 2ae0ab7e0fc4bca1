// Key-value state on the bus (JetStream KV): trigger state (partial condition matches, kept
// across restarts) and the processed-set that keeps a redelivered or replayed event from firing a
// trigger twice.

import { createHash } from 'node:crypto';
import {
  DiscardPolicy,
  type JetStreamManager,
  jetstreamManager,
  type MsgRequest,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { type KV, type KvEntry, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { BusConnection } from './connection.ts';
import { isWrongLastSequence } from './errors.ts';
import type { KvGroupCommit } from './kv-group.ts';
import { type DesiredStream, type EnsureResult, ensureStream } from './streams.ts';

export interface KvOptions {
  /** Entries expire this long after their last write, in milliseconds (default: never). */
  ttl?: number;
  /** Values kept per key (default 1). */
  history?: number;
  replicas?: number;
}

/** How a bucket sluice owns is made: bounded, with a policy for when it is full. */
export interface KvBucketOptions extends KvOptions {
  /** Most bytes the bucket holds (the server reserves them); -1: none. */
  maxBytes: number;
  /**
   * When full: "new" refuses writes (state that must not vanish, e.g. partial matches), "old"
   * forgets the oldest keys first (a cache such as the processed set).
   */
  whenFull: 'refuse' | 'forget-oldest';
  /** Most consumers the bucket's stream takes (absent: no limit). */
  maxConsumers?: number;
}

/**
 * The stream behind KV bucket `bucket` (pure): what the nats.js KV client expects (subjects,
 * one value per key, rollups) with sluice's limits, and without direct gets, so reads go to the
 * leader and see every acknowledged write.
 */
export function kvStreamConfig(bucket: string, o: KvBucketOptions): DesiredStream {
  return {
    name: `KV_${bucket}`,
    subjects: [`$KV.${bucket}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: o.whenFull === 'forget-oldest' ? DiscardPolicy.Old : DiscardPolicy.New,
    max_msgs_per_subject: o.history ?? 1,
    max_bytes: o.maxBytes,
    max_age: Math.round((o.ttl ?? 0) * 1e6),
    max_msg_size: -1,
    num_replicas: o.replicas ?? 1,
    allow_rollup_hdrs: true,
    allow_direct: false,
    // Writes may be grouped into one atomic batch (kv-group.ts).
    allow_atomic: true,
    ...(o.maxConsumers !== undefined ? { max_consumers: o.maxConsumers } : {}),
  };
}

/**
 * Creates bucket `bucket`, or brings an existing one (e.g. made by an older sluice without
 * limits) in line with `o` in place. Throws like ensureStream.
 */
export function ensureKv(jsm: JetStreamManager, bucket: string, o: KvBucketOptions): Promise<EnsureResult> {
  return ensureStream(jsm, kvStreamConfig(bucket, o));
}

/**
 * Opens a bucket, creating it with the client's defaults if it does not exist (an existing
 * bucket is used as it is; buckets the controller owns are made with ensureKv).
 */
export async function openKv(
  connection: NatsConnection | BusConnection,
  bucket: string,
  opts: KvOptions = {},
): Promise<KV> {
  const nc = connection instanceof BusConnection ? connection.nc : connection;
  return new Kvm(nc).create(bucket, {
    ...(opts.ttl ? { ttl: opts.ttl } : {}),
    history: opts.history ?? 1,
    replicas: opts.replicas ?? 1,
  });
}

/**
 * Longest KV key kvKey makes (characters). A key is a subject token of every write and read, and
 * the server cuts the whole connection on a protocol line over its max_control_line (4 KiB by
 * default): a key made from event attributes (a 512-character CJK id is 4,608 characters
 * encoded) would drop every call and consumer of the process on each try.
 */
export const MAX_KV_KEY = 1024;

/**
 * Makes any string a valid KV key. Keys allow [-/_=.A-Za-z0-9] with "." separating tokens; every
 * other byte, "." and "=" become "=" + two hex digits, and "" becomes "=". An encoded key longer
 * than MAX_KV_KEY keeps its first characters and ends in "=h" + the SHA-256 of the whole string
 * (64 hex digits): "=h" never occurs in a key that was not shortened, and distinct strings keep
 * distinct keys.
 */
export function kvKey(s: string): string {
  if (s === '') return '=';
  const k = s.replace(/[^-/_a-zA-Z0-9]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `=${b.toString(16).padStart(2, '0')}`).join(''),
  );
  if (k.length <= MAX_KV_KEY) return k;
  return `${k.slice(0, MAX_KV_KEY - 66)}=h${createHash('sha256').update(s).digest('hex')}`;
}

/** A value put in a followed bucket. */
export interface FollowedEntry {
  key: string;
  value: Uint8Array;
  created: Date;
  string(): string;
}

/**
 * Calls `onPut` with every value in `bucket`, oldest first, then with each new one, by reading the
 * bucket's stream with stored-message gets (`next_by_subj`) every `everyMs` (default 500 ms). It
 * needs no consumer, so a role that may not create consumers (every EventSource and Sensor on a
 * secured bus: a consumer it could create could deliver anywhere in the bus account) can follow
 * its own bucket. Deletes (and purges) go to `onDelete` with their key; a failed round is tried again
 * at the next tick.
 */
export function followKv(
  nc: NatsConnection,
  bucket: string,
  onPut: (e: FollowedEntry) => void,
  everyMs = 500,
  onDelete?: (key: string) => void,
): { stop(): void; caughtUp: Promise<void> } {
  const stream = `KV_${bucket}`;
  const prefix = `$KV.${bucket}.`;
  let next = 1;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const jsm = jetstreamManager(nc);
  const round = async (): Promise<void> => {
    const j = await jsm;
    while (!stopped) {
      // The stored-message get takes next_by_subj too (the client types list it for direct gets only).
      const query = { seq: next, next_by_subj: `${prefix}>` } as unknown as MsgRequest;
      const m = await j.streams.getMessage(stream, query);
      if (!m) return;
      next = m.seq + 1;
      const op = m.header?.get('KV-Operation');
      if (op === 'DEL' || op === 'PURGE') {
        onDelete?.(m.subject.slice(prefix.length));
        continue;
      }
      const value = m.data;
      onPut({ key: m.subject.slice(prefix.length), value, created: m.time, string: () => m.string() });
    }
  };
  const tick = () => {
    timer = undefined;
    round()
      .catch(() => {})
      .finally(() => {
        if (!stopped) {
          timer = setTimeout(tick, everyMs);
          timer.unref();
        }
      });
  };
  const caughtUp = round().finally(() => {
    if (!stopped) {
      timer = setTimeout(tick, everyMs);
      timer.unref();
    }
  });
  return {
    caughtUp,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

const PENDING = 'pending';

/**
 * Idempotency keys already acted on. Entries expire with the bucket's TTL, so the TTL must be
 * longer than any redelivery or replay the set should catch.
 */
export class ProcessedSet {
  readonly kv: KV;
  /** When set, creates and done marks go through it (grouped into atomic batches). */
  readonly writes: KvGroupCommit | undefined;
  /**
   * Told the KV-encoded key of every write this set makes, before it is sent (the Sensor's
   * done-key index: a key being written may exist from now on).
   */
  onWrite: ((k: string) => void) | undefined;

  constructor(kv: KV, writes?: KvGroupCommit) {
    this.kv = kv;
    this.writes = writes;
  }

  /** Creates encoded key `k` (fails when it exists, as `kv.create`), grouped when possible. */
  create(k: string, value: string | Uint8Array): Promise<number> {
    this.onWrite?.(k);
    return this.writes ? this.writes.create(k, value) : this.kv.create(k, value);
  }

  static async open(
    connection: NatsConnection | BusConnection,
    bucket: string,
    ttlMs: number,
    opts: Omit<KvOptions, 'ttl' | 'history'> = {},
  ): Promise<ProcessedSet> {
    return new ProcessedSet(await openKv(connection, bucket, { ...opts, ttl: ttlMs, history: 1 }));
  }

  async has(key: string): Promise<boolean> {
    const e = await this.kv.get(kvKey(key));
    return !!e && e.operation === 'PUT';
  }

  /**
   * Records `key` and returns true, or returns false when it is already there. Atomic on the
   * server: of any number of concurrent callers (in any process) exactly one gets true.
   */
  async markIfAbsent(key: string, value: string | Uint8Array = ''): Promise<boolean> {
    try {
      await this.create(kvKey(key), value);
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
  }

  /**
   * Claims `key` before an effect: "new" (first claim, recorded as pending), "pending" (claimed
   * earlier but never marked done, e.g. the process died mid-call: go ahead, the downstream
   * idempotency key covers a repeat) or "done". One round trip in the common "new" case, with no
   * failed lookup.
   */
  async claim(key: string): Promise<'new' | 'pending' | 'done'> {
    this.onWrite?.(kvKey(key));
    try {
      await this.kv.create(kvKey(key), PENDING);
      return 'new';
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
    }
    const e = await this.kv.get(kvKey(key));
    if (!e || e.operation !== 'PUT') return 'new';
    return e.string() === 'pending' ? 'pending' : 'done';
  }

  /** Records that the effect of `key` happened. */
  async markDone(key: string, detail = 'done'): Promise<void> {
    const k = kvKey(key);
    this.onWrite?.(k);
    const v = detail === 'pending' ? 'done' : detail;
    await (this.writes ? this.writes.put(k, v) : this.kv.put(k, v));
  }

  /** Forgets `key` (e.g. an effect that must be allowed to run again). */
  async forget(key: string): Promise<void> {
    this.onWrite?.(kvKey(key));
    await this.kv.delete(kvKey(key));
  }
}

/** A JSON document with the revision it was read at, for compare-and-set updates. */
export interface Versioned<T> {
  value: T;
  revision: number;
}

/**
 * JSON state per key with optimistic concurrency: `update` succeeds only if nobody wrote the key
 * since it was read, so two replicas never silently overwrite each other's trigger state.
 */
export class JsonState<T> {
  readonly kv: KV;

  constructor(kv: KV) {
    this.kv = kv;
  }

  async get(key: string): Promise<Versioned<T> | undefined> {
    const e: KvEntry | null = await this.kv.get(kvKey(key));
    if (e?.operation !== 'PUT') return undefined;
    return { value: e.json<T>(), revision: e.revision };
  }

  /** Writes unconditionally; returns the new revision. */
  put(key: string, value: T): Promise<number> {
    return this.kv.put(kvKey(key), JSON.stringify(value));
  }

  /**
   * Writes only if the key is still at `revision` (0: only if absent). Returns the new revision,
   * or undefined when someone else wrote first (read again and retry).
   */
  async update(key: string, value: T, revision: number): Promise<number | undefined> {
    try {
      return revision === 0
        ? await this.kv.create(kvKey(key), JSON.stringify(value))
        : await this.kv.update(kvKey(key), JSON.stringify(value), revision);
    } catch (err) {
      if (isWrongLastSequence(err)) return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.kv.delete(kvKey(key));
  }
}
