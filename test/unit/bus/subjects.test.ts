import { describe, expect, it } from 'vitest';
import { parseSize, parseStreamConfig } from '../../../src/api/stream-config.ts';
import {
  consumerName,
  consumerSensor,
  escapeToken,
  eventStreamName,
  eventSubject,
  parseEventSubject,
  unescapeToken,
} from '../../../src/bus/subjects.ts';

describe('subject scheme', () => {
  it('escapes reversibly and never produces subject metacharacters', () => {
    for (const s of ['plain', 'with.dot', 'a b', '*', '>', 'x~y', 'ünï', '', 'a_b-c']) {
      const t = escapeToken(s);
      expect(t).toMatch(/^[A-Za-z0-9_~-]+$/);
      expect(unescapeToken(t)).toBe(s);
    }
  });

  it('keeps namespaces, buses, sources and events apart', () => {
    const a = eventSubject({ namespace: 'ns1', busName: 'default' }, 'hooks', 'push');
    const b = eventSubject({ namespace: 'ns2', busName: 'default' }, 'hooks', 'push');
    const c = eventSubject({ namespace: 'ns1', busName: 'default' }, 'hooks.push', '');
    expect(new Set([a, b, c]).size).toBe(3);
    expect(parseEventSubject(eventSubject({ namespace: 'n.s', busName: 'b' }, 'e s', 'x.y'))).toEqual({
      namespace: 'n.s',
      busName: 'b',
      eventSource: 'e s',
      eventName: 'x.y',
    });
    expect(eventStreamName({ namespace: 'a.b', busName: 'c' })).not.toContain('.');
  });

  it('gives each (sensor, dependency) its own consumer name', () => {
    expect(consumerName('a_b', 'c')).not.toBe(consumerName('a', 'b_c'));
    expect(consumerSensor(consumerName('my.sensor', 'dep_1'))).toEqual({
      sensor: 'my.sensor',
      dependency: 'dep_1',
    });
  });
});

describe('streamConfig parsing', () => {
  it('reads upstream-style YAML with sizes, durations and numeric enums', () => {
    const r = parseStreamConfig(
      'maxMsgs: 50000\nmaxAge: 24h\nmaxBytes: 1GB\nreplicas: 3\nduplicates: 300s\nretention: 0\ndiscard: 0\n',
    );
    expect(r).toEqual({
      ok: true,
      settings: {
        maxMsgs: 50000,
        maxAge: 24 * 3_600_000,
        maxBytes: 1024 ** 3,
        maxMsgSize: -1,
        replicas: 3,
        duplicates: 300_000,
        retention: 'limits',
        discard: 'old',
      },
    });
  });

  it('defaults to rejecting new events when full', () => {
    const r = parseStreamConfig(undefined);
    expect(r.ok && r.settings.discard).toBe('new');
  });

  it('names the bad key', () => {
    expect(parseStreamConfig('maxAge: forever')).toEqual({
      ok: false,
      errors: ['streamConfig.maxAge: maxAge must be a duration such as "72h" or "2m"'],
    });
    expect(parseStreamConfig('maxMgs: 5')).toEqual({
      ok: false,
      errors: ['streamConfig: unknown key(s) maxMgs'],
    });
    expect(parseSize('512Ki')).toBe(512 * 1024);
  });
});
