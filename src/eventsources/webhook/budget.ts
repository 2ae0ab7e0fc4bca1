// What all webhook requests of a process may hold at once: request-body bytes (reserved chunk by
// chunk as they arrive, never from a declared Content-Length, so a client cannot reserve memory it
// does not send) and open connections. When the byte budget is spent, a request that needs room
// may displace requests still uploading that hold at least twice as much as it will and that have
// been quiet for a moment: many stalled large uploads cannot lock out small, quick requests. The
// displaced ones are answered 503 + Retry-After and cut. Bytes of a request waiting for the bus
// are kept (it cannot be displaced any more) until it is answered.

/** A request holding bytes of the budget. */
export interface BudgetHolder {
  /** Bytes this request holds now. */
  held: number;
  /** When it last received a byte (ms, Date.now()). */
  lastDataAt: number;
  /** True while it is still receiving its body (only then can it be displaced). */
  displaceable: boolean;
  /** Called when it is displaced: it must answer 503, cut its connection and release its bytes. */
  displace(): void;
}

/** Quiet time (ms) after which an uploading request may be displaced by a smaller one. */
export const DISPLACE_AFTER_QUIET_MS = 250;

export class ByteBudget {
  readonly capacity: number;
  private usedBytes = 0;
  private readonly holders = new Set<BudgetHolder>();
  private displacedCount = 0;

  /** `capacity`: bytes, > 0. */
  constructor(capacity: number) {
    this.capacity = capacity;
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
    if (this.usedBytes + n > this.capacity && !this.makeRoom(holder, n, now)) return false;
    this.holders.add(holder);
    holder.held += n;
    this.usedBytes += n;
    return true;
  }

  /** Gives back everything `holder` holds. Safe to call more than once. */
  release(holder: BudgetHolder): void {
    if (!this.holders.delete(holder)) return;
    this.usedBytes -= holder.held;
    holder.held = 0;
  }

  private makeRoom(holder: BudgetHolder, n: number, now: number): boolean {
    const need = this.usedBytes + n - this.capacity;
    const floor = 2 * (holder.held + n);
    const victims = [...this.holders]
      .filter(
        (h) =>
          h !== holder && h.displaceable && h.held >= floor && now - h.lastDataAt >= DISPLACE_AFTER_QUIET_MS,
      )
      .sort((a, b) => b.held - a.held);
    let freed = 0;
    const chosen: BudgetHolder[] = [];
    for (const v of victims) {
      if (freed >= need) break;
      chosen.push(v);
      freed += v.held;
    }
    if (freed < need) return false;
    for (const v of chosen) {
      this.release(v);
      this.displacedCount++;
      v.displace();
    }
    return true;
  }
}

/** Counts open connections of the process over all webhook ports. */
export class ConnectionGate {
  readonly capacity: number;
  private open = 0;
  private refusedCount = 0;

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
    return true;
  }

  leave(): void {
    this.open--;
  }
}
