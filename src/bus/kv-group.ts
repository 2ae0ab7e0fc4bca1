// Group commit of KV writes: writes asked for in the same turn of the event loop (or up to
// `maxKeys` of them) go to the server as one JetStream atomic batch, so a Sensor handling a pull
// of 256 events pays one round trip for all their claims, and one for all their done marks,
// instead of one each. A small group (fewer than `minBatch` writes: a Sensor at a moderate rate,
// one or a few events per turn) is pipelined instead: each write its own JetStream publish, all
// in one socket write, answered on one reply subscription (pub-acks.ts). On a file-backed R1 stream the server stages an atomic batch
// on disk before it commits it, holding the stream's lock: ~1 ms per batch whatever its size,
// against ~0.2 ms for a lone write, and the batches of a busy Sensor wait on each other (measured
// at 1,000 events/s: a done mark's p50 1.9 → 0.7 ms, nats-server CPU -20%).
// Each write keeps its own meaning: a `create` still fails when its key
// exists, a `put` still overwrites, and each caller learns its own revision. An atomic batch is
// all or nothing, so one conflicting `create` would fail its neighbours: on a conflict the group is
// written again one write at a time (as if there were no grouping), which gives each write its own
// answer. A server or stream without atomic batches (an older bus, a bucket made before
// `allow_atomic`) gets the one-at-a-time path for good; nothing else changes.
//
// Wire format (nats-server 2.12 atomic batch publish): every message carries Nats-Batch-Id and
// Nats-Batch-Sequence (1..n); the last also Nats-Batch-Commit: 1 and is the only one sent as a
// request. The server stores the batch's messages at consecutive stream sequences and answers the
// commit with a PubAck whose `seq` is the last one and `count` the number of messages, or an error
// (e.g. 10071 "wrong last sequence" when a `create` meets an existing key).
import type { KV } from '@nats-io/kv';
import { headers, type MsgHdrs, type NatsConnection, nuid } from '@nats-io/nats-core';
import { isWrongLastSequence, ServerCode } from './errors.ts';
import { PubAckInbox } from './pub-acks.ts';

/** What the KV client needs to say for a key (nats.js `Bucket.subjectForKey`). */
interface KeySubjects {
  subjectForKey(key: string, edit?: boolean): string;
}

interface Write {
  key: string;
  value: Uint8Array | string;
  /** Only if the key does not exist (or was deleted): KV create. */
  create: boolean;
  resolve(revision: number): void;
  reject(err: unknown): void;
}

export interface GroupCommitOptions {
  /** Most writes in one batch (the server takes at most 1,000 messages; default 256). */
  maxKeys?: number;
  /**
   * Fewest writes worth an atomic batch (default 32): a smaller group is sent as separate writes,
   * which the server stores sooner (see the header). 1 batches every group of two or more.
   */
  minBatch?: number;
  /** Batches awaiting their commit answer at once (the server allows 50 per stream; default 4). */
  maxInFlight?: number;
  /** Longest wait for a commit answer (ms, default 5,000). */
  timeoutMs?: number;
  /** Batch at all (default true); see atomicBatches. */
  atomic?: boolean;
}

/** True when `version` ("2.12.1") is at least `major.minor`. */
export function versionAtLeast(version: string | undefined, major: number, minor: number): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(version ?? '');
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

/**
 * Whether writes to `kv` may be batched: the server is 2.12 or later (atomic batch publish) and
 * the bucket's stream has `allow_atomic` (buckets made by an older sluice, or by a client, do
 * not). One stream-info request.
 */
export async function atomicBatches(nc: NatsConnection, kv: KV): Promise<boolean> {
  if (!versionAtLeast(nc.info?.version, 2, 12)) return false;
  return (await kv.status()).streamInfo.config.allow_atomic === true;
}

/**
 * An error answer of the server to a batch commit, with its JetStream error code (readable with
 * errors.ts `serverCode`, like the client's own API errors).
 */
export class BatchRefused extends Error {
  readonly code: number;
  constructor(code: number, description: string) {
    super(`atomic batch refused: ${description} (${code})`);
    this.name = 'BatchRefused';
    this.code = code;
  }

