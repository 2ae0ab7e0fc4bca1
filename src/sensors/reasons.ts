// Why an event or a trigger execution was dead-lettered: a small fixed set of codes, used in DLQ
// records (`reason`), in the `reason` label of the dead-letter metrics and in log lines.
import { EvalBudgetError } from './inline-budget.ts';
import { FilterEvaluationError, TransformError } from './match/result.ts';
import { DestPathError, ParameterError, TemplateError } from './params/index.ts';
import { SandboxError } from './sandbox/pool.ts';

export const DEAD_LETTER_REASONS = [
  /** The message is not a valid event envelope (not JSON, wrong shape, nested too deeply). */
  'invalid-event',
  /** A dependency filter could not be evaluated (e.g. a Lua filter raised, a template failed). */
  'filter-error',
  /** The dependency's orderingKey path could not be read on this event (so its order is unknown). */
  'ordering-key-error',
  /** The jq or Lua transform failed or gave a result that is not an object/table. */
  'transform-error',
  /** A jq/Lua program ran past its deadline (or its instruction limit). */
  'eval-timeout',
  /** A jq/Lua program ran out of its memory limit. */
  'eval-memory',
  /** The jq/Lua engine trapped; it was replaced. */
  'eval-crash',
  /**
   * An inline evaluation (a Go template, a regular expression, an expression) needed more work
   * than its budget allows on the Sensor's event loop (see inline-budget.ts).
   */
  'eval-budget',
  /**
   * The event cannot wait in its trigger's partial match: the match would no longer fit in one
   * bus message (a KV entry is bounded by max_payload). Dead-lettered for that trigger only.
   */
  'join-too-large',
  /** A trigger parameter or template could not be resolved for these events. */
  'parameter-error',
  /** The trigger failed for good (attempts used up, or a non-retryable answer). */
  'trigger-failed',
  /** The message was delivered more times than the Sensor's max deliveries. */
  'max-deliveries',
  /** State about the event (a join's partial match holding it) would be larger than the bus takes. */
  'too-large',
] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

const SANDBOX_REASON: Record<string, DeadLetterReason | undefined> = {
  EvalTimeout: 'eval-timeout',
  EvalMemory: 'eval-memory',
  EvalCrash: 'eval-crash',
};

/** The first error of class `C` in `err`'s cause chain (itself included), if any. */
function causeOf<C>(err: unknown, C: abstract new (...a: never[]) => C): C | undefined {
  let e: unknown = err;
  for (let i = 0; i < 6 && e; i++) {
    if (e instanceof C) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The sandbox error behind `err` (directly or as its cause), if any. */
const sandboxCause = (err: unknown): SandboxError | undefined => causeOf(err, SandboxError);

/**
 * True when `err` says nothing about the event: the sandbox was busy or stopping. Such an event
 * is handed back for redelivery, not dead-lettered.
 */
export const isTransientEvalError = (err: unknown): boolean => sandboxCause(err)?.code === 'EvalBusy';

/** The reason code for a failure while matching or transforming one event. */
export function matchFailureReason(err: unknown): DeadLetterReason {
  const s = sandboxCause(err);
  const r = s && SANDBOX_REASON[s.code];
  if (r) return r;
  if (causeOf(err, EvalBudgetError)) return 'eval-budget';
  if (err instanceof TransformError) return 'transform-error';
  if (err instanceof FilterEvaluationError) return 'filter-error';
  return 'filter-error';
}

/** The reason code of a trigger execution that failed for good. */
export function triggerFailureReason(err: unknown): DeadLetterReason {
  if (causeOf(err, EvalBudgetError)) return 'eval-budget';
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    if (e instanceof ParameterError || e instanceof TemplateError || e instanceof DestPathError)
      return 'parameter-error';
    e = (e as { cause?: unknown }).cause;
  }
  return 'trigger-failed';
}
