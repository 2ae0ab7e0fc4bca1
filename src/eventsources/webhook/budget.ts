// What all webhook requests of a process may hold at once: request-body bytes (reserved chunk by
// chunk as they arrive, never from a declared Content-Length, so a client cannot reserve memory it
// does not send) and open connections. Small requests (declared size at most SMALL_REQUEST_BYTES,
// which is what webhooks send) are protected from large ones in two ways: the last quarter of the
// budget is theirs alone, and when even that is spent, a small request may displace uploads that
// hold at least twice as much as it will and have been quiet for a moment. So many stalled large
// uploads cannot lock out small, quick requests, and large uploads cannot churn memory by
// displacing each other. The displaced ones are answered 503 + Retry-After and cut. Bytes of a
// request waiting for the bus are kept (it cannot be displaced any more) until it is answered.

/** A request holding bytes of the budget. */
export interface BudgetHolder {
  /** Bytes this request holds now. */
  held: number;
  /** When it last received a byte (ms, Date.now()). */
  lastDataAt: number;
  /** True while it is still receiving its body (only then can it be displaced). */
  displaceable: boolean;
  /** Declared at most SMALL_REQUEST_BYTES: may use the reserve and displace others. */
  small: boolean;
  /** Called when it is displaced: it must answer 503, cut its connection and release its bytes. */
  displace(): void;
}

/** Requests up to this declared size count as small. */
export const SMALL_REQUEST_BYTES = 64 * 1024;
/** Share of the budget only small requests may use. */
const SMALL_RESERVE = 0.25;
/** Chunks of waiting requests may add up to this share of the capacity (beyond it). */
const WAITING_SHARE = 0.125;

/** Quiet time (ms) after which an uploading request may be displaced by a smaller one. */
export const DISPLACE_AFTER_QUIET_MS = 250;

export class ByteBudget {
  readonly capacity: number;
  /** What large requests may use together: the capacity less the small requests' reserve. */
  private readonly largeLimit: number;
  private usedBytes = 0;
  /** Bytes large requests have read but wait to add (one chunk each, see `wait`). */
  private waitingBytes = 0;
  private waiters: Array<{ holder: BudgetHolder; n: number; pending: number; resume: () => void }> = [];
  private readonly holders = new Set<BudgetHolder>();
  private displacedCount = 0;
  /** Set once more than half the capacity was in use; cleared when the budget drains. */
  private wasBusy = false;
  /**
   * Called when the budget drains to zero after more than half of it was in use (e.g. to let the
   * process give memory back after an attack, see server.ts).
   */
  onDrained: (() => void) | undefined;

  /** `capacity`: bytes, > 0. */
  constructor(capacity: number) {
    this.capacity = capacity;
    this.largeLimit = Math.floor(capacity * (1 - SMALL_RESERVE));
  }

  /** Bytes held now by all requests. */
  get used(): number {
    return this.usedBytes;
  }

  /** Requests displaced so far (for metrics). */
  get displaced(): number {
    return this.displacedCount;
  }

  /**
   * Reserves `n` more bytes for `holder`. Returns false when they do not fit even after
   * displacing every eligible request (the caller answers 503).
   */
  take(holder: BudgetHolder, n: number, now = Date.now()): boolean {
    const fits = this.usedBytes + n <= (holder.small ? this.capacity : this.largeLimit);
    if (!fits && !(holder.small && this.makeRoom(holder, n, now))) return false;
    this.holders.add(holder);
    holder.held += n;
    this.usedBytes += n;
    if (this.usedBytes > this.capacity / 2) this.wasBusy = true;
    return true;
  }

  /** Bytes waiting requests have read and not yet added. */
  get waiting(): number {
    return this.waitingBytes;
  }

  /**
   * True when a request that does not fit may wait for room (holding a chunk of `pending` bytes
   * meanwhile) instead of being refused: waiting chunks stay within an eighth of the capacity.
   */
  canWait(pending: number): boolean {
    return this.waitingBytes + pending <= this.capacity * WAITING_SHARE;
  }

  /**
   * Backpressure for a request that does not fit: `resume` is called (in arrival order)
   * once `n` bytes fit; meanwhile the caller reads nothing more and keeps its `pending` chunk.
   */
  wait(holder: BudgetHolder, n: number, pending: number, resume: () => void): void {
    this.waitingBytes += pending;
    this.waiters.push({ holder, n, pending, resume });
  }

  /** Stops waiting (the request ended meanwhile). */
  cancelWait(holder: BudgetHolder): void {
    const i = this.waiters.findIndex((w) => w.holder === holder);
    if (i < 0) return;
    this.waitingBytes -= this.waiters[i]!.pending;
    this.waiters.splice(i, 1);
  }

  /** Resumes, in arrival order, every waiter whose bytes fit now. */
  private wake(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) {
      if (this.usedBytes + w.n <= (w.holder.small ? this.capacity : this.largeLimit)) {
        this.waitingBytes -= w.pending;
        w.resume();
      } else this.waiters.push(w);
    }
  }

  /** Gives back everything `holder` holds. Safe to call more than once. */
  release(holder: BudgetHolder): void {
    this.cancelWait(holder);
    if (this.drop(holder)) this.wake();
  }

  private drop(holder: BudgetHolder): boolean {
    if (!this.holders.delete(holder)) return false;
    this.usedBytes -= holder.held;
    holder.held = 0;
    if (this.usedBytes === 0 && this.wasBusy) {
      this.wasBusy = false;
      this.onDrained?.();
    }
    return true;
  }

  /** The largest quiet uploads holding at least `floor` bytes, until `n` more bytes would fit. */
  private victims(
    n: number,
    floor: number,
    now: number,
    except?: BudgetHolder,
  ): { chosen: BudgetHolder[]; freed: number } {
    const need = this.usedBytes + n - this.capacity;
    const eligible = [...this.holders]
      .filter(
        (h) =>
          h !== except && h.displaceable && h.held >= floor && now - h.lastDataAt >= DISPLACE_AFTER_QUIET_MS,
      )
      .sort((a, b) => b.held - a.held);
    let freed = 0;
    const chosen: BudgetHolder[] = [];
    for (const v of eligible) {
      if (freed >= need) break;
      chosen.push(v);
      freed += v.held;
    }
    return { chosen, freed };
  }

  private makeRoom(holder: BudgetHolder, n: number, now: number): boolean {
    const { chosen, freed } = this.victims(n, 2 * (holder.held + n), now, holder);
    if (freed < this.usedBytes + n - this.capacity) return false;
    for (const v of chosen) {
      this.cancelWait(v);
      this.drop(v);
      this.displacedCount++;
      v.displace();
    }
    return true;
  }
}

/** Open connections after which a drain to zero counts as the end of a flood. */
const MANY_CONNECTIONS = 1_000;

/** Counts open connections of the process over all webhook ports. */
export class ConnectionGate {
  readonly capacity: number;
  private open = 0;
  private refusedCount = 0;
  private wasBusy = false;
  /** Called when the count drops to zero after a thousand or more were open (see server.ts). */
  onDrained: (() => void) | undefined;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get current(): number {
    return this.open;
  }

  get refused(): number {
    return this.refusedCount;
  }

  /** True when one more connection may stay open (then `leave()` it when it closes). */
  enter(): boolean {
    if (this.open >= this.capacity) {
      this.refusedCount++;
      return false;
    }
    this.open++;
    if (this.open >= MANY_CONNECTIONS) this.wasBusy = true;
    return true;
  }

  leave(): void {
    this.open--;
    if (this.open === 0 && this.wasBusy) {
      this.wasBusy = false;
      this.onDrained?.();
    }
  }
}
