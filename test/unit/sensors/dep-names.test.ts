// Events are kept in plain records keyed by dependency name (partial matches, firings, dead-letter
// records): a dependency named "__proto__" set the record's prototype instead of a key, so its
// event waiting in an AND join was silently dropped when the other dependency's event arrived.
// Such a name is refused where the spec enters; the join itself is shown below for the record.
import { describe, expect, it } from 'vitest';
import { parseConditions } from '../../../src/api/conditions.ts';
import { SensorSpec } from '../../../src/api/sensor.ts';
import { kvKey, MAX_KV_KEY } from '../../../src/bus/kv.ts';
import { envelope } from '../../../src/eventsources/envelope.ts';
import { joinEvent, type PartialMatch } from '../../../src/sensors/join.ts';

const spec = (name: string) => ({
  dependencies: [
    { name, eventSourceName: 'hooks', eventName: 'x' },
    { name: 'b', eventSourceName: 'hooks', eventName: 'y' },
  ],
  triggers: [{ template: { name: 't', conditions: `${name} && b`, log: {} } }],
});

describe('dependency names as record keys', () => {
  it('a dependency named __proto__ is refused with a clear error', () => {
    const r = SensorSpec.safeParse(spec('__proto__'));
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/cannot be named \\"__proto__\\"/);
    expect(SensorSpec.safeParse(spec('constructor')).success).toBe(true);
  });

  it('names like constructor or toString join like any other', () => {
    for (const name of ['constructor', 'toString', 'hasOwnProperty']) {
      const t = {
        name: 't',
        conditions: parseConditions(`${name} && b`),
        dependencies: new Set([name, 'b']),
        fingerprint: 'f',
      };
      const ev = (id: string) => envelope({ id, source: 's', type: 'w', subject: 'x', data: {} });
      const r1 = joinEvent({ events: {}, inflight: {} }, t, name, ev('a1'), { keyOf: () => 'k' });
      expect(r1.replaced).toBeUndefined();
      const stored = JSON.parse(JSON.stringify(r1.next)) as PartialMatch;
      const r2 = joinEvent(stored, t, 'b', ev('b1'), { keyOf: () => 'k' });
      expect(r2.firings.map(([, f]) => Object.keys(f).sort())).toEqual([['b', name].sort()]);
    }
  });
});

describe('kvKey bounds', () => {
  it('keeps short keys as they were and shortens long ones with a hash, distinct and valid', () => {
    expect(kvKey('used/t/hooks/left/a-1')).toBe('used/t/hooks/left/a-1');
    expect(kvKey('é.=')).toBe('=c3=a9=2e=3d');
    const long1 = `used/t/hooks/left/${'中'.repeat(512)}`;
    const long2 = `used/t/hooks/left/${'中'.repeat(511)}文`;
    const k1 = kvKey(long1);
    const k2 = kvKey(long2);
    expect(k1.length).toBeLessThanOrEqual(MAX_KV_KEY);
    expect(k1).not.toBe(k2);
    expect(k1).toMatch(/^[-/_=a-zA-Z0-9]+$/);
    expect(k1).toMatch(/=h[0-9a-f]{64}$/);
    // An encoding that was not shortened never holds "=h" ('=' is always followed by hex).
    expect(kvKey('=h')).toBe('=3dh');
    expect(kvKey('a'.repeat(MAX_KV_KEY))).toBe('a'.repeat(MAX_KV_KEY));
  });
});
