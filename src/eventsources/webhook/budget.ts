// What all webhook requests of a process may hold at once: request-body bytes, reserved chunk by
// chunk as they arrive, never from a declared Content-Length (a client cannot reserve memory it
// does not send). The connection bound is in connection-gate.ts.
//
// Small requests (declared size at most SMALL_REQUEST_BYTES, which is what webhooks send) have the
// last quarter of the budget to themselves, and tiny ones (at most TINY_REQUEST_BYTES) the last
// sixteenth of it. When a request's next chunk does not fit, it may
// displace uploads that are *stalling*, the slowest first:
//   - slow: older than RATE_JUDGED_AFTER_MS and averaging under MIN_BODY_RATE (trickling, or
//     sending just enough never to be quiet, whatever size they declared): any request that is
//     not stalling itself may displace these;
//   - quiet for DISPLACE_AFTER_QUIET_MS and holding at least twice what the newcomer will: only
//     a small request may displace these.
// So clients that hold bytes without sending them cannot lock anyone out, while fresh large
// uploads (a legitimate one, or an attacker re-opening what was cut) never displace quiet ones:
// each displacement makes the victim send its bytes again, and a churn of large uploads through
// each other would cost the process those bytes read many times a second (the garbage, not the
// budget, then bounds memory). The time a request waits for room (backpressure: we stopped
// reading it) counts neither as quiet nor against its rate. The displaced ones are answered
// 503 + Retry-After and cut. Bytes of a request waiting for the bus are kept (it cannot be
// displaced any more) until it is answered.

/** A request holding bytes of the budget. */
export interface BudgetHolder {
  /** Bytes this request holds now. */
  held: number;
  /** When it last received a byte (ms, Date.now()). */
  lastDataAt: number;
  /** When its body started (ms, Date.now()); moved later by the time it waited for room. */
  startedAt: number;
  /** Body bytes received so far. */
  readonly length: number;
  /** True while it is still receiving its body (only then can it be displaced). */
  displaceable: boolean;
  /** Declared at most SMALL_REQUEST_BYTES: may use the reserve. */
  small: boolean;
  /** Declared at most TINY_REQUEST_BYTES: may also use the tiny requests' own reserve. */
  tiny?: boolean;
  /** Called when it is displaced: it must answer 503, cut its connection and release its bytes. */
  displace(): void;
}

/** Requests up to this declared size count as small. */
export const SMALL_REQUEST_BYTES = 64 * 1024;
/** Requests up to this declared size count as tiny (most webhook deliveries). */
export const TINY_REQUEST_BYTES = 8 * 1024;
/** Share of the budget only small requests may use. */
const SMALL_RESERVE = 0.25;
/**
 * Share of it only tiny requests may use: small holders (up to 64 KiB, each re-opened as it is
 * displaced) can fill the small reserve, and a 1 KiB delivery must not wait behind them.
 */
const TINY_RESERVE = 1 / 16;
/** Chunks of waiting requests may add up to this share of the capacity (beyond it). */
const WAITING_SHARE = 0.125;

/** Quiet time (ms) after which an upload may be displaced by a small request. */
export const DISPLACE_AFTER_QUIET_MS = 250;
/** Age (ms) from which an upload's average rate is judged. */
export const RATE_JUDGED_AFTER_MS = 1_000;
/** Slowest average body rate (bytes/s) that is not stalling, once the rate is judged. */
export const MIN_BODY_RATE = 32 * 1024;

/** Average body rate of `h` at `now` (bytes/s). */
const rateOf = (h: BudgetHolder, now: number) => (h.length * 1000) / Math.max(1, now - h.startedAt);

/** True when `h` averages under MIN_BODY_RATE at `now` (ms), once RATE_JUDGED_AFTER_MS old. */
export function slow(h: BudgetHolder, now: number): boolean {
  return now - h.startedAt >= RATE_JUDGED_AFTER_MS && rateOf(h, now) < MIN_BODY_RATE;
}

/** True when `h` got no byte for DISPLACE_AFTER_QUIET_MS at `now` (ms). */
export function quiet(h: BudgetHolder, now: number): boolean {
  return now - h.lastDataAt >= DISPLACE_AFTER_QUIET_MS;
}

/** Slow or quiet: a request in this state displaces nobody. */
const stalling = (h: BudgetHolder, now: number) => slow(h, now) || quiet(h, now);

interface Waiter {
  holder: BudgetHolder;
  n: number;
  pending: number;
  resume: () => void;
  /** When it started waiting (ms). */
  since: number;
}