  apiError(): { err_code: number; code: number; description: string } {
    return { err_code: this.code, code: 400, description: this.message };
  }
}

/** "Atomic publish is disabled" on this stream: batches will never be taken. */
const ATOMIC_DISABLED = 10174;

/** The answer of a server that took the messages one by one (it knows no batches): no `count`. */
class NotBatched extends Error {}

/**
 * Writes to one KV bucket, grouped. `create(key, value)` and `put(key, value)` resolve with the
 * entry's revision once the server has stored it (a `create` rejects as `kv.create` does when the
 * key exists); both reject with the server's or the connection's error when the write may not
 * have happened. Keys are given already encoded for KV (see kvKey).
 */
export class KvGroupCommit {
  private queue: Write[] = [];
  private scheduled = false;
  private inFlight = 0;
  private atomic = true;
  private readonly maxKeys: number;
  private readonly minBatch: number;
  private readonly maxInFlight: number;
  private readonly timeoutMs: number;
  /**
   * Batches committed and writes sent in them, writes of small groups sent on their own, groups
   * written again one by one after a refused batch (for tests and metrics).
   */
  readonly stats = { batches: 0, writes: 0, singles: 0, fallbacks: 0 };

  private readonly nc: NatsConnection;
  private readonly kv: KV;
  /** Where pipelined writes await their PubAck. */
  private readonly acks: PubAckInbox;

