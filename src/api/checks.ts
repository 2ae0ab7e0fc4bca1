// Checks of values whose syntax a CRD schema cannot express: cron schedules, IANA time zones,
// gjson paths and calendar exclusion dates. They run wherever a spec is parsed (`sluice lint`,
// `sluice dev` and the controller, which reports a failure as a condition instead of Ready),
// with the same parsers the runtime uses, so what passes here also starts.
import { Cron } from 'croner';
import { compileGjson } from '../gjson/index.ts';
import { parseDurationMs } from './stream-config.ts';
import { checkTimeZone, resolveTimeZone, splitCronZone, type ZonedCron } from './timezone.ts';

export { checkTimeZone };

const EVERY = /^@every\s+(\S+)$/;

/**
 * undefined when `expr` is a schedule the calendar source and conditionsReset can run: a cron
 * expression (5 fields, or 6 with seconds first), a descriptor such as "@daily", or (with
 * `allowEvery`) "@every <duration>" (a positive one), each optionally after robfig/cron's
 * "TZ=<zone> " or "CRON_TZ=<zone> " prefix; otherwise why not.
 */
export function checkCron(expr: string, allowEvery: boolean): string | undefined {
  let zoned: ZonedCron;
  try {
    zoned = splitCronZone(expr);
    if (zoned.zone !== undefined) resolveTimeZone(zoned.zone);
  } catch (err) {
    return `"${expr}": ${(err as Error).message}`;
  }
  const spec = zoned.spec.trim();
  const every = EVERY.exec(spec);
  if (every) {
    if (!allowEvery) return '"@every" is not allowed here';
    const ms = parseDurationMs(every[1]!);
    return ms === undefined || ms <= 0
      ? `"${expr}": @every needs a positive duration such as "10s" (got "${every[1]}")`
      : undefined;
  }
  const fields = spec.split(/\s+/);
  if (!spec.startsWith('@') && (fields.length < 5 || fields.length > 6))
    return `"${expr}" has ${fields.length} fields; a cron expression has 5 (or 6 with seconds first)`;
  try {
    new Cron(spec, { paused: true });
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
