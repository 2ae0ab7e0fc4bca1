// Request headers as events carry them: upstream publishes Go's http.Header, so names are in
// Go's canonical form (textproto.CanonicalMIMEHeaderKey: "x-build-kind" → "X-Build-Kind") and
// every value of a repeated header is kept, in order. Filters, parameters and `filter.expression`
// written for upstream (`header.X-Build-Kind`, `headers.Content-Type`) therefore match.
// Headers that carry credentials are not passed on: their value is replaced by a mask (the name
// stays, so a check for the header's presence still works, as upstream masks Authorization).

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
 * The `header` object an event carries: canonical names, all values, `hidden` names (lower case)
 * masked. `distinct` is Node's `req.headersDistinct` (lower-case names).
 */
export function publishedHeaders(
  distinct: Record<string, string[] | undefined>,
  hidden: ReadonlySet<string>,
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(distinct)) {
    if (!values || NOT_HEADERS.has(name)) continue;
    const value = hidden.has(name) ? values.map(() => MASKED_VALUE) : values;
    // defineProperty: a header literally named "__proto__" must stay a plain own property.
    Object.defineProperty(out, canonicalHeaderName(name), {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
