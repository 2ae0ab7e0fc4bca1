// Turning a request body into the `body` an event carries, as upstream's webhook source does
// (argo-events pkg/eventsources/sources/webhook/start.go, GetBody): a GET publishes its query as
// `{"key": ["value", ...]}`, a POST with `application/x-www-form-urlencoded` publishes its form
// the same way, and every other body must be JSON (invalid or empty → 400, never published as a
// string). Bytes are never rewritten: JSON is carried as the exact text sent (raw-json.ts; upstream
// keeps json.RawMessage), a body (or a form value) that is not valid UTF-8 gets 400, and so does
// JSON nested deeper than the configured limit (deep nesting breaks the evaluators downstream;
// upstream's Go decoder stops at 10,000). A JSON body with more objects, arrays and members, or a
// form with more fields, than the node bound gets 413, as soon as the bound is passed (the body
// is checked chunk by chunk as it arrives, see json-scan.ts). Deviations from upstream, toward
// clear answers: a form parameter list (`; charset=...`) still counts as a form, a form that does
// not decode is 400 (upstream answers 500, which makes senders retry a poison request), and
// methods other than GET/POST carry JSON as POST does (upstream refuses them).
import { isUtf8 } from 'node:buffer';
import { jsonDepthExceeds } from '../json.ts';
import { JsonScan, type ScanProblem } from '../json-scan.ts';
import { RawJson } from '../raw-json.ts';

export { jsonDepthExceeds };

export type Decoded = { ok: true; body: unknown } | { ok: false; status: 400 | 413; message: string };

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** The media type of a Content-Type value, lower case, without parameters. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

const refusal = (p: ScanProblem): Decoded => ({ ok: false, status: p.limit ? 413 : 400, message: p.message });

/**
 * Strict JSON as a RawJson (its text as sent): UTF-8, non-empty, nesting at most `maxDepth`, at
 * most `maxNodes` objects + arrays + members, no trailing garbage. `scan`: the scan already fed
 * with these bytes as they arrived (then only its end is checked).
 */
export function parseJson(
  raw: Buffer,
  maxDepth: number,
  maxNodes = Number.POSITIVE_INFINITY,
  scan?: JsonScan,
): Decoded {
  if (raw.length === 0) return { ok: false, status: 400, message: 'body is empty; expected JSON' };
  const s = scan ?? new JsonScan(maxDepth, maxNodes);
  const problem = (scan ? undefined : s.feed(raw)) ?? s.end();
  if (problem) return refusal(problem);
  if (!isUtf8(raw)) return { ok: false, status: 400, message: 'body is not valid UTF-8' };
  return { ok: true, body: new RawJson(raw.toString('utf8')) };
}

/** Sets an own property, also for names such as "__proto__". */
export function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function unescapeForm(s: string): string {
  return s.includes('%') || s.includes('+') ? decodeURIComponent(s.replaceAll('+', ' ')) : s;
}

/**
 * A query string or form body as Go's url.ParseQuery reads it: `{"key": ["value", ...]}` in
 * order; empty pairs are skipped; a `;` separator, a bad %-escape or bytes that are not UTF-8
 * are errors; more than `maxFields` fields is 413.
 */
export function parseQuery(text: string, maxFields = Number.POSITIVE_INFINITY): Decoded {
  const pairs = text.split('&');
  if (pairs.length > maxFields && pairs.filter(Boolean).length > maxFields) {
    return { ok: false, status: 413, message: `form has more than ${maxFields} fields` };
  }
  const out: Record<string, string[]> = {};
  for (const pair of pairs) {
    if (pair === '') continue;
    if (pair.includes(';'))
      return { ok: false, status: 400, message: 'invalid semicolon separator in form data' };
    const eq = pair.indexOf('=');
    let key: string;
    let value: string;
    try {
      key = unescapeForm(eq < 0 ? pair : pair.slice(0, eq));
      value = eq < 0 ? '' : unescapeForm(pair.slice(eq + 1));
    } catch {
      return {
        ok: false,
        status: 400,
        message: `form data does not decode: ${JSON.stringify(pair.slice(0, 64))}`,
      };
    }
    const list = Object.hasOwn(out, key) ? out[key]! : undefined;
    if (list) list.push(value);
    else if (key === '__proto__') setOwn(out, key, [value]);
    else out[key] = [value];
  }
  return { ok: true, body: out };
}

