// Time zone names as upstream reads them: Go's time.LoadLocation. It accepts "" and "UTC" (UTC),
// "Local" (the process's own zone: in a pod, UTC unless the pod sets TZ or mounts /etc/localtime)
// and the IANA database's names, exactly as written ("America/New_York", "US/Eastern",
// "Etc/GMT+5", "Factory"); it refuses other spellings ("america/new_york", "utc") and offsets
// ("+05:00"), which Intl would take. sluice accepts and refuses the same names and hands the
// runtime (Intl, croner) the zone it means. robfig/cron's "TZ=<zone> " / "CRON_TZ=<zone> "
// schedule prefix (upstream's cron library) is read here too.
import { GO_ZONE_NAMES } from './tz-names.ts';

export class TimeZoneError extends Error {
  readonly code = 'InvalidTimeZone';
}

const NAMES: ReadonlySet<string> = new Set(GO_ZONE_NAMES);
const BY_LOWER: ReadonlyMap<string, string> = new Map(GO_ZONE_NAMES.map((n) => [n.toLowerCase(), n]));

function intlKnows(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The zone this process runs in, as Go's "Local" means it (UTC when none is configured). */
export function localTimeZone(): string {
  return new Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

function unknownZone(name: string): string {
  const known = BY_LOWER.get(name.toLowerCase());
  if (name.toLowerCase() === 'utc' || name.toLowerCase() === 'local')
    return `"${name}" is not a time zone name Go knows: names are case-sensitive (did you mean "${name.toUpperCase() === 'UTC' ? 'UTC' : 'Local'}"?)`;
  if (known)
    return `"${name}" is not a time zone name Go knows: names are case-sensitive (did you mean "${known}"?)`;
  if (/^[-+−]?\d{1,2}(:?\d{2})?$/.test(name) || /^(UTC|GMT)[+-]/i.test(name))
    return `"${name}" is an offset, not a time zone name: use an IANA name such as "Asia/Karachi", or "Etc/GMT-5" for a fixed UTC+5 (Etc/ names invert the sign)`;
  return `"${name}" is not a known IANA time zone (e.g. "UTC", "Europe/Paris", "America/New_York")`;
}

/**
 * A time zone name as Go's time.LoadLocation reads it → the IANA zone the runtime uses for it
 * ("" and "UTC" → "UTC", "Local" → this process's zone, "Factory" → "UTC"). Throws
 * TimeZoneError naming what is wrong (case, an offset, an unknown name).
 */
export function resolveTimeZone(name: string | undefined): string {
  if (name === undefined || name === '' || name === 'UTC') return 'UTC';
  if (name === 'Local') return localTimeZone();
  if (!NAMES.has(name)) throw new TimeZoneError(unknownZone(name));
  // Factory is tzdata's placeholder zone: offset 0, abbreviation "-00". Intl does not know it.
  const zone = name === 'Factory' ? 'UTC' : name;
  if (!intlKnows(zone))
    throw new TimeZoneError(`"${name}" is a Go time zone this runtime's time zone data does not have`);
  return zone;
}

/** undefined when `tz` is a time zone name Go accepts (and this runtime can use); otherwise why not. */
export function checkTimeZone(tz: string): string | undefined {
  try {
    resolveTimeZone(tz);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** A cron schedule with robfig/cron's optional zone prefix split off. */
export interface ZonedCron {
  /** The zone named by "TZ=" / "CRON_TZ=" (as written; "" is UTC), or undefined without a prefix. */
  zone: string | undefined;
  /** The schedule after the prefix. */
  spec: string;
}

/**
 * Splits robfig/cron's "TZ=Europe/Paris 0 9 * * *" or "CRON_TZ=... " prefix off a schedule,
 * as its parser does: the zone runs to the first space. Throws TimeZoneError when a prefix is
 * not followed by a space and a schedule (robfig/cron v3 panics there).
 */
export function splitCronZone(expr: string): ZonedCron {
  if (!expr.startsWith('TZ=') && !expr.startsWith('CRON_TZ=')) return { zone: undefined, spec: expr };
  const space = expr.indexOf(' ');
  if (space < 0 || expr.slice(space).trim() === '')
    throw new TimeZoneError(`"${expr}": a TZ= prefix must be followed by a space and the schedule`);
  return { zone: expr.slice(expr.indexOf('=') + 1, space), spec: expr.slice(space).trim() };
}
