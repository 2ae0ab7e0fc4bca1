// Time filters: the event passes when its time of day, in the filter's time zone (UTC by
// default), is in [start, stop). When stop is before start the window spans midnight: it is
// [start, 24:00) together with [00:00, stop). As upstream does, the time compared is the event's
// own time (the CloudEvent `time` attribute, set when the EventSource received it), so a
// redelivered or replayed event is judged by when it happened, not by when it is processed; an
// event without a valid time is judged by the current time.
import type { TimeFilter } from '../../api/sensor.ts';
import { resolveTimeZone } from '../../api/timezone.ts';

export class TimeFilterError extends Error {
  readonly code = 'InvalidTimeFilter';
}

/** Milliseconds since midnight of "HH:MM", "HH:MM:SS" or "HH:MM:SS.fff" (Go reads "," too). */
function msOfDay(hhmmss: string, what: string): number {
  const m = /^([01]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9])(?:[.,]([0-9]+))?)?$/.exec(hhmmss.trim());
  if (!m)
    throw new TimeFilterError(
      `${what} ${JSON.stringify(hhmmss)} is not a time of day (HH:MM, HH:MM:SS or HH:MM:SS.fff)`,
    );
  const frac = m[4] ? Math.floor(Number(`0.${m[4]}`) * 1000) : 0;
  return ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3] ?? 0)) * 1000 + frac;
}

export interface CompiledTimeFilter {
  /** Undefined when the time passes, else why not. */
  check(at: Date): string | undefined;
}

export function compileTimeFilter(f: TimeFilter): CompiledTimeFilter {
  const start = msOfDay(f.start, 'start');
  const stop = msOfDay(f.stop, 'stop');
  let zone: string;
  try {
    zone = resolveTimeZone(f.timezone);
  } catch (err) {
    throw new TimeFilterError(`timezone ${(err as Error).message}`);
  }
  let fmt: Intl.DateTimeFormat;
  try {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      hourCycle: 'h23',
    });
  } catch {
    throw new TimeFilterError(`timezone ${JSON.stringify(zone)} is not a known IANA time zone`);
  }
  const utc = zone === 'UTC' || zone === 'Etc/UTC';
  const window = `[${f.start}, ${f.stop}) ${f.timezone || 'UTC'}`;
  return {
    check(at) {
      let s: number;
      if (utc) s = at.getUTCHours() * 3600 + at.getUTCMinutes() * 60 + at.getUTCSeconds();
      else {
        let h = 0;
        let m = 0;
        let sec = 0;
        for (const p of fmt.formatToParts(at)) {
          if (p.type === 'hour') h = Number(p.value);
          else if (p.type === 'minute') m = Number(p.value);
          else if (p.type === 'second') sec = Number(p.value);
        }
        s = h * 3600 + m * 60 + sec;
      }
      s = s * 1000 + at.getUTCMilliseconds();
      const inside = start < stop ? s >= start && s < stop : s >= start || s < stop;
      return inside ? undefined : `event time ${at.toISOString()} is outside the window ${window}`;
    },
  };
}
