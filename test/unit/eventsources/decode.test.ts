// How a webhook body becomes the event's `body` (src/eventsources/webhook/decode.ts), as
// upstream's webhook source reads it, and the header names events carry (headers.ts).
import { describe, expect, it } from 'vitest';
import { RawJson } from '../../../src/eventsources/raw-json.ts';
import {
  decodeProviderBody,
  decodeWebhookBody,
  jsonDepthExceeds,
  parseQuery,
} from '../../../src/eventsources/webhook/decode.ts';
import {
  canonicalHeaderName,
  headerText,
  MASKED_VALUE,
  publishedHeaders,
  publishedRawHeaders,
} from '../../../src/eventsources/webhook/headers.ts';

const input = (raw: string | Buffer, contentType?: string, method = 'POST', query = '') => ({
  method,
  contentType,
  raw: typeof raw === 'string' ? Buffer.from(raw) : raw,
  query,
  maxDepth: 128,
  maxNodes: 20_000,
});

/** The text and value of a decoded JSON body. */
const json = (d: ReturnType<typeof decodeWebhookBody>) => {
  if (!d.ok || !(d.body instanceof RawJson)) throw new Error(`not JSON: ${JSON.stringify(d)}`);
  return { text: d.body.text, value: d.body.value };
};

describe('webhook body decoding', () => {
  it('JSON of any content type is parsed; anything that is not JSON is refused', () => {
    expect(json(decodeWebhookBody(input('{"a":1}', 'application/json')))).toEqual({
      text: '{"a":1}',
      value: { a: 1 },
    });
    expect(json(decodeWebhookBody(input('{"a":1}', 'text/plain'))).value).toEqual({ a: 1 });
    expect(json(decodeWebhookBody(input('null', 'application/json'))).value).toBe(null);
    for (const bad of ['', 'hello', '{"a":', '\uFEFF{}']) {
      const d = decodeWebhookBody(input(bad, 'application/json'));
      expect(d.ok, JSON.stringify(bad)).toBe(false);
    }
    expect(decodeWebhookBody(input(''))).toEqual({
      ok: false,
      status: 400,
      message: 'body is empty; expected JSON',
    });
  });

  it('JSON is carried as the exact text sent: numbers, duplicate keys and key order unchanged', () => {
    for (const text of [
      '{"n":1234567890123456789}',
      '{"n":1e400,"m":-0,"f":1.0,"e":1E2}',
      '{"a":1,"a":2}',
      '{"b":1,"2":0}',
      ' [ 1 ,\n 2 ] ',
    ]) {
      expect(json(decodeWebhookBody(input(text, 'application/json'))).text).toBe(text);
    }
  });

  it('more objects, arrays and members than the node bound: 413; so is a form with too many fields', () => {
    const many = `[${Array.from({ length: 20_001 }, () => '[]').join(',')}]`;
    const d = decodeWebhookBody(input(many, 'application/json'));
    expect(d.ok === false && d.status).toBe(413);
    const keys = `{${Array.from({ length: 20_000 }, (_, i) => `"k${i}":0`).join(',')}}`;
    expect(decodeWebhookBody(input(keys, 'application/json')).ok).toBe(false);
    const form = Array.from({ length: 20_001 }, (_, i) => `k${i}=`).join('&');
    const f = decodeWebhookBody(input(form, 'application/x-www-form-urlencoded'));
    expect(f.ok === false && f.status).toBe(413);
  });

  it('bytes that are not UTF-8 are refused, never rewritten', () => {
    const d = decodeWebhookBody(input(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])));
    expect(d).toEqual({ ok: false, status: 400, message: 'body is not valid UTF-8' });
    expect(decodeWebhookBody(input(Buffer.from('a=%FF'), 'application/x-www-form-urlencoded')).ok).toBe(
      false,
    );
  });

  it('nesting deeper than the limit is refused without parsing; brackets inside strings do not count', () => {
    expect(jsonDepthExceeds(Buffer.from(`${'['.repeat(129)}${']'.repeat(129)}`), 128)).toBe(true);
    expect(jsonDepthExceeds(Buffer.from(`${'['.repeat(128)}${']'.repeat(128)}`), 128)).toBe(false);
    expect(jsonDepthExceeds(Buffer.from(`{"s":"${'['.repeat(500)}\\"{{"}`), 128)).toBe(false);
    const deep = decodeWebhookBody(input(`{"x":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`));
    expect(deep).toMatchObject({
      ok: false,
      status: 400,
      message: expect.stringMatching(/^JSON nested deeper than 128 levels/),
    });
  });

  it('forms and GET queries become {"key": ["value", ...]} as Go reads them', () => {
    const form = decodeWebhookBody(
      input('id=form1&a=b&a=c+d&e=%26&empty=&flag', 'application/x-www-form-urlencoded; charset=utf-8'),
    );
    expect(form).toEqual({
      ok: true,
      body: { id: ['form1'], a: ['b', 'c d'], e: ['&'], empty: [''], flag: [''] },
    });
    expect(decodeWebhookBody(input('ignored', undefined, 'GET', 'q=1&q=2'))).toEqual({
      ok: true,
      body: { q: ['1', '2'] },
    });
    expect(parseQuery('a=1;b=2').ok).toBe(false);
    expect(parseQuery('a=%zz').ok).toBe(false);
    const proto = parseQuery('__proto__=x');
    expect(proto.ok && Object.getPrototypeOf(proto.body)).toBe(Object.prototype);
    expect(proto.ok && Object.keys(proto.body as object)).toEqual(['__proto__']);
  });

  it('providers get strict JSON, or a form as text for their own handling', () => {
    expect(decodeProviderBody(input('payload=%7B%7D', 'application/x-www-form-urlencoded'))).toEqual({
      ok: true,
      body: 'payload=%7B%7D',
    });
    expect(decodeProviderBody(input('not json', 'text/plain')).ok).toBe(false);
  });
});

