// Generated hostile requests for the abuse suite (abuse.test.ts): truncated, trickled, oversized,
// deep, malformed, smuggling (CL+TE, duplicate CL, obfuscated TE), pipelined and header abuse,
// mixed with well-formed ones. Each case carries a probe id in its body where it has one, so the
// suite can count what was stored per case. A seeded generator makes every run send the same set.
import type { Part, RawOptions } from '../../test/integration/eventsources/raw-http.ts';

export type Expectation =
  /** Must be refused (a 4xx or 5xx, or the connection cut) and never stored. */
  | 'refused'
  /** Well-formed: every 2xx answer must be stored exactly once. */
  | 'valid'
  /** The client gives up: at most one copy may be stored, nothing else is required. */
  | 'aborted';

export interface HostileCase {
  name: string;
  category: string;
  parts: Part[];
  options: RawOptions;
  expect: Expectation;
  /** Probes of the requests this case carries (pipelined cases carry several). */
  probes: string[];
  /** Probes that must never be stored (a request smuggled inside another's body). */
  smuggled: string[];
}

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CRLF = '\r\n';

function request(
  headers: Array<[string, string | number]>,
  body = '',
  path = '/orders',
  method = 'POST',
): string {
  return `${method} ${path} HTTP/1.1${CRLF}${headers.map(([k, v]) => `${k}: ${v}${CRLF}`).join('')}${CRLF}${body}`;
}

function json(probe: string, extra = ''): string {
  return `{"probe":"${probe}"${extra}}`;
}

function valid(probe: string, close = true): string {
  const body = json(probe);
  return request(
    [
      ['Host', 't'],
      ['Content-Type', 'application/json'],
      ['Content-Length', Buffer.byteLength(body)],
      ...(close ? ([['Connection', 'close']] as Array<[string, string]>) : []),
    ],
    body,
  );
}

function chunked(body: string): string {
  return `${body.length.toString(16)}${CRLF}${body}${CRLF}0${CRLF}${CRLF}`;
}

/**
 * Every case, `perKind` variants of each kind (the suite uses 10: 280 requests). `maxPayload` is
 * the route's maxPayloadSize.
 */