  constructor(nc: NatsConnection, kv: KV, opts: GroupCommitOptions = {}) {
    this.nc = nc;
    this.kv = kv;
    this.acks = PubAckInbox.of(nc);
    this.maxKeys = Math.min(999, Math.max(1, opts.maxKeys ?? 256));
    this.minBatch = Math.max(1, opts.minBatch ?? 32);
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 4);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.atomic = opts.atomic ?? true;
  }

  /** Creates `key` (fails when it exists, as `kv.create`). Resolves with its revision. */
  create(key: string, value: Uint8Array | string): Promise<number> {
    return this.enqueue(key, value, true);
  }

  /** Writes `key` whatever it holds. Resolves with its revision. */
  put(key: string, value: Uint8Array | string): Promise<number> {
    return this.enqueue(key, value, false);
  }

  /** False once the server refused atomic batches: every write then goes on its own. */
  get grouping(): boolean {
    return this.atomic;
  }

  private enqueue(key: string, value: Uint8Array | string, create: boolean): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ key, value, create, resolve, reject });
      if (this.queue.length >= this.maxKeys) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        // After this turn's I/O callbacks: every handler woken by the same pull joins the group.
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    // A small group never waits for a batch slot: its writes go at once, each on its own.
    if (this.queue.length < this.minBatch) {
      const group = this.queue;
      this.queue = [];
      this.stats.singles += group.length;
      this.pipeline(group);
      return;
    }
    while (this.queue.length && this.inFlight < this.maxInFlight) {
      const group = this.queue.splice(0, this.maxKeys);
      this.inFlight++;
      this.commit(group).finally(() => {
        this.inFlight--;
        if (this.queue.length) this.flush();
      });
    }
  }

  private async commit(group: Write[]): Promise<void> {
    if (!this.atomic || group.length === 1) return this.oneByOne(group);
    try {
      const last = await this.sendBatch(group);
      this.stats.batches++;
      this.stats.writes += group.length;
      // Consecutive sequences: the i-th write of n is at last - (n - 1 - i).
      for (const [i, w] of group.entries()) w.resolve(last - (group.length - 1 - i));
    } catch (err) {
      if (err instanceof NotBatched) {
        // A server without atomic batches stored each message on its own, or dropped a create
        // whose key existed: find out which, write by write, and never batch again.
        this.atomic = false;
        this.stats.fallbacks++;
        return this.verifyOneByOne(group);
      }
      if (err instanceof BatchRefused) {
        // Refused as a whole, so nothing of it was stored: a conflicting create, a stream that
        // takes no batches, or a passing limit (too many open batches). Each write on its own.
        if (err.code === ATOMIC_DISABLED) this.atomic = false;
        this.stats.fallbacks++;
        return this.oneByOne(group);
      }
      for (const w of group) w.reject(err);
    }
  }

  /** Sends `group` as one atomic batch; resolves with the stream sequence of its last message. */
  private async sendBatch(group: Write[]): Promise<number> {
    const id = nuid.next();
    const subjects = this.kv as unknown as KeySubjects;
    const n = group.length;
    for (let i = 0; i < n - 1; i++) {
      const w = group[i]!;
      this.nc.publish(subjects.subjectForKey(w.key, true), w.value, { headers: batchHeaders(id, i + 1, w) });
    }
    const w = group[n - 1]!;
    const h = batchHeaders(id, n, w);
    h.set('Nats-Batch-Commit', '1');
    const reply = await this.nc.request(subjects.subjectForKey(w.key, true), w.value, {
      headers: h,
      timeout: this.timeoutMs,
    });
    const ack = reply.json<{
      seq?: number;
      count?: number;
      error?: { err_code?: number; code?: number; description?: string };
    }>();
    if (ack.error)
      throw new BatchRefused(ack.error.err_code ?? ack.error.code ?? 0, ack.error.description ?? 'unknown');
    if (ack.count === undefined) throw new NotBatched();
    if (ack.count !== n || typeof ack.seq !== 'number')
      throw new BatchRefused(0, `the server stored ${ack.count} of ${n} writes`);
    return ack.seq;
  }

  /**
   * After a server ignored the batch headers: a create is ours when the key holds exactly what we
   * wrote (values carry a unique owner), else it met an existing key; a put is written again.
   */
  private async verifyOneByOne(group: Write[]): Promise<void> {
    const same = (a: Uint8Array, b: Uint8Array | string) =>
      Buffer.from(a).equals(typeof b === 'string' ? Buffer.from(b) : Buffer.from(b));
    await Promise.all(
      group.map(async (w) => {
        try {
          if (!w.create) return w.resolve(await this.kv.put(w.key, w.value));
          const e = await this.kv.get(w.key);
          if (e?.operation === 'PUT' && same(e.value, w.value)) return w.resolve(e.revision);
          if (e?.operation === 'PUT')
            return w.reject(new BatchRefused(ServerCode.WrongLastSequence, 'key exists'));
          w.resolve(await this.kv.create(w.key, w.value));
        } catch (err) {
          w.reject(err);
        }
      }),
    );
  }

  /**
   * Each write of `group` as its own publish with a reply subject (pub-acks.ts), all leaving in one
   * socket write, each with its own answer. A write not answered in timeoutMs rejects with a
   * TimeoutError (it may still be stored, as after a request that timed out).
   */
  private pipeline(group: Write[]): void {
    const subjects = this.kv as unknown as KeySubjects;
    for (const w of group) {
      this.acks
        .publish(subjects.subjectForKey(w.key, true), w.value, {
          timeoutMs: this.timeoutMs,
          ...(w.create ? { headers: createOnly() } : {}),
        })
        .then(
          (stored) => w.resolve(stored.seq),
          (err: unknown) => {
            // A create that met a key: kv.create tells a live key (its error) from a deleted one.
            if (w.create && isWrongLastSequence(err))
              this.kv.create(w.key, w.value).then(w.resolve, w.reject);
            else w.reject(err);
          },
        );
    }
  }

  /** Each write on its own (concurrently), each with its own answer. */
  private async oneByOne(group: Write[]): Promise<void> {
    await Promise.all(
      group.map((w) =>
        (w.create ? this.kv.create(w.key, w.value) : this.kv.put(w.key, w.value)).then(w.resolve, w.reject),
      ),
    );
  }
}

/** Headers of a pipelined create: stored only if the key has no value yet. */
function createOnly(): MsgHdrs {
  const h = headers();
  h.set('Nats-Expected-Last-Subject-Sequence', '0');
  return h;
}

function batchHeaders(id: string, seq: number, w: Write): MsgHdrs {
  const h = headers();
  h.set('Nats-Batch-Id', id);
  h.set('Nats-Batch-Sequence', String(seq));
  if (w.create) h.set('Nats-Expected-Last-Subject-Sequence', '0');
  return h;
}
