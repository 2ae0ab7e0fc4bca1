// The incremental JSON validator (src/eventsources/json-scan.ts) must accept exactly what
// JSON.parse accepts, whatever the chunking, and the raw-JSON carrier (raw-json.ts) must put the
// sender's text into the event unchanged.
import { describe, expect, it } from 'vitest';
import { JsonScan, scanJson } from '../../../src/eventsources/json-scan.ts';
import {
  elements,
  encodeJson,
  member,
  members,
  plainValue,
  RawJson,
  withMember,
} from '../../../src/eventsources/raw-json.ts';

const parses = (t: string) => {
  try {
    JSON.parse(t);
    return true;
  } catch {
    return false;
  }
};

/** A pseudo-random generator (deterministic). */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const PIECES = [
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '"',
  '"a"',
  '"\\u00e9"',
  '"\\x"',
  '"\\u12"',
  '1',
  '-',
  '0',
  '01',
  '1.',
  '.5',
  '1e',
  '1e+',
  '1E-2',
  '-0.0e0',
  'true',
  'tru',
  'false',
  'null',
  'nul',
  ' ',
  '\n',
  '\t',
  '\r',
  '\u000b',
  '"a\u0001b"',
  '"\\/"',
  '\\',
  'x',
  '{}',
  '[]',
  '"k":1',
  '-1',
  '2.5',
  '"\u2028"',
  '\u00a0',
];

function randomText(r: () => number): string {
  if (r() < 0.5) {
    // Mostly valid JSON, then perhaps damaged.
    const v = (d: number): unknown =>
      d > 3 || r() < 0.3
        ? [1, -0.5, 'x"y\\', true, null, 1e21, 'é'][Math.floor(r() * 7)]
        : r() < 0.5
          ? Array.from({ length: Math.floor(r() * 4) }, () => v(d + 1))
          : Object.fromEntries(Array.from({ length: Math.floor(r() * 4) }, (_, i) => [`k${i}`, v(d + 1)]));
    let t = JSON.stringify(v(0), null, r() < 0.3 ? 1 : undefined) ?? 'null';
    if (r() < 0.5) {
      const at = Math.floor(r() * (t.length + 1));
      t = t.slice(0, at) + PIECES[Math.floor(r() * PIECES.length)] + t.slice(at + (r() < 0.5 ? 1 : 0));
    }
    return t;
  }
  return Array.from({ length: 1 + Math.floor(r() * 8) }, () => PIECES[Math.floor(r() * PIECES.length)]).join(
    '',
  );
}

describe('incremental JSON validation', () => {
  it('accepts exactly what JSON.parse accepts (20,000 generated texts, random chunking)', () => {
    const r = rng(13);
    let valid = 0;
    for (let n = 0; n < 20_000; n++) {
      const t = randomText(r);
      const bytes = Buffer.from(t, 'utf8');
      const scan = new JsonScan(1_000);
      let problem: ReturnType<JsonScan['end']>;
      for (let i = 0; i < bytes.length && !problem; ) {
        const step = 1 + Math.floor(r() * 5);
        problem = scan.feed(bytes.subarray(i, i + step));
        i += step;
      }
      problem ??= scan.end();
      expect(problem === undefined, JSON.stringify(t)).toBe(parses(t));
      if (!problem) valid++;
    }
    expect(valid).toBeGreaterThan(5_000);
  });

  it('counts objects, arrays and members and stops at the bound (413), before the end', () => {
    expect(scanJson('{"a":[1,{}]}', 10)).toBeUndefined();
    const s = new JsonScan(10, 3);
    expect(s.feed(Buffer.from('{"a":[1,{'))).toMatchObject({ limit: true });
    expect(scanJson('[[[]]]', 2)).toMatchObject({
      limit: false,
      message: expect.stringMatching(/deeper than 2/),
    });
    expect(scanJson('', 2)).toMatchObject({ message: 'body is empty; expected JSON' });
  });
});

describe('raw JSON in events', () => {
  it('is spliced into the encoding exactly, and stands for its value elsewhere', () => {
    const body = new RawJson('{"n":1234567890123456789, "a":1,"a":2,"2":0,"x":1e400}');
    const out = encodeJson({ header: { A: ['é"'] }, body, list: [new RawJson('-0'), new RawJson(' 1.0 ')] });
    expect(out).toBe(
      '{"header":{"A":["é\\""]},"body":{"n":1234567890123456789, "a":1,"a":2,"2":0,"x":1e400},"list":[-0, 1.0 ]}',
    );
    expect(JSON.parse(out).body.a).toBe(2);
    expect(JSON.stringify({ body })).toBe('{"body":{"2":0,"n":1234567890123456800,"a":2,"x":null}}');
    expect(plainValue({ h: 1, b: body })).toEqual({ h: 1, b: body.value });
  });

  it('finds members and elements without parsing the whole text; the last duplicate wins', () => {
    const r = new RawJson(' {"id":"evt_1", "a":{"k":[1, 2]},"a":{"k":[3]} ,"changes":[{"x":1} , 2,"s"]} ');
    expect(member(r, 'id')?.value).toBe('evt_1');
    expect(member(r, 'a')?.text).toBe('{"k":[3]}');
    expect(members(member(r, 'a'))?.get('k')?.text).toBe('[3]');
    expect(elements(member(r, 'changes'))?.map((e) => e.text)).toEqual(['{"x":1}', '2', '"s"']);
    expect(withMember(r, 'changes', '[2]').value).toEqual({ id: 'evt_1', a: { k: [3] }, changes: [2] });
    expect(members(new RawJson('[1]'))).toBeUndefined();
    expect(member('not raw', 'x')).toBeUndefined();
  });
});
