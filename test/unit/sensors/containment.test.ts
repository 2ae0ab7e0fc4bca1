// Pure parts of Sensor containment: the boundary decoder (untrusted bus messages), the join of
// partial matches (resets and spec changes), reason codes and secret redaction.
import { describe, expect, it } from 'vitest';
import { parseConditions } from '../../../src/api/conditions.ts';
import { EventDependency } from '../../../src/api/sensor.ts';
import { type CloudEvent, envelope } from '../../../src/eventsources/envelope.ts';
import { decodeBusEvent, MAX_EVENT_DEPTH, nestedDeeperThan } from '../../../src/sensors/decode.ts';
import {
  isEmpty,
  type JoinTrigger,
  joinEvent,
  settleFiring,
  specFingerprint,
} from '../../../src/sensors/join.ts';
import { FilterEvaluationError, TransformError } from '../../../src/sensors/match/result.ts';
import { ParameterError } from '../../../src/sensors/params/index.ts';
import { matchFailureReason, triggerFailureReason } from '../../../src/sensors/reasons.ts';
import { REDACTED, Redactor } from '../../../src/sensors/redact.ts';
import { SandboxError } from '../../../src/sensors/sandbox/pool.ts';
import { TriggerError } from '../../../src/sensors/triggers/trigger.ts';

const facts = {
  seq: 41,
  timestampMs: Date.parse('2026-01-02T03:04:05Z'),
  eventSourceName: 'es',
  eventName: 'ev',
};
const bytes = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

