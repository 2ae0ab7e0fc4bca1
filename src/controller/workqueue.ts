// A work queue with the semantics controllers rely on (the client-go workqueue contract):
//  - a key added many times while it waits is handed out once;
//  - a key is never handed to two workers at once: added while being processed, it waits until
//    `done(key)` and is then queued again;
//  - failures come back later through a rate limiter (per-key exponential backoff combined with an
//    overall token bucket), and `forget(key)` clears the key's failure history.
// Time comes from Date.now/setTimeout so tests can drive it with fake timers.

/** Decides how long a key waits before it is retried. */
export interface RateLimiter {
  /** Delay in ms for this retry of `key`; each call counts as one retry. */
  when(key: string): number;
  /** Clears the history of `key` (after a success). */
  forget(key: string): void;
  /** Retries of `key` since the last forget. */
  numRequeues(key: string): number;
}

/** Per-key delay `baseMs * 2^failures`, capped at `maxMs` (client-go's ItemExponentialFailureRateLimiter). */
export class ExponentialFailureRateLimiter implements RateLimiter {
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly failures = new Map<string, number>();

  constructor(baseMs = 5, maxMs = 1_000_000) {
    if (!(baseMs > 0) || !(maxMs >= baseMs)) throw new Error('need 0 < baseMs <= maxMs');
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = this.baseMs * 2 ** n;
    return Number.isFinite(delay) && delay < this.maxMs ? delay : this.maxMs;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * An overall limit on retries, whatever the key: a bucket of `burst` tokens refilled at `qps` per
 * second. Each retry takes a token; when none is left the retry is pushed out until one will be.
 */
export class TokenBucketRateLimiter implements RateLimiter {
  private readonly qps: number;
  private readonly burst: number;
  private tokens: number;
  private last: number;

  constructor(qps = 10, burst = 100) {
    if (!(qps > 0) || !(burst >= 1)) throw new Error('need qps > 0 and burst >= 1');
    this.qps = qps;
    this.burst = burst;
    this.tokens = burst;
    this.last = Date.now();
  }

  when(): number {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    // Going below zero reserves a future token: the deficit says how long until it exists.
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }

  forget(): void {}

  numRequeues(): number {
    return 0;
  }
}

/** The longest delay any of its limiters asks for; requeue counts come from the highest one. */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    if (limiters.length === 0) throw new Error('MaxOfRateLimiter needs at least one limiter');
    this.limiters = limiters;
  }

  when(key: string): number {
    let delay = 0;
    for (const l of this.limiters) delay = Math.max(delay, l.when(key));
    return delay;
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    let n = 0;
    for (const l of this.limiters) n = Math.max(n, l.numRequeues(key));
    return n;
  }
}

export interface ControllerRateLimiterOptions {
  /** First retry delay of a key (ms); default 5. */
  baseDelayMs?: number;
  /** Longest retry delay of a key (ms); default 1000 s. */
  maxDelayMs?: number;
  /** Overall retries per second; default 10. */
  qps?: number;
  /** Retries allowed at once before `qps` applies; default 100. */
  burst?: number;
}

/** Per-key exponential backoff combined with an overall token bucket (client-go's default). */
export function controllerRateLimiter(opts: ControllerRateLimiterOptions = {}): RateLimiter {
  return new MaxOfRateLimiter(
    new ExponentialFailureRateLimiter(opts.baseDelayMs ?? 5, opts.maxDelayMs ?? 1_000_000),
    new TokenBucketRateLimiter(opts.qps ?? 10, opts.burst ?? 100),
  );
}

/** Observation points for metrics; all optional. Durations are in seconds. */
export interface WorkQueueHooks {
  depth?(n: number): void;
  add?(key: string): void;
  /** Time a key waited in the queue before a worker took it. */
  queueLatency?(seconds: number): void;
  /** Time between `get()` handing a key out and `done(key)`. */
  workDuration?(seconds: number): void;
  retry?(key: string): void;
}

export interface WorkQueueOptions {
  rateLimiter?: RateLimiter;
  hooks?: WorkQueueHooks;
}

/** One entry of the delayed-add heap. */
interface Delayed {
  key: string;
  readyAt: number;
}

export class WorkQueue {
  private readonly limiter: RateLimiter;
  private readonly hooks: WorkQueueHooks;
  /** FIFO of keys ready to hand out; `head` avoids O(n) shifts. */
  private queue: string[] = [];
  private head = 0;
  /** Keys that need processing (queued, or added again while being processed). */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly enqueuedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private drainWaiters: Array<() => void> = [];
  /** Min-heap on readyAt, plus the earliest readyAt per key so a key waits at most once. */
  private readonly heap: Delayed[] = [];
  private readonly waitingFor = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private shuttingDown = false;

  constructor(opts: WorkQueueOptions = {}) {
    this.limiter = opts.rateLimiter ?? controllerRateLimiter();
    this.hooks = opts.hooks ?? {};
  }

