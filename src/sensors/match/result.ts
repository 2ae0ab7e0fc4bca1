// Why an event did not pass a filter. `error` separates a user expression that failed to run
// (bad Lua, a template that errors: the Sensor dead-letters the event) from an ordinary non-match.

export class Fail {
  readonly reason: string;
  readonly error: boolean;
  /** The error behind a failed evaluation (e.g. a sandbox timeout), when there is one. */
  readonly cause: unknown;
  constructor(reason: string, error: boolean, cause?: unknown) {
    this.reason = reason;
    this.error = error;
    this.cause = cause;
  }
}

export type MatchResult = { matched: true } | { matched: false; reason: string; error: boolean };

/** Thrown by `matches()` when a filter could not be evaluated (the Sensor dead-letters the event). */
export class FilterEvaluationError extends Error {
  readonly code = 'FilterEvaluationError';
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/** Thrown when a dependency's filters or transform are invalid (at compile time). */
export class DependencyConfigError extends Error {
  readonly code = 'InvalidDependency';
}

/** Thrown by `transform()` when the jq program or Lua script fails on an event. */
export class TransformError extends Error {
  readonly code = 'TransformError';
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
  }
}
