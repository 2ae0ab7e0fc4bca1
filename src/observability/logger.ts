// One pino logger per process; components take child loggers bound to their identity
// (kind/namespace/name, trigger, ...). Secret-bearing keys are redacted wherever they appear.
import { type Logger, pino } from 'pino';
import { isLogLevel, LogLevelError } from './log-levels.ts';

export type { Logger };

let root: Logger | undefined;

export interface LoggerOptions {
  level?: string;
  /** Extra fields on every line (a Sensor's `loggingFields`, the role, ...). */
  base?: Record<string, unknown>;
  /** Where lines go; stdout by default (tests pass a stream). */
  destination?: NodeJS.WritableStream;
}

const REDACT = [
  'password',
  'token',
  'authorization',
  'secret',
  '*.password',
  '*.token',
  '*.authorization',
  '*.secret',
  'headers.authorization',
  '*.headers.authorization',
];

/**
 * A JSON-lines pino logger at `opts.level`, else $SLUICE_LOG_LEVEL, else info. Throws
 * LogLevelError for a level that is not one of LOG_LEVELS (pino's own error has a stack trace
 * and no list of the levels).
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? process.env.SLUICE_LOG_LEVEL ?? 'info';
  if (!isLogLevel(level))
    throw new LogLevelError(opts.level !== undefined ? 'log level' : 'SLUICE_LOG_LEVEL', level);
  return pino(
    {
      level,
      base: { ...opts.base },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    (opts.destination as pino.DestinationStream | undefined) ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** The process-wide logger, created on first use. */
export function rootLogger(): Logger {
  root ??= createLogger();
  return root;
}

export function setRootLogger(logger: Logger): void {
  root = logger;
}