  /** Queues `key` unless it is already waiting to be processed. Ignored after shutDown(). */
  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    this.hooks.add?.(key);
    // While a worker has it, done() puts it back in the queue.
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Adds `key` once `delayMs` has passed (at once when delayMs <= 0). */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const readyAt = Date.now() + delayMs;
    const existing = this.waitingFor.get(key);
    // An earlier pending add already covers this one.
    if (existing !== undefined && existing <= readyAt) return;
    this.waitingFor.set(key, readyAt);
    this.heapPush({ key, readyAt });
    this.armTimer();
  }

  /** Adds `key` after the delay the rate limiter gives it (one more retry). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.hooks.retry?.(key);
    this.addAfter(key, this.limiter.when(key));
  }

  /** Stops tracking retries of `key`: its next failure starts from the base delay again. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.limiter.numRequeues(key);
  }

  /** Keys ready to be handed out (not counting those being processed or waiting on a delay). */
  len(): number {
    return this.queue.length - this.head;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * The next key to process; the caller must call `done(key)` when finished. Waits while the queue
   * is empty. After shutDown(), keys already queued are still handed out, then `undefined`.
   */
  get(): Promise<string | undefined> {
    if (this.len() > 0) return Promise.resolve(this.take());
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks `key` finished; if it was added again meanwhile it goes back into the queue. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    const started = this.startedAt.get(key);
    this.startedAt.delete(key);
    if (started !== undefined) this.hooks.workDuration?.((Date.now() - started) / 1000);
    if (this.dirty.has(key)) this.push(key);
    if (this.processing.size === 0 && this.len() === 0 && this.drainWaiters.length > 0) {
      const ws = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of ws) w();
    }
  }

  /**
   * No more adds (pending delayed adds are dropped); waiting `get()` calls resolve with
   * `undefined`. Keys already queued can still be taken, so workers drain them and then stop.
   */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.heap.length = 0;
    this.waitingFor.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  /**
   * shutDown(), and the keys waiting in the queue are dropped too: workers finish what they hold
   * and stop (a controller that is stopping: the next one lists everything again).
   */
  shutDownNow(): void {
    this.shutDown();
    for (let i = this.head; i < this.queue.length; i++) this.enqueuedAt.delete(this.queue[i] as string);
    this.queue = [];
    this.head = 0;
    // Keys added again while being processed would go back into the queue at done().
    this.dirty.clear();
    this.hooks.depth?.(0);
  }

  /**
   * shutDown(), then resolves once every queued key has been taken and finished (needs running
   * workers to get there).
   */
  async shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0 && this.len() === 0) return;
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  private push(key: string): void {
    this.enqueuedAt.set(key, Date.now());
    const waiter = this.waiters.shift();
    if (waiter) {
      // A worker is idle, which means the queue is empty: hand the key straight over.
      this.queue.push(key);
      waiter(this.take());
      return;
    }
    this.queue.push(key);
    this.hooks.depth?.(this.len());
  }

  private take(): string {
    const key = this.queue[this.head] as string;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.dirty.delete(key);
    this.processing.add(key);
    const now = Date.now();
    const queued = this.enqueuedAt.get(key);
    this.enqueuedAt.delete(key);
    if (queued !== undefined) this.hooks.queueLatency?.((now - queued) / 1000);
    this.startedAt.set(key, now);
    this.hooks.depth?.(this.len());
    return key;
  }

  private armTimer(): void {
    const next = this.heap[0];
    if (!next) return;
    if (this.timer && this.timerAt <= next.readyAt) return;
    clearTimeout(this.timer);
    this.timerAt = next.readyAt;
    this.timer = setTimeout(() => this.fireDue(), Math.max(0, next.readyAt - Date.now()));
  }

  private fireDue(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    for (let top = this.heap[0]; top && top.readyAt <= now; top = this.heap[0]) {
      this.heapPop();
      // Skip entries superseded by an earlier addAfter of the same key.
      if (this.waitingFor.get(top.key) !== top.readyAt) continue;
      this.waitingFor.delete(top.key);
      this.add(top.key);
    }
    this.armTimer();
  }

  private heapPush(item: Delayed): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as Delayed).readyAt <= item.readyAt) break;
      h[i] = h[parent] as Delayed;
      i = parent;
    }
    h[i] = item;
  }

  private heapPop(): Delayed | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || !last) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      let minAt = last.readyAt;
      if (l < h.length && (h[l] as Delayed).readyAt < minAt) {
        min = l;
        minAt = (h[l] as Delayed).readyAt;
      }
      if (r < h.length && (h[r] as Delayed).readyAt < minAt) min = r;
      if (min === i) break;
      h[i] = h[min] as Delayed;
      i = min;
    }
    h[i] = last;
    return top;
  }
}

export interface ReconcileResult {
  /** Process the key again after this long, even though it succeeded (periodic re-checks). */
  requeueAfterMs?: number;
}

export interface RunWorkersOptions {
  /** Called with each failure before the key is retried (for logging). */
  onError?: (key: string, err: unknown, retries: number) => void;
}

/**
 * Runs `n` workers that take keys from `queue` and call `handler`. A failure retries the key with
 * backoff; a success forgets its history (and re-adds it after `requeueAfterMs` when asked).
 * Resolves when the queue has been shut down and every worker has finished.
 */
export async function runWorkers(
  queue: WorkQueue,
  n: number,
  // biome-ignore lint/suspicious/noConfusingVoidType: lets plain `async (key) => { ... }` handlers type-check
  handler: (key: string) => Promise<ReconcileResult | undefined | void>,
  opts: RunWorkersOptions = {},
): Promise<void> {
  if (!(n >= 1)) throw new Error('runWorkers needs at least one worker');
  const worker = async (): Promise<void> => {
    for (let key = await queue.get(); key !== undefined; key = await queue.get()) {
      try {
        const result = await handler(key);
        queue.forget(key);
        const after = result?.requeueAfterMs;
        if (after !== undefined && after >= 0) queue.addAfter(key, after);
      } catch (err) {
        try {
          opts.onError?.(key, err, queue.numRequeues(key));
        } catch {
          // A failing error reporter must not stop the worker.
        }
        queue.addRateLimited(key);
      } finally {
        queue.done(key);
      }
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
}
