// Bounds on what runs inline, on the Sensor's event loop: Go templates (parameters, data-filter
// `template`), regular expressions (data-filter values, `=~` in exprs, sprig regex functions)
// and expressions. None of them can loop forever, but their cost still grows with what the event
// carries (a 1 MB field against a pattern of 2,000 instructions, `uniq` over 60,000 tags), so
// each evaluation gets a work budget: a deterministic count of units (about 40–60 ns each on
// the machines we measured), charged before expensive work is done, plus a wall-clock backstop.
// An evaluation over its budget fails with EvalBudgetError and the event is dead-lettered
// (`eval-budget`); the same event always fails the same way, so it is never retried.
// Between events, yieldIfBusy() hands the event loop to I/O (/healthz, SIGTERM, acks) when the
// Sensor has been computing for more than BUSY_MS without a break.

/** Units one evaluation may use: 8 M (a regex over 1 MB with a pattern of 8 instructions). */
export const INLINE_BUDGET_UNITS = 8_000_000;
/** Wall-clock backstop of one evaluation (ms), checked every 1,024 charges. */
export const INLINE_DEADLINE_MS = 1000;
/** Units per template step (a pipeline command or a range iteration). */
export const UNITS_PER_STEP = 8;

/** An inline evaluation went over its work budget (the event is dead-lettered: `eval-budget`). */
export class EvalBudgetError extends Error {
  readonly code = 'EvalBudget';
}

/** The work budget of one evaluation. */
export class Meter {
  readonly limit: number;
  private used = 0;
  private ticks = 0;
  private readonly deadline: number;

  constructor(units = INLINE_BUDGET_UNITS, deadlineMs = INLINE_DEADLINE_MS) {
    this.limit = units;
    this.deadline = performance.now() + deadlineMs;
  }

  /** Units left. */
  get left(): number {
    return this.limit - this.used;
  }

  /**
   * Charges `units` for work about to be done (or just done); throws EvalBudgetError, naming
   * `what`, when the budget or the deadline is exceeded.
   */
  charge(units: number, what: string): void {
    this.used += units;
    if (this.used > this.limit)
      throw new EvalBudgetError(
        `${what}: more work than one evaluation may do on the Sensor's event loop (${this.limit.toLocaleString('en-US')} units)`,
      );
    if ((++this.ticks & 1023) === 0 && performance.now() > this.deadline)
      throw new EvalBudgetError(`${what}: evaluation ran longer than ${INLINE_DEADLINE_MS} ms`);
  }
}

let current: Meter | undefined;

/** Runs `f` (synchronous) with `m` as the meter of everything it evaluates inline. */
export function metered<T>(m: Meter, f: () => T): T {
  const prev = current;
  current = m;
  try {
    return f();
  } finally {
    current = prev;
  }
}

/** The meter of the evaluation running now, or a fresh one for a call outside any. */
export const currentMeter = (): Meter => current ?? new Meter();

/** The meter of the evaluation running now, if any. */
export const activeMeter = (): Meter | undefined => current;

/** Computing this long without a break makes the next event wait for the event loop (ms). */
export const BUSY_MS = 50;
let lastBreak = performance.now();
let ticker: NodeJS.Timeout | undefined;

/**
 * Undefined when the event loop turned recently (the happy path: one clock read), else a promise
 * that resolves after the loop has polled for I/O once.
 */
export function yieldIfBusy(): Promise<void> | undefined {
  if (!ticker) {
    lastBreak = performance.now();
    ticker = setInterval(() => {
      lastBreak = performance.now();
    }, 10).unref();
  }
  if (performance.now() - lastBreak < BUSY_MS) return undefined;
  return new Promise((resolve) =>
    setImmediate(() => {
      lastBreak = performance.now();
      resolve();
    }),
  );
}
