// Per-trigger circuit breaker (sluice extension `circuitBreaker`). Closed: calls pass, failures in
// a row are counted; at `consecutiveFailures` it opens. Open: no calls for `openDurationMs`;
// callers are told how long to wait (the Sensor leaves the message un-acked and asks for it again
// later, instead of burning retries). Then half-open: one probe at a time; `halfOpenProbes`
// successes close it, any failure opens it again.
//
// Hand-written rather than taken from a library: the Sensor must ask "may I call now, and if not,
// for how long not?" without making a call, and close only after several probes; the libraries we
// looked at (cockatiel, opossum) wrap the call itself and close after one success.

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  consecutiveFailures: number;
  openDurationMs: number;
  halfOpenProbes: number;
  now?: () => number;
  onStateChange?: (state: BreakerState) => void;
}

export type Permit =
  | { allowed: true; release(success: boolean): void }
  | { allowed: false; retryInMs: number };

export class CircuitBreaker {
  private readonly o: BreakerOptions;
  private readonly now: () => number;
  private stateValue: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private probeSuccesses = 0;

  constructor(o: BreakerOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
  }

  get state(): BreakerState {
    if (this.stateValue === 'open' && this.now() - this.openedAt >= this.o.openDurationMs) {
      this.set('half-open');
      this.probeSuccesses = 0;
    }
    return this.stateValue;
  }

  /** Asks to make one call. An allowed caller must call `release` exactly once. */
  tryAcquire(): Permit {
    const state = this.state;
    if (state === 'open') {
      return { allowed: false, retryInMs: Math.max(1, this.openedAt + this.o.openDurationMs - this.now()) };
    }
    if (state === 'half-open') {
      if (this.probing)
        return { allowed: false, retryInMs: Math.max(100, Math.min(1000, this.o.openDurationMs)) };
      this.probing = true;
      return { allowed: true, release: (ok) => this.afterProbe(ok) };
    }
    let released = false;
    return {
      allowed: true,
      release: (ok) => {
        if (released) return;
        released = true;
        this.afterCall(ok);
      },
    };
  }

  private afterCall(ok: boolean): void {
    if (this.stateValue !== 'closed') {
      // A call started while closed finished after the breaker opened: it only counts if it failed.
      return;
    }
    if (ok) {
      this.failures = 0;
      return;
    }
    this.failures++;
    if (this.failures >= this.o.consecutiveFailures) this.open();
  }

  private afterProbe(ok: boolean): void {
    this.probing = false;
    if (!ok) {
      this.open();
      return;
    }
    this.probeSuccesses++;
    if (this.probeSuccesses >= this.o.halfOpenProbes) {
      this.failures = 0;
      this.set('closed');
    }
  }

  private open(): void {
    this.openedAt = this.now();
    this.failures = 0;
    this.set('open');
  }

  private set(s: BreakerState): void {
    if (this.stateValue === s) return;
    this.stateValue = s;
    this.o.onStateChange?.(s);
  }
}
