// When a calendar source fires (pure). A `schedule` is a cron expression (5 fields, or 6 with
// seconds first; descriptors such as "@hourly"; "@every 10s" is read as an interval) in its
// "TZ=<zone> " prefix's zone or else `timezone`; an `interval` fires at whole multiples of its length since the Unix epoch, so fire
// times (and the event ids made from them) are the same in every process and after a restart.
// `exclusionDates` name days (in the source's time zone) on which nothing fires; upstream's
// "EXDATE:20190102T150405Z" form and RFC 3339 timestamps are both read.
import { Cron } from 'croner';
import { parseExclusionDate as parseExclusion } from '../../api/checks.ts';
import { parseDurationMs } from '../../api/stream-config.ts';
import { resolveTimeZone, splitCronZone, type ZonedCron } from '../../api/timezone.ts';

export interface CalendarSpec {
  schedule?: string | undefined;
  interval?: string | undefined;
  exclusionDates?: string[] | undefined;
  timezone?: string | undefined;
}

export class CalendarSpecError extends Error {
  readonly code = 'InvalidCalendar';
}

export interface Schedule {
  /** The IANA zone fire times are computed (and written) in. */
  readonly zone: string;
  /** The first fire time strictly after `after`, skipping excluded days; undefined when none. */
  next(after: Date): Date | undefined;
  /** Every fire time in (after, until], oldest first, at most `limit`. */
  between(after: Date, until: Date, limit?: number): Date[];
}

/** "EXDATE:20190102T150405Z" or an RFC 3339 time → the calendar day it names (UTC). */
export function parseExclusionDate(s: string): Date {
  try {
    return parseExclusion(s);
  } catch (err) {
    throw new CalendarSpecError((err as Error).message);
  }
}

/** YYYY-MM-DD of `d` in time zone `tz`. */
function dayIn(d: Date, tz: string): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: tz,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(d);
}

/**
 * Compiles a calendar spec. The schedule's zone is its "TZ=" / "CRON_TZ=" prefix when it has one
 * (robfig/cron's, which wins over `timezone` as upstream's does), else `timezone`, else UTC;
 * zone names are read as Go reads them (see api/timezone.ts). Throws CalendarSpecError.
 */
export function compileSchedule(spec: CalendarSpec): Schedule {
  let zoned: ZonedCron = { zone: undefined, spec: spec.schedule ?? '' };
  let tz: string;
  try {
    if (spec.schedule) zoned = splitCronZone(spec.schedule);
    tz = resolveTimeZone(zoned.zone ?? spec.timezone);
  } catch (err) {
    throw new CalendarSpecError(`schedule "${spec.schedule}": ${(err as Error).message}`);
  }
  const excluded = new Set((spec.exclusionDates ?? []).map((s) => dayIn(parseExclusionDate(s), tz)));
  let base: (after: Date) => Date | undefined;
  const cronText = zoned.spec.trim();
  const every = cronText.match(/^@every\s+(\S+)$/)?.[1];
  const intervalText = spec.schedule && !every ? undefined : (every ?? spec.interval);
  if (spec.schedule && !every) {
    let cron: Cron;
    try {
      cron = new Cron(cronText, { paused: true, timezone: tz });
    } catch (err) {
      throw new CalendarSpecError(`schedule "${spec.schedule}": ${(err as Error).message}`);
    }
    base = (after) => cron.nextRun(after) ?? undefined;
  } else if (intervalText) {
    const ms = parseDurationMs(intervalText);
    if (!ms || ms < 1)
      throw new CalendarSpecError(`interval "${intervalText}" is not a positive duration such as "10s"`);
    base = (after) => new Date((Math.floor(after.getTime() / ms) + 1) * ms);
  } else {
    throw new CalendarSpecError('set schedule or interval');
  }
  const next = (after: Date): Date | undefined => {
    let t = base(after);
    // Bounded: a schedule excluded on every day it fires would otherwise loop forever.
    for (let i = 0; t && excluded.size && excluded.has(dayIn(t, tz)) && i < 100_000; i++) t = base(t);
    return t;
  };
  return {
    zone: tz,
    next,
    between(after, until, limit = 10_000) {
      const out: Date[] = [];
      for (let t = next(after); t && t <= until && out.length < limit; t = next(t)) out.push(t);
      return out;
    },
  };
}
