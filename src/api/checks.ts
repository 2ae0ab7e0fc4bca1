// Checks of values whose syntax a CRD schema cannot express: cron schedules, IANA time zones,
// gjson paths and calendar exclusion dates. They run wherever a spec is parsed (`sluice lint`,
// `sluice dev` and the controller, which reports a failure as a condition instead of Ready),
// with the same parsers the runtime uses, so what passes here also starts.
import { Cron } from 'croner';
import { compileGjson } from '../gjson/index.ts';

/** undefined when `tz` is an IANA time zone this runtime knows; otherwise why not. */
export function checkTimeZone(tz: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return undefined;
  } catch {
    return `"${tz}" is not a known IANA time zone (e.g. "UTC", "Europe/Paris", "America/New_York")`;
  }
}

const EVERY = /^@every\s+(\S+)$/;

/**
 * undefined when `expr` is a schedule the calendar source and conditionsReset can run: a cron
 * expression (5 fields, or 6 with seconds first), a descriptor such as "@daily", or (with
 * `allowEvery`) "@every <duration>"; otherwise why not.
 */
export function checkCron(expr: string, allowEvery: boolean): string | undefined {
  if (EVERY.test(expr.trim())) return allowEvery ? undefined : '"@every" is not allowed here';
  const fields = expr.trim().split(/\s+/);
  if (!expr.trim().startsWith('@') && (fields.length < 5 || fields.length > 6))
    return `"${expr}" has ${fields.length} fields; a cron expression has 5 (or 6 with seconds first)`;
  try {
    new Cron(expr, { paused: true });
    return undefined;
  } catch (err) {
    return `"${expr}" is not a valid cron expression: ${(err as Error).message}`;
  }
}

/** undefined when `path` is a gjson path sluice can evaluate; otherwise why not. */
export function checkPath(path: string): string | undefined {
  try {
    compileGjson(path);
    return undefined;
  } catch (err) {
    return `invalid path ${JSON.stringify(path)}: ${(err as Error).message}`;
  }
}

/**
 * "EXDATE:20190102T150405Z" (upstream's form) or an RFC 3339 time → the moment it names; throws
 * an Error naming the accepted forms otherwise.
 */
export function parseExclusionDate(s: string): Date {
  const v = s.trim().replace(/^EXDATE[^:]*:/i, '');
  const compact = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?$/.exec(v);
  const d = compact
    ? new Date(
        Date.UTC(
          Number(compact[1]),
          Number(compact[2]) - 1,
          Number(compact[3]),
          Number(compact[4] ?? 0),
          Number(compact[5] ?? 0),
          Number(compact[6] ?? 0),
        ),
      )
    : new Date(v);
  if (Number.isNaN(d.getTime()))
    throw new Error(`exclusion date "${s}" is neither "EXDATE:YYYYMMDDTHHMMSSZ" nor an RFC 3339 time`);
  return d;
}
