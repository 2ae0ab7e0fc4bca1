// stateBytes must give exactly the UTF-8 length of the state's JSON text (the size checked against
// what one KV value holds), whatever the events, keys and optional fields.
import { describe, expect, it } from 'vitest';
import { parseConditions } from '../../../src/api/conditions.ts';
import { type CloudEvent, envelope } from '../../../src/eventsources/envelope.ts';
import {
  type JoinTrigger,
  joinEvent,
  type PartialMatch,
  settleFiring,
  stateBytes,
} from '../../../src/sensors/join.ts';

const texts = ['', 'x', 'é', '😀', '"quoted"\\', '\n\t\u0001', 'a'.repeat(300), '\ud800'];
let seed = 7;
const rnd = (n: number) => {
  // xorshift32: every bit varies (a float LCG repeats its low bits)
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};
const pick = () => texts[rnd(texts.length)]!;
const ev = (i: number): CloudEvent =>
  envelope({
    id: `e${i}${pick()}`,
    source: 'es',
    type: 'webhook',
    subject: pick(),
    data: { s: pick(), n: i },
  });

function randomState(): PartialMatch {
  const events: Record<string, CloudEvent> = {};
  for (let i = rnd(4); i > 0; i--) events[`dep${pick()}${i}`] = ev(i);
  const s: PartialMatch = { events };
  if (rnd(3)) {
    s.inflight = {};
    for (let i = rnd(5); i > 0; i--) {
      const fired: Record<string, CloudEvent> = {};
      for (let j = rnd(3) + 1; j > 0; j--) fired[`d${j}${pick()}`] = ev(i * 10 + j);
      s.inflight[`key-${i}${pick()}`] = fired;
    }
  }
  if (rnd(2)) s.fingerprint = `fp${pick()}`;
  return s;
}

describe('stateBytes', () => {
  it('equals the byte length of JSON.stringify for 500 random states (empty, unicode, escapes)', () => {
    for (let i = 0; i < 500; i++) {
      const s = randomState();
      expect(stateBytes(s), JSON.stringify(s)).toBe(Buffer.byteLength(JSON.stringify(s)));
    }
  });
  it('counts a shared event again in every place it appears', () => {
    const e = ev(1);
    const s: PartialMatch = { events: { a: e }, inflight: { k: { a: e, b: e } } };
    expect(stateBytes(s)).toBe(Buffer.byteLength(JSON.stringify(s)));
  });
});

describe('stateBytes through join steps (sizes carried over by each step)', () => {
  const t: JoinTrigger = {
    name: 'both',
    conditions: parseConditions('a && b'),
    dependencies: new Set(['a', 'b']),
    fingerprint: 'fp',
  };
  const keyOf = (fired: Record<string, CloudEvent>) =>
    Object.entries(fired)
      .map(([d, e]) => `${d}=${e.id}`)
      .join(',');
  it('stays exact over 400 random joins, redeliveries and settlements', () => {
    let s: PartialMatch = { events: {} };
    const open: string[] = [];
    let most = 0;
    for (let i = 0; i < 400; i++) {
      const step = rnd(8);
      if (step === 7 && open.length) {
        const key = open.splice(rnd(open.length), 1)[0]!;
        s = settleFiring(s, key) ?? s;
      } else {
        const r = joinEvent(s, t, rnd(2) ? 'a' : 'b', ev(i), { keyOf });
        for (const [k] of r.firings) if (!open.includes(k)) open.push(k);
        s = r.next ?? s;
      }
      most = Math.max(most, open.length);
      expect(stateBytes(s)).toBe(Buffer.byteLength(JSON.stringify(s)));
    }
    expect(most).toBeGreaterThan(5);
  });
});