describe('published headers', () => {
  it("use Go's canonical names (textproto.CanonicalMIMEHeaderKey)", () => {
    const cases: Array<[string, string]> = [
      ['x-build-kind', 'X-Build-Kind'],
      ['content-type', 'Content-Type'],
      ['x-github-event', 'X-Github-Event'],
      ['etag', 'Etag'],
      ['x-1a', 'X-1a'],
      ['foo_bar', 'Foo_bar'],
      ['x--y', 'X--Y'],
      ['héllo', 'héllo'],
    ];
    for (const [from, to] of cases) expect(canonicalHeaderName(from)).toBe(to);
  });

  it('keep every value, mask credentials, leave out Host and Transfer-Encoding', () => {
    const h = publishedHeaders(
      {
        'x-kind': ['a', 'b'],
        authorization: ['Bearer s3cret'],
        cookie: ['sid=1', 'x=2'],
        host: ['example'],
        'transfer-encoding': ['chunked'],
        ['__proto__']: ['p'],
      },
      new Set(['authorization', 'cookie']),
    );
    expect(h).toEqual({
      'X-Kind': ['a', 'b'],
      Authorization: [MASKED_VALUE],
      Cookie: [MASKED_VALUE, MASKED_VALUE],
      ['__proto__']: ['p'],
    });
    expect(Object.getPrototypeOf(h)).toBe(Object.prototype);
  });

  it("read from the raw header list are the same as from Node's headersDistinct", () => {
    // Node's rawHeaders: names as sent, every line in order (what headersDistinct is built from).
    const raw = ['Host', 'example', 'X-Kind', 'a', 'x-kind', 'b', 'Cookie', 'sid=1', 'COOKIE', 'x=2'];
    raw.push('Transfer-Encoding', 'chunked', '__proto__', 'p', 'Content-Type', 'application/json');
    const distinct: Record<string, string[]> = Object.create(null);
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      distinct[name] = [...(distinct[name] ?? []), raw[i + 1]!];
    }
    const hidden = new Set(['cookie']);
    const h = publishedRawHeaders(raw, hidden);
    expect(h).toEqual(publishedHeaders(distinct, hidden));
    expect(Object.keys(h)).toEqual(['Content-Type', 'Cookie', 'X-Kind', '__proto__']);
    expect(h['X-Kind']).toEqual(['a', 'b']);
    expect(h.Cookie).toEqual([MASKED_VALUE, MASKED_VALUE]);
    expect(Object.getPrototypeOf(h)).toBe(Object.prototype);
  });

  it('are in sorted order, as Go writes a map, with UTF-8 values decoded as UTF-8', () => {
    const h = publishedHeaders({ 'x-b': ['1'], accept: ['2'], 'x-a': ['3'] }, new Set());
    expect(Object.keys(h)).toEqual(['Accept', 'X-A', 'X-B']);
    // Node reads header bytes as latin1: the UTF-8 bytes of "café ✓" arrive as 8 characters.
    expect(headerText(Buffer.from('café ✓').toString('latin1'))).toBe('café ✓');
    expect(headerText('caf\u00e9')).toBe('caf\u00e9'); // one latin1 byte is not UTF-8: kept
    expect(headerText('plain')).toBe('plain');
  });
});
