// Issue 13, items 3 and 6, against a real nats-server: what a webhook makes of hostile and
// unusual bodies (deep JSON, empty JSON, not JSON, forms, invalid UTF-8, an oversized
// Content-Length with Expect: 100-continue), and the shapes upstream manifests rely on
// (Go-canonical header names that Sensor data filters and EventSource filter.expression match,
// masked credentials, /health on every webhook port, GitHub's form-encoded payload).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourceSpec } from '../../../src/api/eventsource.ts';
import { SensorSpec } from '../../../src/api/sensor.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import type { CloudEvent } from '../../../src/eventsources/envelope.ts';
import { type RunningEventSource, startEventSource } from '../../../src/eventsources/runtime.ts';
import { DEFAULT_HIDDEN_HEADERS, MASKED_VALUE } from '../../../src/eventsources/webhook/headers.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { compileDependency } from '../../../src/sensors/match/dependency.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { busWithStreams, storedTexts, type TestBus } from './fixtures.ts';
import { head, raw } from './raw-http.ts';

const log = createLogger({ level: 'error' });
/**
 * Data filters on header names with dashes, written as for upstream (argoproj/argo-events#1069),
 * and the same filter with a lower-case name, which upstream does not match either.
 */
const headerFilters = (name: string) =>
  SensorSpec.parse({
    dependencies: [
      {
        name: 'build',
        eventSourceName: 'hooks',
        eventName: 'plain',
        filters: {
          data: [
            { path: `header.${name}`, type: 'string', value: ['nightly'] },
            { path: 'header.Content-Type.0', type: 'string', value: ['^application/json$'] },
          ],
        },
      },
    ],
    triggers: [{ template: { name: 't', log: {} } }],
  }).dependencies[0]!;

const spec = EventSourceSpec.parse({
  webhook: {
    plain: { port: '0', endpoint: '/plain', method: 'POST' },
    query: { port: '0', endpoint: '/query', method: 'GET' },
    nightly: {
      port: '0',
      endpoint: '/nightly',
      method: 'POST',
      filter: { expression: 'header["X-Build-Kind"][0] == "nightly"' },
    },
  },
  github: {
    push: {
      webhook: { port: '0', endpoint: '/github', method: 'POST' },
      repositories: [{ owner: 'o', names: ['r'] }],
    },
  },
});

