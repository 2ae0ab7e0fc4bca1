// Turning a request body into the `body` an event carries, as upstream's webhook source does
// (argo-events pkg/eventsources/sources/webhook/start.go, GetBody): a GET publishes its query as
// `{"key": ["value", ...]}`, a POST with `application/x-www-form-urlencoded` publishes its form
// the same way, and every other body must be JSON (invalid or empty → 400, never published as a
// string). Bytes are never rewritten: a body (or a form value) that is not valid UTF-8 gets 400,
// and so does JSON nested deeper than the configured limit (deep nesting breaks the evaluators
// downstream; upstream's Go decoder stops at 10,000). Deviations from upstream, toward clear
// answers: a form parameter list (`; charset=...`) still counts as a form, a form that does not
// decode is 400 (upstream answers 500, which makes senders retry a poison request), and methods
// other than GET/POST carry JSON as POST does (upstream refuses them).
import { isUtf8 } from 'node:buffer';
import { jsonDepthExceeds } from '../json.ts';

export { jsonDepthExceeds };

export type Decoded = { ok: true; body: unknown } | { ok: false; message: string };

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** The media type of a Content-Type value, lower case, without parameters. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Strict JSON: UTF-8, non-empty, nesting at most `maxDepth`, no trailing garbage. */
export function parseJson(raw: Buffer, maxDepth: number): Decoded {
  if (raw.length === 0) return { ok: false, message: 'body is empty; expected JSON' };
  if (!isUtf8(raw)) return { ok: false, message: 'body is not valid UTF-8' };
  if (jsonDepthExceeds(raw, maxDepth)) {
    return { ok: false, message: `JSON nested deeper than ${maxDepth} levels` };
  }
  try {
    return { ok: true, body: JSON.parse(raw.toString('utf8')) };
  } catch (err) {
    return { ok: false, message: `body is not valid JSON: ${(err as Error).message}` };
  }
}

/** Sets an own property, also for names such as "__proto__". */
export function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function unescapeForm(s: string): string {
  return decodeURIComponent(s.replaceAll('+', ' '));
}

/**
 * A query string or form body as Go's url.ParseQuery reads it: `{"key": ["value", ...]}` in
 * order; empty pairs are skipped; a `;` separator, a bad %-escape or bytes that are not UTF-8
 * are errors.
 */
export function parseQuery(text: string): Decoded {
  const out: Record<string, string[]> = {};
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    if (pair.includes(';')) return { ok: false, message: 'invalid semicolon separator in form data' };
    const eq = pair.indexOf('=');
    let key: string;
    let value: string;
    try {
      key = unescapeForm(eq < 0 ? pair : pair.slice(0, eq));
      value = eq < 0 ? '' : unescapeForm(pair.slice(eq + 1));
    } catch {
      return { ok: false, message: `form data does not decode: ${JSON.stringify(pair.slice(0, 64))}` };
    }
    const list = Object.hasOwn(out, key) ? out[key]! : [];
    if (list.length === 0) setOwn(out, key, list);
    list.push(value);
  }
  return { ok: true, body: out };
}

function parseFormBody(raw: Buffer): Decoded {
  if (!isUtf8(raw)) return { ok: false, message: 'body is not valid UTF-8' };
  return parseQuery(raw.toString('utf8'));
}

export interface BodyInput {
  method: string;
  contentType: string | undefined;
  raw: Buffer;
  /** The request URL's query string, without "?". */
  query: string;
  maxDepth: number;
}

/** The plain `webhook` source: GET → query, form → fields, anything else → strict JSON. */
export function decodeWebhookBody(o: BodyInput): Decoded {
  if (o.method === 'GET') return parseQuery(o.query);
  if (mediaType(o.contentType) === FORM_TYPE) return parseFormBody(o.raw);
  return parseJson(o.raw, o.maxDepth);
}

/**
 * Providers (GitHub, GitLab, Bitbucket, Slack, Stripe): strict JSON, or a form body handed to the
 * provider's own handling as text (Slack interactions and slash commands, GitHub's form-encoded
 * `payload`).
 */
export function decodeProviderBody(o: BodyInput): Decoded {
  if (mediaType(o.contentType) === FORM_TYPE) {
    if (!isUtf8(o.raw)) return { ok: false, message: 'body is not valid UTF-8' };
    return { ok: true, body: o.raw.toString('utf8') };
  }
  return parseJson(o.raw, o.maxDepth);
}
