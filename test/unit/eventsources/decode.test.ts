// How a webhook body becomes the event's `body` (src/eventsources/webhook/decode.ts), as
// upstream's webhook source reads it, and the header names events carry (headers.ts).
import { describe, expect, it } from 'vitest';
import {
  decodeProviderBody,
  decodeWebhookBody,
  jsonDepthExceeds,
  parseQuery,
} from '../../../src/eventsources/webhook/decode.ts';
import {
  canonicalHeaderName,
  MASKED_VALUE,
  publishedHeaders,
} from '../../../src/eventsources/webhook/headers.ts';

const input = (raw: string | Buffer, contentType?: string, method = 'POST', query = '') => ({
  method,
  contentType,
  raw: typeof raw === 'string' ? Buffer.from(raw) : raw,
  query,
  maxDepth: 128,
});

describe('webhook body decoding', () => {
  it('JSON of any content type is parsed; anything that is not JSON is refused', () => {
    expect(decodeWebhookBody(input('{"a":1}', 'application/json'))).toEqual({ ok: true, body: { a: 1 } });
    expect(decodeWebhookBody(input('{"a":1}', 'text/plain'))).toEqual({ ok: true, body: { a: 1 } });
    expect(decodeWebhookBody(input('null', 'application/json'))).toEqual({ ok: true, body: null });
    for (const bad of ['', 'hello', '{"a":', '\uFEFF{}']) {
      const d = decodeWebhookBody(input(bad, 'application/json'));
      expect(d.ok, JSON.stringify(bad)).toBe(false);
    }
    expect(decodeWebhookBody(input(''))).toEqual({ ok: false, message: 'body is empty; expected JSON' });
  });

  it('bytes that are not UTF-8 are refused, never rewritten', () => {
    const d = decodeWebhookBody(input(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])));
    expect(d).toEqual({ ok: false, message: 'body is not valid UTF-8' });
    expect(decodeWebhookBody(input(Buffer.from('a=%FF'), 'application/x-www-form-urlencoded')).ok).toBe(
      false,
    );
  });

  it('nesting deeper than the limit is refused without parsing; brackets inside strings do not count', () => {
    expect(jsonDepthExceeds(Buffer.from(`${'['.repeat(129)}${']'.repeat(129)}`), 128)).toBe(true);
    expect(jsonDepthExceeds(Buffer.from(`${'['.repeat(128)}${']'.repeat(128)}`), 128)).toBe(false);
    expect(jsonDepthExceeds(Buffer.from(`{"s":"${'['.repeat(500)}\\"{{"}`), 128)).toBe(false);
    const deep = decodeWebhookBody(input(`{"x":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`));
    expect(deep).toEqual({ ok: false, message: 'JSON nested deeper than 128 levels' });
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
});
