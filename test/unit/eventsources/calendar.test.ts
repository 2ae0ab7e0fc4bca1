import { describe, expect, it } from 'vitest';
import { goTimeString } from '../../../src/eventsources/calendar/go-time.ts';
import {
  CalendarSpecError,
  compileSchedule,
  parseExclusionDate,
} from '../../../src/eventsources/calendar/schedule.ts';

const iso = (ds: Date[]) => ds.map((d) => d.toISOString());

describe('calendar schedule', () => {
  it('cron with a seconds field', () => {
    const s = compileSchedule({ schedule: '*/20 * * * * *' });
    expect(iso(s.between(new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:01:00Z')))).toEqual([
      '2026-01-01T00:00:20.000Z',
      '2026-01-01T00:00:40.000Z',
      '2026-01-01T00:01:00.000Z',
    ]);
  });
  it('5-field cron read in the time zone', () => {
    const s = compileSchedule({ schedule: '0 9 * * *', timezone: 'Europe/Paris' });
    expect(s.next(new Date('2026-01-15T00:00:00Z'))!.toISOString()).toBe('2026-01-15T08:00:00.000Z');
    expect(s.next(new Date('2026-07-15T00:00:00Z'))!.toISOString()).toBe('2026-07-15T07:00:00.000Z');
  });
  it('intervals are aligned to the epoch, so fire times are the same everywhere', () => {
    const s = compileSchedule({ interval: '10s' });
    expect(s.next(new Date('2026-01-01T00:00:03.500Z'))!.toISOString()).toBe('2026-01-01T00:00:10.000Z');
    expect(s.next(new Date('2026-01-01T00:00:10.000Z'))!.toISOString()).toBe('2026-01-01T00:00:20.000Z');
    expect(
      compileSchedule({ schedule: '@every 1m' }).next(new Date('2026-01-01T00:00:30Z'))!.toISOString(),
    ).toBe('2026-01-01T00:01:00.000Z');
  });
  it('schedule takes precedence over interval; descriptors work', () => {
    const s = compileSchedule({ schedule: '@hourly', interval: '1s' });
    expect(s.next(new Date('2026-01-01T00:10:00Z'))!.toISOString()).toBe('2026-01-01T01:00:00.000Z');
  });
  it('skips excluded days, in the source time zone, in upstream EXDATE or RFC 3339 form', () => {
    const s = compileSchedule({
      schedule: '0 12 * * *',
      exclusionDates: ['EXDATE:20260102T150405Z', '2026-01-03T00:00:00Z'],
    });
    expect(iso(s.between(new Date('2026-01-01T13:00:00Z'), new Date('2026-01-05T00:00:00Z')))).toEqual([
      '2026-01-04T12:00:00.000Z',
    ]);
    expect(parseExclusionDate('EXDATE:20190602T160210Z').toISOString()).toBe('2019-06-02T16:02:10.000Z');
  });
  it('rejects bad input with a clear error', () => {
    expect(() => compileSchedule({})).toThrow(CalendarSpecError);
    expect(() => compileSchedule({ interval: 'soon' })).toThrow(/interval "soon"/);
    expect(() => compileSchedule({ schedule: '* * *' })).toThrow(/schedule "\* \* \*"/);
    expect(() => compileSchedule({ interval: '1s', timezone: 'Mars/Olympus' })).toThrow(/time zone/);
    expect(() => parseExclusionDate('someday')).toThrow(/EXDATE/);
  });
});

describe('eventTime as upstream publishes it (Go time.String())', () => {
  const t = new Date(Date.UTC(2021, 2, 5, 18, 31, 21, 500));
  it('UTC: date, time with trimmed fraction, offset, zone', () => {
    expect(goTimeString(t)).toBe('2021-03-05 18:31:21.5 +0000 UTC');
    expect(goTimeString(new Date(Date.UTC(2021, 0, 1)))).toBe('2021-01-01 00:00:00 +0000 UTC');
  });
  it('another time zone: local time, its offset (daylight saving included) and abbreviation', () => {
    expect(goTimeString(t, 'America/New_York')).toBe('2021-03-05 13:31:21.5 -0500 EST');
    expect(goTimeString(new Date(Date.UTC(2021, 6, 1)), 'America/Los_Angeles')).toBe(
      '2021-06-30 17:00:00 -0700 PDT',
    );
    expect(goTimeString(t, 'Asia/Kolkata')).toMatch(/^2021-03-06 00:01:21\.5 \+0530 /);
  });
});