describe('decodeBusEvent (nothing on the bus is trusted)', () => {
  it('decodes a CloudEvent as published', () => {
    const ev = envelope({ id: 'a', source: 'es', type: 'webhook', subject: 'ev', data: { x: 1 } });
    const d = decodeBusEvent(bytes(ev), facts);
    expect(d).toEqual({ ok: true, event: ev });
  });
  it('reads a lone UTF-16 surrogate as U+FFFD, as Go and gjson do; pairs stay', () => {
    const text =
      '{"id":"a","source":"es","type":"t","subject":"ev","time":"2026-01-02T03:04:05Z","data":{"s":"\\ud800x","ok":"\\ud83d\\ude00","\\udc00k":[1,"\\udfff"]}}';
    const d = decodeBusEvent(bytes(text), facts);
    expect(d.ok && d.event.data).toEqual({ s: '\uFFFDx', ok: '\u{1F600}', '\uFFFDk': [1, '\uFFFD'] });
  });
  it('refuses what is not a JSON object envelope, never throws', () => {
    for (const bad of ['null', '42', '"s"', '[]', '{"id": 5}', 'not json', '{"source": {}}', '{"id": ""}']) {
      const d = decodeBusEvent(bytes(bad), facts);
      expect(d.ok, bad).toBe(false);
    }
  });
  it('an id-less message gets an id of its own from its stream sequence (no shared key)', () => {
    const a = decodeBusEvent(bytes({ data: 1 }), facts);
    const b = decodeBusEvent(bytes({ data: 1 }), { ...facts, seq: 42 });
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    expect(a.event.id).toBe('seq-41');
    expect(b.event.id).toBe('seq-42');
    expect(a.event.source).toBe('es');
    expect(a.event.subject).toBe('ev');
    expect(a.event.time).toBe('2026-01-02T03:04:05.000Z');
    expect(a.event.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });
  it('a malformed traceparent (header injection) is replaced', () => {
    const d = decodeBusEvent(bytes({ id: 'x', data: {}, traceparent: '00-a\r\nX-Evil: 1' }), facts);
    expect(d.ok && d.event.traceparent).toMatch(/^00-[0-9a-f]{32}-/);
  });
  it('refuses data nested deeper than the limit, without recursion', () => {
    const deep = `{"id":"d","data":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(nestedDeeperThan(bytes(deep), MAX_EVENT_DEPTH)).toBe(true);
    const d = decodeBusEvent(bytes(deep), facts);
    expect(d.ok).toBe(false);
    expect(!d.ok && d.message).toMatch(/nested deeper/);
    // brackets inside strings do not count
    const s = JSON.stringify({ id: 'q', data: { s: '['.repeat(5000) } });
    expect(decodeBusEvent(bytes(s), facts).ok).toBe(true);
    const ok = `{"id":"d","data":${'['.repeat(MAX_EVENT_DEPTH - 1)}${']'.repeat(MAX_EVENT_DEPTH - 1)}}`;
    expect(decodeBusEvent(bytes(ok), facts).ok).toBe(true);
  });
});

const ev = (id: string, time = new Date().toISOString()): CloudEvent => ({
  ...envelope({ id, source: 'es', type: 'webhook', subject: 'ev', data: {} }),
  time,
});
const trigger = (fingerprint = 'f1'): JoinTrigger => {
  const conditions = parseConditions('a && b');
  return { name: 't', conditions, dependencies: new Set(['a', 'b']), fingerprint };
};
const keyOf = (fired: Record<string, CloudEvent>) =>
  Object.entries(fired)
    .map(([d, e]) => `${d}=${e.id}`)
    .sort()
    .join(',');

describe('joinEvent', () => {
  it('records, fires once both arrived, and a redelivery finds its firing in flight', () => {
    const t = trigger();
    const r1 = joinEvent({ events: {} }, t, 'a', ev('a1'), { keyOf });
    expect(r1.firings).toEqual([]);
    const r2 = joinEvent(r1.next!, t, 'b', ev('b1'), { keyOf });
    expect(r2.firings.map(([k]) => k)).toEqual(['a=a1,b=b1']);
    expect(r2.next!.events).toEqual({});
    const again = joinEvent(r2.next!, t, 'b', ev('b1'), { keyOf });
    expect(again.firings.map(([k]) => k)).toEqual(['a=a1,b=b1']);
    expect(again.next).toBeUndefined();
    const done = settleFiring(r2.next!, 'a=a1,b=b1')!;
    expect(isEmpty(done)).toBe(true);
  });
  it('discards recorded events older than the last reset (a reset passed while down)', () => {
    const t = trigger();
    const old = ev('a1', '2026-01-01T00:00:30Z');
    const s = joinEvent({ events: {} }, t, 'a', old, { keyOf }).next!;
    const r = joinEvent(s, t, 'b', ev('b1', '2026-01-01T00:01:05Z'), {
      keyOf,
      resetAt: Date.parse('2026-01-01T00:01:00Z'),
    });
    expect(r.discarded).toBe(1);
    expect(r.firings).toEqual([]);
    expect(Object.keys(r.next!.events)).toEqual(['b']);
  });
  it('an arriving event older than the last reset is not recorded', () => {
    const r = joinEvent({ events: {} }, trigger(), 'a', ev('a0', '2026-01-01T00:00:30Z'), {
      keyOf,
      resetAt: Date.parse('2026-01-01T00:01:00Z'),
    });
    expect(r.tooOld).toBe(true);
    expect(r.next?.events ?? {}).toEqual({});
  });
  it('discards events recorded under another spec fingerprint (conditions or filters changed)', () => {
    const s = joinEvent({ events: {} }, trigger('old'), 'a', ev('a1'), { keyOf }).next!;
    const r = joinEvent(s, trigger('new'), 'b', ev('b1'), { keyOf });
    expect(r.discarded).toBe(1);
    expect(r.firings).toEqual([]);
    expect(r.next!.fingerprint).toBe('new');
  });
  it('specFingerprint changes with the conditions or a used dependency filter, not with others', () => {
    const deps = [
      EventDependency.parse({ name: 'a', eventSourceName: 'es', eventName: 'x' }),
      EventDependency.parse({ name: 'b', eventSourceName: 'es', eventName: 'y' }),
      EventDependency.parse({ name: 'c', eventSourceName: 'es', eventName: 'z' }),
    ];
    const names = new Set(['a', 'b']);
    const base = specFingerprint({ template: { name: 't', conditions: 'a && b' } }, deps, names);
    expect(specFingerprint({ template: { name: 't', conditions: 'a && b' } }, deps, names)).toBe(base);
    expect(specFingerprint({ template: { name: 't', conditions: 'b && a' } }, deps, names)).not.toBe(base);
    const filtered = deps.map((d) =>
      d.name === 'a'
        ? { ...d, filters: { data: [{ path: 'x', type: 'string' as const, value: ['1'] }] } }
        : d,
    );
    expect(specFingerprint({ template: { name: 't', conditions: 'a && b' } }, filtered, names)).not.toBe(
      base,
    );
    const other = deps.map((d) => (d.name === 'c' ? { ...d, eventName: 'w' } : d));
    expect(specFingerprint({ template: { name: 't', conditions: 'a && b' } }, other, names)).toBe(base);
  });
});

describe('reason codes', () => {
  it('classifies match and trigger failures', () => {
    expect(matchFailureReason(new FilterEvaluationError('x'))).toBe('filter-error');
    expect(matchFailureReason(new TransformError('x'))).toBe('transform-error');
    expect(matchFailureReason(new TransformError('x', new SandboxError('EvalTimeout', 't')))).toBe(
      'eval-timeout',
    );
    expect(matchFailureReason(new FilterEvaluationError('x', new SandboxError('EvalMemory', 'm')))).toBe(
      'eval-memory',
    );
    expect(matchFailureReason(new TransformError('x', new SandboxError('EvalCrash', 'c')))).toBe(
      'eval-crash',
    );
    expect(triggerFailureReason(new TriggerError('Rejected', 'p', { cause: new ParameterError('p') }))).toBe(
      'parameter-error',
    );
    expect(triggerFailureReason(new TriggerError('Transient', 'HTTP 503'))).toBe('trigger-failed');
  });
});

describe('Redactor', () => {
  const warnings: string[] = [];
  const r = new Redactor((m) => warnings.push(m));
  r.add('sinkuser');
  r.add('SINKPASS-s3cr3t-CCCC');
  r.add('abc'); // short: redacted only where it stands alone
  it('removes values, their base64 and the basic-auth pair, Bearer/Basic forms included', () => {
    const basic = Buffer.from('sinkuser:SINKPASS-s3cr3t-CCCC').toString('base64');
    const msg = `HTTP 401: invalid credentials: Basic ${basic}; Bearer SINKPASS-s3cr3t-CCCC; ${Buffer.from('SINKPASS-s3cr3t-CCCC').toString('base64')}; ${encodeURIComponent('SINKPASS-s3cr3t-CCCC')}`;
    const out = r.redact(msg);
    expect(out).not.toContain('SINKPASS');
    expect(out).not.toContain(basic);
    expect(out).toContain(`Basic ${REDACTED}`);
    expect(out).toContain('HTTP 401: invalid credentials');
  });
  it('removes a secret echoed inside a JSON string (escaped quotes and backslashes)', () => {
    const q = new Redactor();
    q.add('pa"ss\\word-9');
    const echoed = JSON.stringify({ error: 'bad password pa"ss\\word-9' });
    expect(q.redact(echoed)).not.toContain('ss\\\\word');
    expect(q.redact(echoed)).toContain(REDACTED);
  });
  it('masks a secret cut off at the end of a truncated body', () => {
    const out = r.redact('HTTP 500: echo SINKPASS-s3c');
    expect(out).toBe(`HTTP 500: echo ${REDACTED}`);
  });
  it('leaves text without secrets alone; a short secret only as a whole word, with a warning', () => {
    expect(r.redact('HTTP 503 from POST http://x/y: busy, abcdef xabc')).toBe(
      'HTTP 503 from POST http://x/y: busy, abcdef xabc',
    );
    expect(r.redact('{"password":"abc"} abc.')).toBe(`{"password":"${REDACTED}"} ${REDACTED}.`);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/3 character/);
  });
  it('finds the escape forms targets echo with (report break 7): Go JSON, \\/, HTML, percent, twice escaped', () => {
    const q = new Redactor();
    const go = 'GOKEY<s3cr3t>&DDDD';
    const php = 'PHPKEY/s3cr3t/EEEE';
    const html = 'HTMLKEY"s3cr3t&FFFF';
    for (const v of [go, php, html]) q.add(v);
    const goJson = (v: string) =>
      JSON.stringify(v).replace(/[<>&]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const forms = [
      goJson(go),
      JSON.stringify(php).replaceAll('/', '\\/'),
      html.replaceAll('&', '&amp;').replaceAll('"', '&quot;'),
      html.replaceAll('&', '&#38;').replaceAll('"', '&#34;'),
      html.replaceAll('&', '&#x26;').replaceAll('"', '&#X22;'),
      encodeURIComponent(go).replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase()),
      encodeURIComponent(php),
      JSON.stringify(goJson(go)), // JSON inside JSON
      Buffer.from(`user:${php}`).toString('base64url'),
      `${Buffer.from(`{"k":"${go}"}`).toString('base64')}`,
    ];
    for (const f of forms) {
      const out = q.redact(`ERR 401 echo: {"header":${f}} end`);
      expect(out, f).toContain(REDACTED);
      expect(out, f).not.toMatch(/s3cr3t|KEY/);
      expect(out, f).toMatch(/^ERR 401 echo: \{"header":.*\} end$/);
    }
  });
  it('registers every value: no cap (a Sensor with 200 secrets)', () => {
    const q = new Redactor();
    for (let i = 0; i < 200; i++) q.add(`MANYSECRET-${i}-zz9\n`);
    for (const i of [0, 63, 64, 65, 199]) {
      const out = q.redact(
        `echo MANYSECRET-${i}-zz9 and Basic ${Buffer.from(`MANYSECRET-${i}-zz9:MANYSECRET-7-zz9`).toString('base64')}`,
      );
      expect(out).toBe(`echo ${REDACTED} and Basic ${REDACTED}`);
    }
  });
});

describe('ByteBudget', () => {
  it('admits up to the limit, queues the rest in order, admits an oversized message alone', async () => {
    const { ByteBudget } = await import('../../../src/sensors/byte-budget.ts');
    const b = new ByteBudget(100);
    expect(b.acquire(60)).toBeUndefined();
    const order: string[] = [];
    const w1 = b.acquire(60)!.then(() => order.push('w1'));
    const w2 = b.acquire(10)!.then(() => order.push('w2')); // behind w1: FIFO, no overtaking
    expect(w1).toBeInstanceOf(Promise);
    b.release(60);
    await Promise.all([w1, w2]);
    expect(order).toEqual(['w1', 'w2']);
    b.release(60);
    b.release(10);
    expect(b.acquire(500)).toBeUndefined(); // larger than the budget: alone
    const w3 = b.acquire(1)!;
    let got = false;
    void w3.then(() => {
      got = true;
    });
    await Promise.resolve();
    expect(got).toBe(false);
    b.release(500);
    await w3;
    expect(got).toBe(true);
  });
});

describe('regular expressions cannot run away (RE2 semantics, linear time)', () => {
  it('a catastrophic pattern in a data filter, and one taken from the event in exprs, match in linear time', async () => {
    const { compileDependency } = await import('../../../src/sensors/match/index.ts');
    const ev = (data: unknown): CloudEvent => ({
      ...envelope({ id: 'r', source: 'es', type: 'webhook', subject: 'ev', data }),
    });
    const evil = 'a'.repeat(50_000) + '!';
    const data = compileDependency(
      EventDependency.parse({
        name: 'd',
        eventSourceName: 'es',
        eventName: 'ev',
        filters: { data: [{ path: 's', type: 'string', value: ['^(a+)+$'] }] },
      }),
    );
    let t0 = performance.now();
    expect(data.matches(ev({ s: evil }))).toBe(false);
    expect(data.matches(ev({ s: 'aaa' }))).toBe(true);
    expect(performance.now() - t0).toBeLessThan(2000);
    const expr = compileDependency(
      EventDependency.parse({
        name: 'd',
        eventSourceName: 'es',
        eventName: 'ev',
        filters: {
          exprs: [
            {
              expr: 's =~ p',
              fields: [
                { name: 's', path: 's' },
                { name: 'p', path: 'p' },
              ],
            },
          ],
        },
      }),
    );
    t0 = performance.now();
    expect(expr.matches(ev({ s: evil, p: '^(a|aa)+$' }))).toBe(false);
    expect(performance.now() - t0).toBeLessThan(2000);
    // Go syntax works natively: inline flags, named groups, \A and \z, ungreedy
    const go = compileDependency(
      EventDependency.parse({
        name: 'd',
        eventSourceName: 'es',
        eventName: 'ev',
        filters: { data: [{ path: 's', type: 'string', value: ['(?i)\\Av(?P<major>\\d+)\\z', '(?U)a+b'] }] },
      }),
    );
    expect(go.matches(ev({ s: 'V12' }))).toBe(true);
    expect(go.matches(ev({ s: 'xaab' }))).toBe(true);
    expect(go.matches(ev({ s: 'v12\n' }))).toBe(false);
  });
});
