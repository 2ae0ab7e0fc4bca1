// Values upstream reads with Go's own parsers — time zones (time.LoadLocation), cron schedules
// with robfig/cron's TZ= prefix, durations (time.ParseDuration), times of day (time.Parse) — are
// accepted and refused as Go accepts and refuses them, by lint (the schemas) and at run time.
// Expected values were checked against Go 1.26 (tzdata 2025c) and robfig/cron v3.0.1.
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { checkCron } from '../../../src/api/checks.ts';
import { GO_DURATION, POSITIVE_DURATION } from '../../../src/api/kit.ts';
import { parseDurationMs } from '../../../src/api/stream-config.ts';
import { checkTimeZone, resolveTimeZone, splitCronZone } from '../../../src/api/timezone.ts';
import { validateText } from '../../../src/api/validate.ts';
import { compileSchedule } from '../../../src/eventsources/calendar/schedule.ts';
import { compileTimeFilter } from '../../../src/sensors/match/time.ts';
import { resetSchedule } from '../../../src/sensors/resets.ts';
import { validEventSource, validSensor } from '../../fixtures/manifests.ts';

describe('time zone names as Go reads them', () => {
  it('accepts what time.LoadLocation accepts, as the zone the runtime uses', () => {
    expect(resolveTimeZone(undefined)).toBe('UTC');
    expect(resolveTimeZone('')).toBe('UTC');
    expect(resolveTimeZone('UTC')).toBe('UTC');
    expect(resolveTimeZone('Factory')).toBe('UTC');
    expect(resolveTimeZone('Local')).toBe(new Intl.DateTimeFormat().resolvedOptions().timeZone);
    for (const z of ['America/New_York', 'US/Eastern', 'Etc/GMT+5', 'EST5EDT', 'Asia/Calcutta', 'GMT0'])
      expect(resolveTimeZone(z), z).toBe(z);
  });

  it('refuses what Go refuses (names are case-sensitive, offsets are not zones) and says why', () => {
    expect(checkTimeZone('utc')).toBe(
      '"utc" is not a time zone name Go knows: names are case-sensitive (did you mean "UTC"?)',
    );
    expect(checkTimeZone('america/new_york')).toBe(
      '"america/new_york" is not a time zone name Go knows: names are case-sensitive (did you mean "America/New_York"?)',
    );
    expect(checkTimeZone('+05:00')).toMatch(/^"\+05:00" is an offset, not a time zone name: .*Etc\/GMT-5/);
    expect(checkTimeZone('local')).toMatch(/did you mean "Local"/);
    for (const z of ['UTC ', '../etc/passwd', 'Mars/Olympus', 'Europe/Pariss'])
      expect(checkTimeZone(z), z).toMatch(/not a known IANA time zone/);
  });
});

