// Checks for numeric command-line values, run by commander as the flag is parsed, so that
// `--metrics-port abc` is a one-line usage error (exit 2) instead of NaN reaching a listen call.
// Each returns the text unchanged: the subcommands read their flags as strings.
import { InvalidArgumentError } from 'commander';
import { POD_GRANTS } from '../api/pod-risks.ts';
import { isLogLevel, LOG_LEVELS } from '../observability/log-levels.ts';

/** A TCP port, 0 (any free port) to 65535. */
export function port(v: string): string {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65_535)
    throw new InvalidArgumentError('expected a port number from 0 to 65535.');
  return v;
}

/** A whole number greater than 0 (workers, seconds). */
export function count(v: string): string {
  if (!/^\d+$/.test(v) || Number(v) < 1)
    throw new InvalidArgumentError('expected a whole number greater than 0.');
  return v;
}

/** A log level (`--log-level`): one of pino's, see LOG_LEVELS. */
export function logLevel(v: string): string {
  if (!isLogLevel(v)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}.`);
  return v;
}

/** `--allow-pod-settings`: a comma-separated list of POD_GRANTS ("" allows none). */
export function podGrants(v: string): string {
  const bad = v.split(/[\s,]+/).filter((w) => w && !(POD_GRANTS as readonly string[]).includes(w));
  if (bad.length)
    throw new InvalidArgumentError(`expected a comma-separated list of ${POD_GRANTS.join(', ')}.`);
  return v;
}
