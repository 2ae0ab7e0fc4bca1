// Why an event did not pass a filter. `error` separates a user expression that failed to run
// (bad Lua, a template that errors: the Sensor should log it) from an ordinary non-match.

export class Fail {
  readonly reason: string;
  readonly error: boolean;
  constructor(reason: string, error: boolean) {
    this.reason = reason;
    this.error = error;
  }
}

export type MatchResult = { matched: true } | { matched: false; reason: string; error: boolean };

/** Thrown by `matches()` when a filter could not be evaluated; the event does not match. */
export class FilterEvaluationError extends Error {
  readonly code = 'FilterEvaluationError';
}

/** Thrown when a dependency's filters or transform are invalid (at compile time). */
export class DependencyConfigError extends Error {
  readonly code = 'InvalidDependency';
}

/** Thrown by `transform()` when the jq program or Lua script fails on an event. */
export class TransformError extends Error {
  readonly code = 'TransformError';
}