export class ByteBudget {
  readonly capacity: number;
  /** What large requests may use together: the capacity less the small requests' reserve. */
  private readonly largeLimit: number;
  /** What small requests that are not tiny may use together. */
  private readonly smallLimit: number;
  private usedBytes = 0;
  /** Bytes large requests have read but wait to add (one chunk each, see `wait`). */
  private waitingBytes = 0;
  /** Requests waiting for room, in arrival order. */
  private waiters = new Map<BudgetHolder, Waiter>();
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
    this.smallLimit = Math.floor(capacity * (1 - TINY_RESERVE));
  }

  /** The bytes `h`'s size class may fill the budget to. */
  private limitFor(h: BudgetHolder): number {
    return h.tiny ? this.capacity : h.small ? this.smallLimit : this.largeLimit;
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
   * displacing every stalling upload (the caller waits for room, or answers 503).
   */
  take(holder: BudgetHolder, n: number, now = Date.now()): boolean {
    const limit = this.limitFor(holder);
    if (this.usedBytes + n > limit && !this.makeRoom(holder, n, limit, now)) return false;
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
  wait(holder: BudgetHolder, n: number, pending: number, resume: () => void, now = Date.now()): void {
    this.waitingBytes += pending;
    this.waiters.set(holder, { holder, n, pending, resume, since: now });
  }

  /** Stops waiting (the request ended meanwhile, or it may go on: see `unpause`). */
  cancelWait(holder: BudgetHolder, now = Date.now()): void {
    const w = this.waiters.get(holder);
    if (!w) return;
    this.waitingBytes -= w.pending;
    this.waiters.delete(holder);
    unpause(w, now);
  }

  /**
   * Resumes, in arrival order, every waiter whose bytes fit now; the first one that does not fit
   * and is not stalling (as of when it started waiting) may displace stalling uploads, as it
   * could have when it arrived (so requests that fit only in the small reserve cannot keep a
   * large one waiting for ever).
   */
  private wake(now = Date.now()): void {
    let displaced = false;
    for (const w of [...this.waiters.values()]) {
      if (!this.waiters.has(w.holder)) continue; // displaced meanwhile
      const limit = this.limitFor(w.holder);
      let fits = this.usedBytes + w.n <= limit;
      if (!fits && !displaced && !stalling(w.holder, w.since)) {
        displaced = true;
        fits = this.makeRoom(w.holder, w.n, limit, now);
      }
      if (!fits) continue;
      this.waiters.delete(w.holder);
      this.waitingBytes -= w.pending;
      unpause(w, now);
      w.resume();
    }
  }

  /** When `h` started waiting for room (ms), or undefined when it is not waiting. */
  private waitingSince(h: BudgetHolder): number | undefined {
    return this.waiters.get(h)?.since;
  }

  /** Gives back everything `holder` holds. Safe to call more than once. */
  release(holder: BudgetHolder, now = Date.now()): void {
    this.cancelWait(holder, now);
    if (this.drop(holder)) this.wake(now);
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

  /**
   * Displaces stalling uploads (the slowest first, see the header) until `n` more bytes for
   * `holder` fit under `limit`; none when that is not possible or `holder` is stalling itself.
   * True when they fit now.
   */
  private makeRoom(holder: BudgetHolder, n: number, limit: number, now: number): boolean {
    const need = this.usedBytes + n - limit;
    // A waiting request is judged as of when it started waiting (we stopped reading it).
    const at = (h: BudgetHolder) => this.waitingSince(h) ?? now;
    if (stalling(holder, at(holder))) return false;
    const floor = 2 * (holder.held + n);
    const eligible = [...this.holders]
      .filter(
        (h) =>
          h !== holder &&
          h.displaceable &&
          h.held > 0 &&
          (slow(h, at(h)) || (holder.small && h.held >= floor && quiet(h, at(h)))),
      )
      .sort((a, b) => rateOf(a, at(a)) - rateOf(b, at(b)));
    let freed = 0;
    const chosen: BudgetHolder[] = [];
    for (const v of eligible) {
      if (freed >= need) break;
      chosen.push(v);
      freed += v.held;
    }
    if (freed < need) return false;
    for (const v of chosen) {
      this.cancelWait(v, now);
      this.drop(v);
      this.displacedCount++;
      v.displace();
    }
    return true;
  }
}

/** The time `w` waited counts neither as quiet nor against its rate. */
function unpause(w: Waiter, now: number): void {
  const waited = Math.max(0, now - w.since);
  w.holder.startedAt += waited;
  w.holder.lastDataAt += waited;
}