describe.skipIf(natsMissing())(`webhook bodies and upstream shapes${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  let tb: TestBus;
  let es: RunningEventSource;
  let base: string;
  let port: number;
  const latest = async (subject: string): Promise<CloudEvent> =>
    (await tb.stored()).filter((e) => e.subject === subject).pop()!;
  const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
    });

  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
    tb = await busWithStreams(conn, 'bodies');
    es = await startEventSource({
      name: 'hooks',
      namespace: tb.bus.namespace,
      spec,
      bus: tb.bus,
      publisher: new Publisher(conn.nc),
      nc: conn.nc,
      registry: newRegistry(),
      log,
      resolveSecret: async () => '',
      host: '127.0.0.1',
      hiddenHeaders: DEFAULT_HIDDEN_HEADERS,
    });
    port = es.ports.get('0')!;
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await es?.stop();
    await conn?.close();
  });

  it('refuses what is not a valid body with 400 (never 500, never published), before publishing', async () => {
    const before = (await tb.stored()).length;
    const cases: Array<[string, string | Buffer, Record<string, string>?]> = [
      ['deep arrays', `{"x":${'['.repeat(5000)}${']'.repeat(5000)}}`],
      ['deep objects', `{"x":${'{"a":'.repeat(20000)}1${'}'.repeat(20000)}}`],
      ['empty JSON', ''],
      ['not JSON, text/plain', 'hello', { 'content-type': 'text/plain' }],
      ['not JSON, no type', 'hello', { 'content-type': '' }],
      ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d])],
      [
        'binary',
        Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
        { 'content-type': 'application/octet-stream' },
      ],
      ['bad form escape', 'a=%zz', { 'content-type': 'application/x-www-form-urlencoded' }],
    ];
    for (const [name, body, headers] of cases) {
      const r = await post('/plain', body, headers);
      expect(r.status, name).toBe(400);
    }
    expect((await tb.stored()).length).toBe(before);
  });

  it('publishes forms and GET queries as {"key": ["value"]}, like upstream', async () => {
    const r = await post('/plain', 'id=form1&tag=a&tag=b', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(r.status).toBe(200);
    expect((await latest('plain')).data).toMatchObject({ body: { id: ['form1'], tag: ['a', 'b'] } });
    expect((await fetch(`${base}/query?ref=main&ref=dev`)).status).toBe(200);
    expect((await latest('query')).data).toMatchObject({ body: { ref: ['main', 'dev'] } });
  });

  it('answers 413 to an oversized Content-Length at once, even with Expect: 100-continue (no 100 first)', async () => {
    const big = await raw(
      port,
      [
        head('/plain', {
          'Content-Type': 'application/json',
          'Content-Length': 5_000_000,
          Expect: '100-continue',
        }),
      ],
      { timeoutMs: 5_000, responses: 1 },
    );
    expect(big.statuses).toEqual([413]);
    const small = await raw(
      port,
      [
        head('/plain', { 'Content-Type': 'application/json', 'Content-Length': 9, Expect: '100-continue' }),
        200,
        '{"ok":1}\n',
      ],
      { timeoutMs: 5_000, responses: 1 },
    );
    expect(small.statuses).toEqual([100, 200]);
  });

  it('publishes Go-canonical header names (all values, credentials masked) that upstream filters match', async () => {
    const r = await post('/plain', '{"n":1}', {
      'x-build-kind': 'nightly',
      authorization: 'Bearer s3cret',
      cookie: 'session=abc',
      'x-api-key': 'k',
    });
    expect(r.status).toBe(200);
    const ev = await latest('plain');
    const header = (ev.data as { header: Record<string, string[]> }).header;
    expect(header['X-Build-Kind']).toEqual(['nightly']);
    expect(header['Content-Type']).toEqual(['application/json']);
    expect(header.Authorization).toEqual([MASKED_VALUE]);
    expect(header.Cookie).toEqual([MASKED_VALUE]);
    expect(header['X-Api-Key']).toEqual([MASKED_VALUE]);
    expect(JSON.stringify(ev)).not.toMatch(/s3cret|session=abc/);
    expect(header['x-build-kind']).toBeUndefined();
    expect(await compileDependency(headerFilters('X-Build-Kind')).matches(ev)).toBe(true);
    expect(await compileDependency(headerFilters('x-build-kind')).matches(ev)).toBe(false);
  });

  it('filter.expression on a Go-canonical header name decides what is published', async () => {
    expect((await post('/nightly', '{"n":1}', { 'x-build-kind': 'nightly' })).status).toBe(200);
    expect((await post('/nightly', '{"n":2}', { 'x-build-kind': 'release' })).status).toBe(200);
    const published = (await tb.stored()).filter((e) => e.subject === 'nightly');
    expect(published.map((e) => (e.data as { body: { n: number } }).body.n)).toEqual([1]);
  });

  it('serves /health on every webhook port, as upstream does', async () => {
    const r = await fetch(`${base}/health`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('OK\n');
  });

  it('github: a form-encoded delivery publishes its JSON `payload`', async () => {
    const payload = JSON.stringify({ ref: 'refs/heads/main' });
    const r = await post('/github', `payload=${encodeURIComponent(payload)}`, {
      'content-type': 'application/x-www-form-urlencoded',
      'x-github-delivery': 'gh-form-1',
      'x-github-event': 'push',
    });
    expect(r.status).toBe(200);
    const ev = await latest('push');
    expect(ev.id).toBe('gh-form-1');
    expect((ev.data as { body: unknown }).body).toEqual({ ref: 'refs/heads/main' });
    const bad = await post('/github', 'payload=%7Bnot', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(bad.status).toBe(400);
  });

  it('publishes the body as sent and header values as UTF-8 (on main: numbers, keys and é rewritten)', async () => {
    const bodies = [
      '{"t":"bytes-1","n":1234567890123456789}',
      '{"t":"bytes-2","n":1e400}',
      '{"t":"bytes-3","n":-0,"f":1.0,"e":1E2}',
      '{"t":"bytes-4","a":1,"a":2}',
      '{"t":"bytes-5","b":1,"2":0}',
      ' {"t":"bytes-6"}\n',
    ];
    for (const b of bodies) expect((await post('/plain', b)).status).toBe(200);
    const head = Buffer.from(
      'POST /plain HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 14\r\nX-Name: caf\u00c3\u00a9 \u00e2\u009c\u0093\r\nX-Raw: \u00ff\r\n\r\n{"t":"bytes7"}',
      'latin1',
    );
    expect((await raw(port, [head], { responses: 1 })).status).toBe(200);
    const texts = await storedTexts(tb.jsm, tb.bus);
    for (const b of bodies)
      expect(
        texts.filter((t) => t.includes(`"body":${b}`)),
        b,
      ).toHaveLength(1);
    const withHeader = texts.find((t) => t.includes('bytes7'))!;
    expect(withHeader).toContain('"X-Name":["café ✓"]');
    expect(withHeader).toContain('"X-Raw":["ÿ"]'); // not UTF-8: one character per byte, as received
    // Header names in sorted order, as Go's json.Marshal writes http.Header.
    const names = Object.keys((JSON.parse(withHeader) as { data: { header: object } }).data.header);
    expect(names).toEqual([...names].sort());
  });

  it('routes as the Go server does: absolute-form and percent-encoded paths; HTTP/2.0 505; two Hosts 400', async () => {
    const body = '{"route":1}';
    const req = (target: string, extra = '', version = 'HTTP/1.1') =>
      `POST ${target} ${version}\r\nHost: t\r\n${extra}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    const status = async (text: string) => (await raw(port, [text], { responses: 1 })).status;
    expect(await status(req('http://example.com/plain'))).toBe(200);
    expect(await status(req('/%70lain'))).toBe(200);
    expect(await status(req('/plain', '', 'HTTP/2.0'))).toBe(505);
    expect(await status(req('/plain', 'Host: other\r\n'))).toBe(400);
    expect(await status(req('/%zz'))).toBe(400);
  });
});