export interface BodyInput {
  method: string;
  contentType: string | undefined;
  raw: Buffer;
  /** The request URL's query string, without "?". */
  query: string;
  maxDepth: number;
  /** Most JSON objects + arrays + members, or form fields (default: no bound). */
  maxNodes?: number;
  /** The check that ran while the body arrived (see `bodyCheck`). */
  check?: BodyCheck | undefined;
}

/** A check run on each chunk of a body as it arrives: a refusal ends the upload at once. */
export interface BodyCheck {
  feed(chunk: Uint8Array): { status: 400 | 413; message: string } | undefined;
}

/** Counts form fields as bytes arrive (a `&` starts one). */
class FormCheck implements BodyCheck {
  private fields = 1;
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  feed(chunk: Uint8Array) {
    for (let i = chunk.indexOf(0x26); i >= 0; i = chunk.indexOf(0x26, i + 1)) {
      // Empty pairs ("&&") do not count in the end, but a body made of them is refused anyway.
      if (++this.fields > this.max * 2)
        return { status: 413 as const, message: `form has more than ${this.max} fields` };
    }
    return undefined;
  }
}

class JsonCheck implements BodyCheck {
  readonly scan: JsonScan;
  constructor(maxDepth: number, maxNodes: number) {
    this.scan = new JsonScan(maxDepth, maxNodes);
  }
  feed(chunk: Uint8Array) {
    const p = this.scan.feed(chunk);
    return p ? { status: p.limit ? (413 as const) : (400 as const), message: p.message } : undefined;
  }
}

/** The check for a body about to be read, given how the route decodes it. */
export function bodyCheck(o: {
  format: 'webhook' | 'provider';
  method: string;
  contentType: string | undefined;
  maxDepth: number;
  maxNodes: number;
}): BodyCheck | undefined {
  if (o.format === 'webhook' && o.method === 'GET') return undefined;
  if (mediaType(o.contentType) === FORM_TYPE) return new FormCheck(o.maxNodes);
  return new JsonCheck(o.maxDepth, o.maxNodes);
}

const scanOf = (c: BodyCheck | undefined) => (c instanceof JsonCheck ? c.scan : undefined);

function parseFormBody(raw: Buffer, maxFields: number): Decoded {
  if (!isUtf8(raw)) return { ok: false, status: 400, message: 'body is not valid UTF-8' };
  return parseQuery(raw.toString('utf8'), maxFields);
}

/** The plain `webhook` source: GET → query, form → fields, anything else → strict JSON. */
export function decodeWebhookBody(o: BodyInput): Decoded {
  const maxNodes = o.maxNodes ?? Number.POSITIVE_INFINITY;
  if (o.method === 'GET') return parseQuery(o.query, maxNodes);
  if (mediaType(o.contentType) === FORM_TYPE) return parseFormBody(o.raw, maxNodes);
  return parseJson(o.raw, o.maxDepth, o.maxNodes, scanOf(o.check));
}

/**
 * Providers (GitHub, GitLab, Bitbucket, Slack, Stripe): strict JSON, or a form body handed to the
 * provider's own handling as text (Slack interactions and slash commands, GitHub's form-encoded
 * `payload`).
 */
export function decodeProviderBody(o: BodyInput): Decoded {
  if (mediaType(o.contentType) === FORM_TYPE) {
    if (!isUtf8(o.raw)) return { ok: false, status: 400, message: 'body is not valid UTF-8' };
    let fields = 1;
    for (let i = o.raw.indexOf(0x26); i >= 0; i = o.raw.indexOf(0x26, i + 1)) fields++;
    if (fields > (o.maxNodes ?? Number.POSITIVE_INFINITY))
      return { ok: false, status: 413, message: `form has more than ${o.maxNodes} fields` };
    return { ok: true, body: o.raw.toString('utf8') };
  }
  return parseJson(o.raw, o.maxDepth, o.maxNodes, scanOf(o.check));
}