describe('cron schedules with robfig/cron TZ= / CRON_TZ= prefixes', () => {
  it('splits the prefix as robfig/cron does and refuses a prefix without a schedule', () => {
    expect(splitCronZone('TZ=UTC 0 0 * * *')).toEqual({ zone: 'UTC', spec: '0 0 * * *' });
    expect(splitCronZone('CRON_TZ=America/New_York  0 0 * * *')).toEqual({
      zone: 'America/New_York',
      spec: '0 0 * * *',
    });
    expect(splitCronZone('TZ= 0 0 * * *')).toEqual({ zone: '', spec: '0 0 * * *' });
    expect(splitCronZone('0 0 * * *')).toEqual({ zone: undefined, spec: '0 0 * * *' });
    // robfig/cron v3.0.1 panics on this one (slice bounds out of range).
    expect(() => splitCronZone('TZ=UTC')).toThrow(/must be followed by a space and the schedule/);
  });

  it('checkCron (lint, the controller) accepts upstream prefixes and refuses bad zones and zero @every', () => {
    for (const ok of [
      'TZ=UTC 0 0 * * *',
      'CRON_TZ=America/New_York 0 0 * * *',
      'TZ=Local 0 0 * * *',
      'TZ=Factory 0 0 * * *',
      'TZ= 0 0 * * *',
      '0 0 * * MON-FRI',
      '0 0 ? * *',
      '@every .5s',
      '@every +1m',
    ])
      expect(checkCron(ok, true), ok).toBeUndefined();
    expect(checkCron('TZ=utc 0 0 * * *', true)).toMatch(/case-sensitive \(did you mean "UTC"\?\)/);
    expect(checkCron('TZ=UTC', true)).toMatch(/must be followed by a space/);
    for (const zero of ['@every 0s', '@every 0', '@every 0.0s', 'TZ=UTC @every 0m'])
      expect(checkCron(zero, true), zero).toMatch(/@every needs a positive duration/);
  });

  it('the calendar source fires in the prefix zone, which wins over timezone, as upstream does', () => {
    const from = new Date('2026-01-01T00:00:00Z');
    // robfig/cron: "CRON_TZ=America/New_York 0 0 * * *" next after 2026-01-01 00:00 UTC is 05:00 UTC.
    const ny = compileSchedule({ schedule: 'CRON_TZ=America/New_York 0 0 * * *' });
    expect(ny.zone).toBe('America/New_York');
    expect(ny.next(from)?.toISOString()).toBe('2026-01-01T05:00:00.000Z');
    const utc = compileSchedule({ schedule: 'TZ=UTC 0 0 * * *', timezone: 'Asia/Tokyo' });
    expect(utc.zone).toBe('UTC');
    expect(utc.next(from)?.toISOString()).toBe('2026-01-02T00:00:00.000Z');
    const tokyo = compileSchedule({ schedule: '0 0 * * *', timezone: 'Asia/Tokyo' });
    expect(tokyo.next(from)?.toISOString()).toBe('2026-01-01T15:00:00.000Z');
    const half = compileSchedule({ interval: '.5s' });
    expect(half.next(from)?.toISOString()).toBe('2026-01-01T00:00:00.500Z');
    expect(() => compileSchedule({ schedule: 'TZ=utc 0 0 * * *' })).toThrow(/case-sensitive/);
    expect(() => compileSchedule({ interval: '0s' })).toThrow(/not a positive duration/);
    expect(() => compileSchedule({ schedule: '@every 0s' })).toThrow(/not a positive duration/);
  });

  it('conditionsReset honours the prefix too', () => {
    const r = resetSchedule(
      { template: { name: 't', conditionsReset: [{ byTime: { cron: 'CRON_TZ=Asia/Tokyo 0 0 * * *' } }] } },
      async () => {},
    )!;
    try {
      expect(new Date(r.lastResetAt(new Date('2026-01-02T00:00:00Z'))!).toISOString()).toBe(
        '2026-01-01T15:00:00.000Z',
      );
    } finally {
      r.stop();
    }
  });
});

