// Request headers as events carry them: upstream publishes Go's http.Header, so names are in
// Go's canonical form (textproto.CanonicalMIMEHeaderKey: "x-build-kind" → "X-Build-Kind") and
// every value of a repeated header is kept, in order. Filters, parameters and `filter.expression`
// written for upstream (`header.X-Build-Kind`, `headers.Content-Type`) therefore match.
// Headers that carry credentials are not passed on: their value is replaced by a mask (the name
// stays, so a check for the header's presence still works, as upstream masks Authorization).
import { isUtf8 } from 'node:buffer';

/** What a hidden header's value is replaced with (upstream's text for Authorization). */
export const MASKED_VALUE = '*** Masked Auth Secret ***';

/**
 * Headers masked by default on every webhook route (lower case). SLUICE_WEBHOOK_HIDDEN_HEADERS
 * (comma-separated) replaces the list; an empty value masks nothing.
 */
export const DEFAULT_HIDDEN_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'x-api-key',
  'x-auth-token',
];

/** The hidden-header list from SLUICE_WEBHOOK_HIDDEN_HEADERS, or the default. */
export function hiddenHeadersFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = env.SLUICE_WEBHOOK_HIDDEN_HEADERS;
  if (raw === undefined) return [...DEFAULT_HIDDEN_HEADERS];
  return raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

/**
 * Request headers whose value is the event id, in order (lower case). X-Request-Id is not among
 * them by default: proxies (ingress-nginx, Envoy) give every attempt a new one, which would make a
 * sender's retry a new event. SLUICE_WEBHOOK_ID_HEADERS (comma-separated) replaces the list.
 */
export const DEFAULT_ID_HEADERS: readonly string[] = ['idempotency-key'];

/** The id-header list from SLUICE_WEBHOOK_ID_HEADERS, or the default. */
export function idHeadersFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = env.SLUICE_WEBHOOK_ID_HEADERS;
  if (raw === undefined) return [...DEFAULT_ID_HEADERS];
  return raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

/** Go's server moves these out of http.Header (into Request.Host / TransferEncoding). */
const NOT_HEADERS = new Set(['host', 'transfer-encoding']);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Go's canonical header name: the first letter and every letter after "-" upper case, the rest
 * lower case. A name with a byte outside the HTTP token set is returned unchanged, as Go does.
 */
export function canonicalHeaderName(name: string): string {
  if (!TOKEN.test(name)) return name;
  let out = '';
  let upper = true;
  for (const ch of name) {
    out += upper ? ch.toUpperCase() : ch.toLowerCase();
    upper = ch === '-';
  }
  return out;
}

/**
 * A header value as its sender wrote it: Node reads header bytes as latin1 (one character per
 * byte), so UTF-8 text (`café`) would read as `cafÃ©`. Valid UTF-8 is decoded as UTF-8 (as Go's
 * json.Marshal writes Go's byte strings); other bytes stay one character per byte (reversible;
 * upstream would write U+FFFD).
 */
export function headerText(v: string): string {
  let high = false;
  for (let i = 0; i < v.length && !high; i++) high = v.charCodeAt(i) >= 0x80;
  if (!high) return v;
  const bytes = Buffer.from(v, 'latin1');
  return isUtf8(bytes) ? bytes.toString('utf8') : v;
}

/** Canonical names already computed (header names repeat from request to request). */
const canonicalNames = new Map<string, string>();
/** Bound of that cache: header names are chosen by clients, so it must not grow without end. */
const MAX_CACHED_NAMES = 512;

/** canonicalHeaderName, remembered for the first MAX_CACHED_NAMES names seen. */
function canonicalCached(name: string): string {
  let c = canonicalNames.get(name);
  if (c === undefined) {
    c = canonicalHeaderName(name);
    if (canonicalNames.size < MAX_CACHED_NAMES) canonicalNames.set(name, c);
  }
  return c;
}

const byCanonicalName = (a: string, b: string): number => {
  const x = canonicalCached(a);
  const y = canonicalCached(b);
  return x < y ? -1 : x > y ? 1 : 0;
};

/**
 * The `header` object an event carries: canonical names in sorted order (as Go's json.Marshal
 * writes a map), all values, `hidden` names (lower case) masked. `distinct` is Node's
 * `req.headersDistinct` (lower-case names).
 */
export function publishedHeaders(
  distinct: Record<string, string[] | undefined>,
  hidden: ReadonlySet<string>,
): Record<string, string[]> {
  const names: string[] = [];
  for (const name in distinct) if (distinct[name] && !NOT_HEADERS.has(name)) names.push(name);
  names.sort(byCanonicalName);
  const out: Record<string, string[]> = {};
  for (const name of names) {
    const values = distinct[name]!;
    const value = hidden.has(name) ? values.map(() => MASKED_VALUE) : values.map(headerText);
    const canonical = canonicalCached(name);
    // defineProperty: a header literally named "__proto__" must stay a plain own property.
    if (canonical === '__proto__') {
      Object.defineProperty(out, canonical, { value, enumerable: true, writable: true, configurable: true });
    } else {
      out[canonical] = value;
    }
  }
  return out;
}

/**
 * publishedHeaders from Node's `req.rawHeaders` ([name, value, name, value, ...] as received),
 * without the `req.headersDistinct` object (which would live as long as the request).
 */
export function publishedRawHeaders(
  raw: readonly string[],
  hidden: ReadonlySet<string>,
): Record<string, string[]> {
  const distinct: Record<string, string[]> = Object.create(null);
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const values = distinct[name];
    if (values) values.push(raw[i + 1]!);
    else distinct[name] = [raw[i + 1]!];
  }
  return publishedHeaders(distinct, hidden);
}
