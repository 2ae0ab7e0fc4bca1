// The text of a time as Go's time.Time.String() writes it, which is what upstream's calendar
// source publishes as `eventTime`: "2026-03-05 18:31:21.5 +0000 UTC" (fractional seconds without
// trailing zeros, numeric offset, zone abbreviation). Differences, documented in the README: the
// monotonic-clock suffix Go appends to a time taken from time.Now() (" m=+29.86") is left out,
// and outside UTC the abbreviation is the one Intl knows, which is Go's for most American zones
// ("EST", "PDT") and a "GMT+1"-style name for many others (Go writes "CET").

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** `d` in time zone `tz` (IANA, default UTC) as Go's time.String() formats it. */
export function goTimeString(d: Date, tz = 'UTC'): string {
  const utc = tz === 'UTC' || tz === 'Etc/UTC';
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      hourCycle: 'h23',
      timeZoneName: 'short',
    })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>;
  const offsetText =
    new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' })
      .formatToParts(d)
      .find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([+-])(\d{2}):(\d{2})/.exec(offsetText);
  const offset = m ? `${m[1]}${m[2]}${m[3]}` : '+0000';
  const ms = d.getUTCMilliseconds();
  const frac = ms ? `.${pad(ms, 3).replace(/0+$/, '')}` : '';
  const date = `${parts.year}-${pad(Number(parts.month))}-${pad(Number(parts.day))}`;
  const time = `${pad(Number(parts.hour))}:${pad(Number(parts.minute))}:${pad(Number(parts.second))}${frac}`;
  return `${date} ${time} ${offset} ${utc ? 'UTC' : (parts.timeZoneName ?? 'UTC')}`;
}
