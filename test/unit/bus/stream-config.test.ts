import { describe, expect, it } from 'vitest';
import {
  DEFAULT_STREAM_SETTINGS,
  parseDurationMs,
  parseSize,
  parseStreamConfig,
} from '../../../src/api/stream-config.ts';

const ok = (text: string | undefined) => {
  const r = parseStreamConfig(text);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.settings;
};
const errors = (text: string) => {
  const r = parseStreamConfig(text);
  if (r.ok) throw new Error(`expected errors for ${JSON.stringify(text)}`);
  return r.errors;
};

describe('streamConfig parsing', () => {
  it("reads upstream's controller-config style YAML", () => {
    expect(
      ok(
        'maxMsgs: 1000000\nmaxAge: 72h\nmaxBytes: 1GB\nreplicas: 3\nduplicates: 300s\nretention: 0\ndiscard: 0\n',
      ),
    ).toEqual({
      maxMsgs: 1_000_000,
      maxAge: 72 * 3_600_000,
      maxBytes: 1024 ** 3,
      maxMsgSize: -1,
      replicas: 3,
      duplicates: 300_000,
      retention: 'limits',
      discard: 'old',
      maxMsgsPerSubject: -1,
      dlqMaxAge: 14 * 24 * 3_600_000,
    });
  });

  it('uses documented defaults, rejecting new events when full', () => {
    for (const empty of [undefined, '', '  \n', '# only a comment\n', '{}']) {
      expect(ok(empty)).toEqual({ ...DEFAULT_STREAM_SETTINGS });
    }
    expect(DEFAULT_STREAM_SETTINGS.discard).toBe('new');
  });

  it('accepts the sluice additions and names for enums', () => {
    expect(ok('maxMsgSize: 512Ki\nretention: workqueue\ndiscard: new')).toMatchObject({
      maxMsgSize: 512 * 1024,
      retention: 'workqueue',
      discard: 'new',
    });
    expect(ok('retention: 1\ndiscard: 1')).toMatchObject({ retention: 'interest', discard: 'new' });
  });

  it('reads the sluice bus limits: per-subject backlog, dead letters, KV buckets', () => {
    expect(ok('maxMsgsPerSubject: 100\ndlqMaxBytes: 2GB\ndlqMaxAge: 720h\nkvMaxBytes: 64MB')).toMatchObject({
      maxMsgsPerSubject: 100,
      dlqMaxBytes: 2 * 1024 ** 3,
      dlqMaxAge: 720 * 3_600_000,
      kvMaxBytes: 64 * 1024 ** 2,
    });
    expect(ok('dlqMaxAge: 0').dlqMaxAge).toBe(0);
    expect(errors('maxMsgsPerSubject: 10\ndiscard: old')[0]).toMatch(/needs discard: new/);
    expect(errors('kvMaxBytes: lots')[0]).toMatch(/^streamConfig\.kvMaxBytes: /);
  });

  it('matches keys without regard to case, like upstream', () => {
    expect(ok('Discard: 0\nMAXMSGS: 10\nmaxage: 1h')).toMatchObject({
      discard: 'old',
      maxMsgs: 10,
      maxAge: 3_600_000,
    });
    expect(errors('discard: 0\nDiscard: 1')).toEqual([
      'streamConfig.discard: given more than once (keys are not case-sensitive)',
    ]);
  });

  it('reads bare numbers as bytes and nanoseconds, and -1 / 0 as "no limit"', () => {
    expect(
      ok('maxBytes: 1048576\nmaxAge: 3600000000000\nduplicates: 60000000000\nmaxMsgs: -1'),
    ).toMatchObject({
      maxBytes: 1024 * 1024,
      maxAge: 3_600_000,
      duplicates: 60_000,
      maxMsgs: -1,
    });
    expect(ok('maxAge: 0\nmaxBytes: "-1"')).toMatchObject({ maxAge: 0, maxBytes: -1 });
    expect(ok('maxMsgs: "250"').maxMsgs).toBe(250);
  });

  it('names the key at fault in every error', () => {
    expect(errors('maxAge: forever')).toEqual([
      'streamConfig.maxAge: maxAge must be a duration such as "72h" or "2m" (0 for no limit)',
    ]);
    expect(errors('maxMgs: 5')[0]).toMatch(/^streamConfig: unknown key\(s\) maxMgs \(known: maxMsgs, /);
    expect(errors('maxMsgs: 0')).toEqual([
      'streamConfig.maxMsgs: maxMsgs must be a whole number of events, or -1 for no limit',
    ]);
    expect(errors('maxBytes: lots')[0]).toMatch(/^streamConfig\.maxBytes: /);
    expect(errors('duplicates: 0')[0]).toMatch(/^streamConfig\.duplicates: /);
    expect(errors('maxMsgSize: 4GB')).toEqual(['streamConfig.maxMsgSize: maxMsgSize must be below 2GiB']);
    expect(errors('retention: forever')).toEqual([
      'streamConfig.retention: retention must be limits, interest or workqueue (or 0, 1, 2)',
    ]);
    expect(errors('discard: 2')[0]).toMatch(/^streamConfig\.discard: /);
    expect(errors('replicas: 7')).toEqual([
      'streamConfig.replicas: replicas must be a whole number from 1 to 5',
    ]);
    expect(errors('maxMsgs: 1.5\nmaxAge: x')).toHaveLength(2);
  });

  it('reports text that is not a YAML mapping', () => {
    expect(errors('maxMsgs: [1')[0]).toMatch(/^streamConfig is not valid YAML/);
    expect(errors('- 1\n- 2')[0]).toMatch(/^streamConfig must be a YAML mapping/);
    expect(errors('just text')[0]).toMatch(/^streamConfig must be a YAML mapping/);
  });
});

describe('sizes and durations', () => {
  it('parses binary sizes', () => {
    expect(parseSize('512Ki')).toBe(512 * 1024);
    expect(parseSize('1GB')).toBe(1024 ** 3);
    expect(parseSize('1.5M')).toBe(1.5 * 1024 ** 2);
    expect(parseSize('100')).toBe(100);
    expect(parseSize('-1')).toBe(-1);
    expect(parseSize('ten')).toBeUndefined();
    expect(parseSize(-2)).toBeUndefined();
  });

  it('parses Go durations', () => {
    expect(parseDurationMs('1h30m')).toBe(5_400_000);
    expect(parseDurationMs('250ms')).toBe(250);
    expect(parseDurationMs('0')).toBe(0);
    expect(parseDurationMs('1 hour')).toBeUndefined();
  });
});
