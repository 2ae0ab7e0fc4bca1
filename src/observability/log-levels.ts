// The log levels every role accepts (`--log-level`, SLUICE_LOG_LEVEL): pino's, most verbose
// first. A module of its own, without pino, so command-line parsing can check a level cheaply.

/** pino's levels, most verbose first; `silent` logs nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];

/** True when `v` is one of LOG_LEVELS. */
export const isLogLevel = (v: string): v is LogLevel => (LOG_LEVELS as readonly string[]).includes(v);

/** Thrown by createLogger for a level that is not one of LOG_LEVELS (a user error). */
export class LogLevelError extends Error {
  readonly code = 'InvalidLogLevel';

  /** `source` is where the level came from, e.g. `SLUICE_LOG_LEVEL` or `--log-level`. */
  constructor(source: string, level: string) {
    super(`${source} "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
    this.name = 'LogLevelError';
  }
}