export function hostileCases(perKind: number, maxPayload: number, seed = 13): HostileCase[] {
  const rnd = prng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const out: HostileCase[] = [];
  let n = 0;
  const add = (
    category: string,
    name: string,
    expect: Expectation,
    parts: Part[],
    options: RawOptions = {},
    probes: string[] = [],
    smuggled: string[] = [],
  ) =>
    out.push({ category, name, expect, parts, options: { timeoutMs: 20_000, ...options }, probes, smuggled });
  const jsonHead = (len: number | string, extra: Array<[string, string | number]> = []) =>
    request([['Host', 't'], ['Content-Type', 'application/json'], ['Content-Length', len], ...extra]);

  for (let i = 0; i < perKind; i++) {
    const p = () => `p${n++}`;
    // Well-formed, as controls.
    const ok = p();
    add('valid', 'well-formed POST', 'valid', [valid(ok)], {}, [ok]);

    // Truncated: fewer bytes than declared, then FIN or RST.
    const t = p();
    const body = json(t, `,"pad":"${'x'.repeat(Math.floor(rnd() * 2000))}"`);
    const cut = Math.floor(rnd() * body.length);
    add(
      'truncated',
      `CL ${body.length}, ${cut} sent`,
      'refused',
      [jsonHead(body.length), body.slice(0, cut)],
      {
        finish: pick(['fin', 'rst'] as const),
      },
      [t],
    );

    // Trickled: a header line or a body byte slower than the server's patience.
    const tr = p();
    add('trickled', 'headers never finish', 'refused', [
      'POST /orders HTTP/1.1\r\nHost: t\r\n',
      4_000,
      'X-A: b\r\n',
      4_000,
      'X-B: c\r\n',
      4_000,
    ]);
    add(
      'trickled',
      'body stalls past the idle timeout',
      'refused',
      [jsonHead(100), '{"probe":"', 7_000, `${tr}"`],
      {},
      [tr],
    );

    // Oversized: declared, chunked without a length, declared with Expect: 100-continue.
    const o = p();
    add(
      'oversized',
      'Content-Length over maxPayloadSize',
      'refused',
      [jsonHead(maxPayload + 1 + Math.floor(rnd() * 1e7)), json(o)],
      {},
      [o],
    );
    const big = json(o, `,"pad":"${'y'.repeat(maxPayload)}"`);
    add(
      'oversized',
      'chunked body over maxPayloadSize',
      'refused',
      [
        request([
          ['Host', 't'],
          ['Content-Type', 'application/json'],
          ['Transfer-Encoding', 'chunked'],
        ]),
        chunked(big),
      ],
      {},
      [o],
    );
    add(
      'oversized',
      'Expect: 100-continue, oversized',
      'refused',
      [jsonHead(maxPayload * 4, [['Expect', '100-continue']])],
      {
        responses: 1,
      },
    );

    // Deep: nesting far past the limit, arrays or objects.
    const d = p();
    const depth = 200 + Math.floor(rnd() * 20_000);
    const deep = pick([
      `{"probe":"${d}","x":${'['.repeat(depth)}${']'.repeat(depth)}}`,
      `{"probe":"${d}","x":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`,
    ]);
    if (deep.length <= maxPayload)
      add('deep', `depth ${depth}`, 'refused', [jsonHead(deep.length), deep], {}, [d]);
    else
      add(
        'deep',
        `depth ${depth} (too large as well)`,
        'refused',
        [jsonHead(deep.length), deep.slice(0, maxPayload)],
        {},
        [d],
      );

    // Malformed bodies.
    const m = p();
    const bad = pick([
      `{"probe":"${m}"`,
      `{"probe":"${m}",}`,
      `{"probe":"${m}"} trailing`,
      '',
      `probe=${m}&a=%zz`,
      `\uFEFF{"probe":"${m}"}`,
      `{'probe':'${m}'}`,
    ]);
    const type = bad.startsWith('probe=') ? 'application/x-www-form-urlencoded' : 'application/json';
    add(
      'malformed',
      `bad body ${JSON.stringify(bad.slice(0, 12))}`,
      'refused',
      [
        request(
          [
            ['Host', 't'],
            ['Content-Type', type],
            ['Content-Length', Buffer.byteLength(bad)],
          ],
          bad,
        ),
      ],
      {},
      [m],
    );
    const u = p();
    const utf8 = Buffer.concat([
      Buffer.from(`{"probe":"${u}","s":"`),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from('"}'),
    ]);
    add('malformed', 'invalid UTF-8', 'refused', [jsonHead(utf8.length), utf8], {}, [u]);

    // Request smuggling: a second request hidden in the first one's body (fresh probes per case).
    const smuggle = (name: string, build: (prefix: string, hidden: string) => string) => {
      const outer = p();
      const inner = p();
      add('smuggling', name, 'refused', [build(json(outer), valid(inner))], {}, [outer], [inner]);
    };
    const te = pick(['chunked', ' chunked', 'xchunked', 'chunked, identity', 'identity, chunked', 'CHUNKED']);
    smuggle(`CL + TE "${te}"`, (prefix, hidden) =>
      request(
        [
          ['Host', 't'],
          ['Content-Type', 'application/json'],
          ['Content-Length', prefix.length],
          ['Transfer-Encoding', te],
          ['Connection', 'close'],
        ],
        `${chunked(prefix)}${hidden}`,
      ),
    );
    smuggle('two different Content-Lengths', (prefix, hidden) =>
      request(
        [
          ['Host', 't'],
          ['Content-Type', 'application/json'],
          ['Content-Length', prefix.length],
          ['Content-Length', prefix.length + hidden.length],
        ],
        `${prefix}${hidden}`,
      ),
    );
    const odd = pick(['+', '0x', ',', '-', 'e']);
    smuggle(`odd Content-Length (${odd})`, (prefix, hidden) => {
      const len = prefix.length;
      const cl = {
        '+': `+${len}`,
        '0x': `0x${len.toString(16)}`,
        ',': `${len},${len + hidden.length}`,
        '-': '-1',
        e: '1e1',
      }[odd]!;
      return request(
        [
          ['Host', 't'],
          ['Content-Type', 'application/json'],
          ['Content-Length', cl],
        ],
        `${prefix}${hidden}`,
      );
    });

    // Pipelined: several well-formed requests in one write; a broken one in the middle.
    const a = p();
    const b = p();
    const c = p();
    add(
      'pipelined',
      'three requests in one write',
      'valid',
      [`${valid(a, false)}${valid(b, false)}${valid(c)}`],
      { responses: 3 },
      [a, b, c],
    );
    const e = p();
    add(
      'pipelined',
      'a valid request, then garbage',
      'valid',
      [`${valid(e, false)}GARBAGE / HTTP/9.9\r\n\r\n`],
      {},
      [e],
    );

    // Header abuse.
    const h = p();
    const hb = json(h);
    const headerCase = pick([
      ['too many headers', Array.from({ length: 2000 }, (_, k) => [`X-H${k}`, 'v'] as [string, string])],
      ['one 20 KiB header', [['X-Big', 'a'.repeat(20_000)]] as Array<[string, string]>],
      ['no Host', [] as Array<[string, string]>],
      ['header name with a space', [['X Bad', 'v']] as Array<[string, string]>],
      ['control byte in a value', [['X-Bad', 'a\u0001b']] as Array<[string, string]>],
    ] as Array<[string, Array<[string, string]>]>);
    const hostless = headerCase[0] === 'no Host';
    add(
      'headers',
      headerCase[0],
      'refused',
      [
        request(
          [
            ...(hostless ? [] : ([['Host', 't']] as Array<[string, string]>)),
            ['Content-Type', 'application/json'],
            ['Content-Length', hb.length],
            ...headerCase[1],
          ],
          hb,
        ),
      ],
      {},
      [h],
    );
    const w = p();
    const wb = json(w);
    const line = pick([
      `POST /orders HTTP/9.9${CRLF}`,
      `POST /ord\u0000ers HTTP/1.1${CRLF}`,
      `POST /orders/../orders HTTP/1.1${CRLF}`,
      `BREW /orders HTTP/1.1${CRLF}`,
      `POST /${'a'.repeat(20_000)} HTTP/1.1${CRLF}`,
    ]);
    add(
      'headers',
      `request line ${JSON.stringify(line.slice(0, 24))}`,
      'refused',
      [
        `${line}Host: t${CRLF}Content-Type: application/json${CRLF}Content-Length: ${wb.length}${CRLF}${CRLF}${wb}`,
      ],
      {},
      [w],
    );
  }
  return out;
}