describe('Go durations', () => {
  it('time.ParseDuration syntax: .5s, +1s, 1.s, 0, µs/μs; not -1s, .s, 1, 1e3s', () => {
    const go: Array<[string, number | undefined]> = [
      ['10s', 10_000],
      ['.5s', 500],
      ['+1s', 1000],
      ['1.s', 1000],
      ['0', 0],
      ['+0', 0],
      ['00s', 0],
      ['1m1.5s', 61_500],
      ['0.5h', 1_800_000],
      ['1µs', 0.001],
      ['1μs', 0.001],
      ['2562047h47m16.854775807s', 9_223_372_036_854.775],
      ['2562048h', undefined], // Go: invalid duration (overflow)
      ['-1s', undefined], // Go parses it; no sluice field means anything by it
      ['.s', undefined],
      ['1', undefined],
      ['s', undefined],
      ['1e3s', undefined],
      ['1.5.s', undefined],
    ];
    for (const [text, ms] of go) {
      expect(parseDurationMs(text), text).toBe(ms);
      if (ms !== undefined) expect(GO_DURATION.test(text), text).toBe(true);
    }
    for (const zero of ['0', '0s', '0.0s', '0m', '+0s', '00s'])
      expect(POSITIVE_DURATION.test(zero), zero).toBe(false);
    for (const pos of ['1ns', '.5s', '0.001ms', '0h0m1s', '+1s'])
      expect(POSITIVE_DURATION.test(pos), pos).toBe(true);
  });

  it('lint accepts upstream durations and refuses zero or negative intervals', () => {
    const calendar = (entry: Record<string, unknown>) => {
      const es = validEventSource() as { spec: Record<string, unknown> };
      es.spec = { calendar: { tick: entry } };
      return validateText(stringify(es)).problems.map((p) => `${p.path}: ${p.message}`);
    };
    for (const interval of ['0s', '0m', '0.0s', '0', '-1s'])
      expect(calendar({ interval }), interval).toEqual([
        'spec.calendar.tick.interval: must be a positive duration such as "10s", "1m" or ".5s" (zero would repeat without pause)',
      ]);
    expect(calendar({ interval: '.5s' })).toEqual([]);
    expect(calendar({ interval: '+1s' })).toEqual([]);
    expect(calendar({ interval: '1ns' })).toEqual([
      'spec.calendar.tick.interval: "1ns" is shorter than the shortest interval (1ms)',
    ]);
    expect(calendar({ schedule: '@every 0s' })[0]).toMatch(/^spec.calendar.tick.schedule: /);
    expect(calendar({ schedule: 'TZ=UTC 0 0 * * *' })).toEqual([]);
    expect(calendar({ schedule: 'CRON_TZ=America/New_York 0 0 * * *', timezone: 'Local' })).toEqual([]);
    expect(calendar({ schedule: '0 0 * * *', timezone: 'Factory' })).toEqual([]);
    for (const tz of ['utc', 'america/new_york', '+05:00'])
      expect(calendar({ schedule: '0 0 * * *', timezone: tz })[0], tz).toMatch(
        /^spec.calendar.tick.timezone: /,
      );

    const s = validSensor() as { spec: { triggers: Array<{ retryStrategy: Record<string, unknown> }> } };
    s.spec.triggers[0]!.retryStrategy.duration = '.5s';
    expect(validateText(stringify(s)).problems).toEqual([]);
    s.spec.triggers[0]!.retryStrategy.duration = '+1s';
    expect(validateText(stringify(s)).problems).toEqual([]);
  });
});

describe('time filter times of day as time.Parse("15:04:05") reads them', () => {
  it('takes fractional seconds ("09:00:00.5", "09:00:00,5") in lint and at run time', () => {
    const s = validSensor() as { spec: { dependencies: Array<Record<string, unknown>> } };
    s.spec.dependencies[0]!.filters = { time: { start: '09:00:00.5', stop: '9:30:00,25' } };
    expect(validateText(stringify(s)).problems).toEqual([]);
    s.spec.dependencies[0]!.filters = { time: { start: '09:00:00.', stop: '10:00:00' } };
    expect(validateText(stringify(s)).problems.map((p) => p.path)).toEqual([
      'spec.dependencies[0].filters.time.start',
    ]);
    const f = compileTimeFilter({ start: '09:00:00.5', stop: '09:30:00,25' });
    expect(f.check(new Date('2026-03-01T09:00:00.400Z'))).toMatch(/outside the window/);
    expect(f.check(new Date('2026-03-01T09:00:00.500Z'))).toBeUndefined();
    expect(f.check(new Date('2026-03-01T09:30:00.249Z'))).toBeUndefined();
    expect(f.check(new Date('2026-03-01T09:30:00.250Z'))).toMatch(/outside the window/);
    const paris = compileTimeFilter({ start: '09:00', stop: '10:00', timezone: 'Europe/Paris' });
    expect(paris.check(new Date('2026-03-01T08:30:00Z'))).toBeUndefined();
    expect(() => compileTimeFilter({ start: '09:00', stop: '10:00', timezone: 'europe/paris' })).toThrow(
      /case-sensitive \(did you mean "Europe\/Paris"\?\)/,
    );
  });
});
