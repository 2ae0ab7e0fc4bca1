// The done-key index of a Sensor: an in-memory Bloom filter (bloom.ts) of the idempotency keys
// that MAY have a claim, a done mark or a delete in the processed set. It lets a first delivery
// skip the claim round trip when its key is certainly new (settle.ts, the fast path), and an AND
// join skip reading a "used" mark that cannot exist (fire.ts). It is fed by:
//   - this process's own writes, added before they are sent (ProcessedSet.onWrite);
//   - a follower of the processed bucket's stream from its first message (kv-follow.ts): the
//     rebuild on start, then live, which sees `sluice dlq replay`, other replicas and earlier
//     processes.
// Until the follower has read everything stored when it started, the index is not ready and
// every event takes the claim path. A filter that has taken more keys than it was sized for is
// rebuilt from the bucket (not ready meanwhile), so its false-positive rate stays near 1%.
import type { NatsConnection } from '@nats-io/transport-node';
import { followKvKeys, type KeyFollower } from '../bus/kv-follow.ts';
import type { Logger } from '../observability/logger.ts';
import { BloomFilter, MAX_BLOOM_KEYS } from './bloom.ts';

/**
 * Fewest bytes one key takes in the bucket's file store (record header, the subject
 * `$KV.<bucket>.<key>` and checksum, a short value): the bucket's max_bytes over this is the most
 * keys it can hold, which sizes the filter.
 */
export const MIN_ENTRY_BYTES = 64;
/** Keys assumed for a bucket without a byte limit. */
const UNBOUNDED_KEYS = 1_000_000;

/** Keys a processed bucket of `maxBytes` (-1: no limit) can hold, as the index sizes for them. */
export function indexCapacity(maxBytes: number | undefined): number {
  if (!maxBytes || maxBytes < 0) return UNBOUNDED_KEYS;
  return Math.min(MAX_BLOOM_KEYS, Math.max(1024, Math.ceil(maxBytes / MIN_ENTRY_BYTES)));
}

export class DoneIndex {
  private filter: BloomFilter;
  private follower: KeyFollower | undefined;
  private generation = 0;
  private isReady = false;
  private stopped = false;
  /** The last follower could not be made (logged once until one is). */
  private failing = false;
  /** Called with the readiness whenever it changes (e.g. a gauge). */
  onReady?: (ready: boolean) => void;

  private readonly nc: NatsConnection;
  private readonly bucket: string;
  /** Keys the filter is sized for (indexCapacity of the bucket). */
  readonly capacity: number;
  private readonly log: Logger | undefined;

  constructor(nc: NatsConnection, bucket: string, capacity: number, log?: Logger) {
    this.nc = nc;
    this.bucket = bucket;
    this.capacity = capacity;
    this.log = log;
    this.filter = new BloomFilter(capacity);
  }

  /** True once the rebuild caught up: a "no" from mightHave is then trustworthy. */
  get ready(): boolean {
    return this.isReady;
  }

  /** Bytes of the filter. */
  get bytes(): number {
    return this.filter.bytes;
  }

  /** Records KV-encoded key `k` as possibly written. */
  add(k: string): void {
    // A full filter is replaced first, so `k` lands in the one that stays (the follower of the new
    // one may reach its target before `k`'s write is stored).
    if (this.filter.added >= 2 * this.filter.capacity && this.follower) void this.rebuild('full');
    this.filter.add(k);
  }

  /** False only when the index is ready and KV-encoded key `k` was certainly never written. */
  mightHave(k: string): boolean {
    return !this.isReady || this.filter.mightHave(k);
  }

  /** Starts the follower (the rebuild, then live). Resolves when it caught up, or could not start. */
  start(): Promise<void> {
    return this.rebuild('start');
  }

  stop(): void {
    this.stopped = true;
    this.follower?.stop();
    this.follower = undefined;
    this.setReady(false);
  }

  private setReady(r: boolean): void {
    if (this.isReady === r) return;
    this.isReady = r;
    this.onReady?.(r);
  }

  /**
   * The follower of generation `gen` stopped after it had caught up: the index no longer sees other
   * writers, so it is not ready until a new follower has read the bucket again (tried every 5 s).
   */
  private lost(gen: number, err: unknown): void {
    if (gen !== this.generation || this.stopped) return;
    this.setReady(false);
    this.follower = undefined;
    this.log?.warn(
      { bucket: this.bucket, err: err instanceof Error ? err.message : undefined },
      'done-key index stopped following the processed bucket: every event claims until it has read it again',
    );
    this.retryLater(gen);
  }

  /** Reads the bucket again in 5 s, unless a newer rebuild or a stop came first. */
  private retryLater(gen: number): void {
    const t = setTimeout(() => {
      if (gen === this.generation && !this.stopped) void this.rebuild('start');
    }, 5000);
    t.unref();
  }

  private rebuild(why: 'start' | 'full'): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.follower?.stop();
    this.setReady(false);
    const gen = ++this.generation;
    const filter = why === 'start' ? this.filter : new BloomFilter(this.capacity);
    // Own writes go to the new filter from now on; the follower adds everything stored before.
    this.filter = filter;
    const follower = followKvKeys(
      this.nc,
      this.bucket,
      (k) => filter.add(k),
      (err) => this.lost(gen, err),
    );
    this.follower = follower;
    return follower.caughtUp.then(
      ({ keys, ms }) => {
        if (gen !== this.generation || this.stopped) return;
        this.failing = false;
        this.setReady(true);
        this.log?.info(
          { bucket: this.bucket, keys, ms, capacity: this.capacity, bytes: this.filter.bytes, why },
          'done-key index ready: first deliveries of new keys skip the claim',
        );
      },
      (err: unknown) => {
        if (gen !== this.generation || this.stopped) return;
        this.follower = undefined;
        // Logged once per run of failures (a refusal may last until the controller changes the bus).
        if (!this.failing)
          this.log?.warn(
            { bucket: this.bucket, err: (err as Error).message },
            'done-key index unavailable (cannot follow the processed bucket): every event claims its key until it can (tried every 5 s)',
          );
        this.failing = true;
        this.retryLater(gen);
      },
    );
  }
}
