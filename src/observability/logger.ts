// One pino logger per process; components take child loggers bound to their identity
// (kind/namespace/name, trigger, ...). Secret-bearing keys are redacted wherever they appear.
import { type Logger, pino } from 'pino';

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

export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.SLUICE_LOG_LEVEL ?? 'info',
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
