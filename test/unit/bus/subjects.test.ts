import { describe, expect, it } from 'vitest';
import {
  boundedName,
  consumerName,
  consumerSensor,
  dlqStreamName,
  dlqSubject,
  escapeToken,
  eventStreamName,
  eventStreamSubjects,
  kvBucketName,
  parseDlqSubject,
  parseSubject,
  subjectFor,
  unescapeToken,
} from '../../../src/bus/subjects.ts';

// Characters that mean something to NATS or to the name layout, plus non-ASCII.
const AWKWARD = [
  'plain',
  'with.dot',
  'a b',
  '*',
  '>',
  'a.>',
  'x~y',
  '~',
  '~7e',
  'ünï',
  '日本',
  '😀',
  '',
  'a_b-c',
  '_',
  '-',
  '\t',
  '$JS',
];

// Strings built from the awkward alphabet, deterministic so a failure reproduces.
function* samples(n: number): Generator<string> {
  const alphabet = ['a', 'Z', '0', '.', ' ', '*', '>', '~', '_', '-', 'é', '😀', '$', '/', '\\', '='];
  let seed = 42;
  const rnd = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let i = 0; i < n; i++) {
    const len = Math.floor(rnd() * 8);
    let s = '';
    for (let j = 0; j < len; j++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    yield s;
  }
}

const JS_NAME = /^[^\s.*>/\\]+$/;

describe('token escaping', () => {
  it('is reversible and only yields characters safe in a subject token and a JetStream name', () => {
    for (const s of [...AWKWARD, ...samples(500)]) {
      const t = escapeToken(s);
      expect(t).toMatch(/^[A-Za-z0-9_~-]+$/);
      expect(unescapeToken(t)).toBe(s);
    }
  });

  it('is injective: different inputs never share an escape', () => {
    const seen = new Map<string, string>();
    for (const s of new Set([...AWKWARD, ...samples(2000)])) {
      const t = escapeToken(s);
      expect(seen.get(t) ?? s).toBe(s);
      seen.set(t, s);
    }
  });

  it('refuses text escapeToken would never produce', () => {
    for (const bad of ['a.b', '~4', '~zz', '~41', 'a~', 'a b', ''])
      expect(unescapeToken(bad)).toBeUndefined();
  });
});

describe('subjects', () => {
  const bus = { namespace: 'ns1', busName: 'default' };

  it('round-trips every part through subjectFor / parseSubject', () => {
    for (const s of [...AWKWARD, ...samples(200)]) {
      const addr = { namespace: `n${s}`, busName: s, eventSource: s, eventName: `${s}.e` };
      const subject = subjectFor(addr, addr.eventSource, addr.eventName);
      expect(subject.split('.')).toHaveLength(5);
      expect(subject).not.toMatch(/[\s*>]/);
      expect(parseSubject(subject)).toEqual(addr);
    }
  });

  it('keeps namespaces, buses, sources and events apart', () => {
    const all = [
      subjectFor(bus, 'hooks', 'push'),
      subjectFor({ ...bus, namespace: 'ns2' }, 'hooks', 'push'),
      subjectFor({ ...bus, busName: 'other' }, 'hooks', 'push'),
      subjectFor(bus, 'hooks.push', ''),
      subjectFor(bus, 'hooks', 'push.'),
      subjectFor(bus, 'hooks.', 'push'),
      subjectFor(bus, '*', 'push'),
      subjectFor(bus, '>', ''),
    ];
    expect(new Set(all).size).toBe(all.length);
  });

  it("every event subject falls inside its own bus's stream subjects and no other's", () => {
    const match = (filter: string, subject: string) => subject.startsWith(filter.slice(0, -1));
    const a = { namespace: 'team', busName: 'default' };
    const b = { namespace: 'team', busName: 'default2' };
    expect(match(eventStreamSubjects(a)[0]!, subjectFor(a, 'x', 'y'))).toBe(true);
    expect(match(eventStreamSubjects(a)[0]!, subjectFor(b, 'x', 'y'))).toBe(false);
    expect(match(eventStreamSubjects(b)[0]!, subjectFor(a, 'x', 'y'))).toBe(false);
  });

  it('rejects subjects of another layout', () => {
    for (const s of [
      'sluice.a.b.c',
      'other.a.b.c.d',
      'sluice.a.b.c.d.e',
      'sluice.a.b.c~zz.d',
      'sluice.a.b.c.',
    ])
      expect(parseSubject(s)).toBeUndefined();
  });

  it('round-trips DLQ subjects and keeps them off the event subjects', () => {
    const s = dlqSubject(bus, 'my.sensor', 'http trigger');
    expect(parseDlqSubject(s)).toEqual({ ...bus, sensor: 'my.sensor', trigger: 'http trigger' });
    expect(parseSubject(s)).toBeUndefined();
    expect(parseDlqSubject(subjectFor(bus, 'a', 'b'))).toBeUndefined();
  });
});

