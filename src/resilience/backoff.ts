// retryStrategy as upstream documents it: `steps` is the total number of attempts (so steps: 3 is
// one try and two retries), the wait before retry n is duration * factor^(n-1), stretched by up
// to `jitter` (a fraction: 0.1 = up to 10% longer), and sluice's `cap` bounds each wait.
import { parseDurationMs } from '../api/stream-config.ts';

export interface BackoffSpec {
  duration?: string | number | undefined;
  factor?: string | number | undefined;
  jitter?: string | number | undefined;
  steps?: number | undefined;
  cap?: string | number | undefined;
}

export interface RetryPlan {
  /** Total attempts, at least 1. */
  attempts: number;
  /** Wait before attempt `n + 1` (n ≥ 1), in ms, given a random number in [0, 1). */
  delayMs(n: number, random?: number): number;
}

const DEFAULT_DURATION_MS = 1000;

/** Upstream durations are Go duration strings ("1s") or integers in nanoseconds. */
function toMs(v: string | number | undefined, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  if (typeof v === 'number' || /^\d+$/.test(v)) return Number(v) / 1e6;
  return parseDurationMs(v) ?? fallback;
}

const toNumber = (v: string | number | undefined, fallback: number): number => {
  if (v === undefined || v === '') return fallback;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : fallback;
};

export function retryPlan(spec: BackoffSpec | undefined): RetryPlan {
  if (!spec) return { attempts: 1, delayMs: () => 0 };
  const attempts = Math.max(1, spec.steps ?? 1);
  const base = toMs(spec.duration, DEFAULT_DURATION_MS);
  const factor = Math.max(1, toNumber(spec.factor, 1));
  const jitter = Math.max(0, toNumber(spec.jitter, 0));
  const cap = spec.cap === undefined ? Number.POSITIVE_INFINITY : toMs(spec.cap, Number.POSITIVE_INFINITY);
  return {
    attempts,
    delayMs(n, random = Math.random()) {
      const raw = base * factor ** (n - 1);
      const withJitter = raw + raw * jitter * random;
      return Math.round(Math.min(withJitter, cap));
    },
  };
}