describe('stream, consumer and bucket names', () => {
  it('are valid JetStream names for any input, including very long ones', () => {
    const long = 'a.'.repeat(200);
    for (const s of [...AWKWARD, ...samples(200), long]) {
      const bus = { namespace: s, busName: s };
      for (const n of [eventStreamName(bus), dlqStreamName(bus), consumerName(s, s)]) {
        expect(n).toMatch(JS_NAME);
        expect(n.length).toBeLessThanOrEqual(255);
      }
      const bucket = kvBucketName(s, s, 'processed');
      expect(bucket).toMatch(/^[-_A-Za-z0-9]+$/);
      expect(bucket.length).toBeLessThanOrEqual(252);
    }
  });

  it('do not collide where a "-" separator would (k8s names contain "-")', () => {
    const names = [
      eventStreamName({ namespace: 'a-b', busName: 'c' }),
      eventStreamName({ namespace: 'a', busName: 'b-c' }),
      eventStreamName({ namespace: 'a_b', busName: 'c' }),
      eventStreamName({ namespace: 'a', busName: 'b_c' }),
      // a bus named like another bus's DLQ
      eventStreamName({ namespace: 'a', busName: 'x_dlq' }),
      dlqStreamName({ namespace: 'a', busName: 'x' }),
      eventStreamName({ namespace: 'a', busName: 'x-dlq' }),
    ];
    expect(new Set(names).size).toBe(names.length);
  });

  it('shortens over-long names with a hash, so distinct long names stay distinct', () => {
    const a = boundedName('x'.repeat(300));
    const b = boundedName(`${'x'.repeat(299)}y`);
    expect(a).toHaveLength(255);
    expect(a).not.toBe(b);
    expect(boundedName('short')).toBe('short');
  });

  it('gives each (sensor, dependency) its own consumer and reads it back', () => {
    expect(consumerName('a_b', 'c')).not.toBe(consumerName('a', 'b_c'));
    for (const [sensor, dep] of [
      ['my.sensor', 'dep_1'],
      ['s', ''],
      ['ünï', 'a b'],
    ] as const) {
      expect(consumerSensor(consumerName(sensor, dep))).toEqual({ sensor, dependency: dep });
    }
    // Consumers made by anything else, and shortened names, are not claimed.
    expect(consumerSensor('some-other-consumer')).toBeUndefined();
    expect(consumerSensor('a_b_c')).toBeUndefined();
    expect(consumerSensor(consumerName('s'.repeat(200), 'd'.repeat(200)))).toBeUndefined();
  });

  it('gives distinct buckets to distinct (namespace, sensor, purpose)', () => {
    const all = [
      kvBucketName('a', 'b', 'processed'),
      kvBucketName('a-b', '', 'processed'),
      kvBucketName('a', 'b-processed', ''),
      kvBucketName('a', 'b_processed', ''),
      kvBucketName('a', 'b', 'conditions'),
    ];
    expect(new Set(all).size).toBe(all.length);
  });
});
