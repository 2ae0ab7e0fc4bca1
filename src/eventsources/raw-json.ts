// JSON carried as the exact text the sender sent. Upstream keeps a body as json.RawMessage, so
// every number (1234567890123456789, 1e400, -0, 1.0), duplicate key and key order arrives in the
// event as sent; parsing a body into a JS value and serialising it again would change all of
// those. A RawJson holds the validated text and parses it only when something asks for its value
// (a filter, a provider's field), once. Encoding an event (`encodeJson`) splices the text into the
// envelope where the RawJson sits; everywhere else (logs, JSON.stringify) it stands for its value.
//
// `member` and `elements` find the text of an object member or of array elements without parsing
// the whole value (a provider needs a few fields of a large delivery), by a scan over the text.
import { randomBytes } from 'node:crypto';

export class RawJson {
  /** Valid JSON text (validated by whoever made it, see json-scan.ts). */
  readonly text: string;
  private parsed: { value: unknown } | undefined;

  constructor(text: string, value?: unknown) {
    this.text = text;
    if (value !== undefined) this.parsed = { value };
  }

  /** The parsed value (parsed on first use; throws when the text is not JSON). */
  get value(): unknown {
    this.parsed ??= { value: JSON.parse(this.text) };
    return this.parsed.value;
  }

  /** Inside `encodeJson`: a placeholder for the text; elsewhere: the value. */
  toJSON(): unknown {
    if (!encoding) return this.value;
    encoding.push(this.text);
    return `${NONCE}${encoding.length - 1}`;
  }
}

/** Placeholder prefix; random per process, so no sender can forge one. */
const NONCE = `sluice-raw-${randomBytes(12).toString('hex')}-`;
let encoding: string[] | undefined;

/** JSON.stringify with every RawJson inside written as its exact text. */
export function encodeJson(v: unknown): string {
  const outer = encoding;
  encoding = [];
  let out: string;
  let parts: string[];
  try {
    out = JSON.stringify(v);
    parts = encoding;
  } finally {
    encoding = outer;
  }
  if (parts.length === 0) return out;
  const pieces = out.split(`"${NONCE}`);
  let text = pieces[0]!;
  for (let i = 1; i < pieces.length; i++) {
    const p = pieces[i]!;
    const q = p.indexOf('"');
    text += parts[Number(p.slice(0, q))]! + p.slice(q + 1);
  }
  return text;
}

/** `v` with every RawJson replaced by its value (containers copied only where needed). */
export function plainValue(v: unknown): unknown {
  if (v instanceof RawJson) return v.value;
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const p = plainValue(v[i]);
      if (p === v[i]) continue;
      out ??= [...v];
      out[i] = p;
    }
    return out ?? v;
  }
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k];
    const p = plainValue(x);
    if (p !== x) {
      out ??= { ...(v as Record<string, unknown>) };
      Object.defineProperty(out, k, { value: p, enumerable: true, writable: true, configurable: true });
    }
  }
  return out ?? v;
}

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function skipWs(t: string, i: number): number {
  while (i < t.length && isWs(t.charCodeAt(i))) i++;
  return i;
}

/** Index just after the string starting at `i` (a quote). */
function skipString(t: string, i: number): number {
  for (i++; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x22) return i + 1;
  }
  return i;
}

/** Index just after the value starting at `i`. */
function skipValue(t: string, i: number): number {
  const c = t.charCodeAt(i);
  if (c === 0x22) return skipString(t, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (; i < t.length; i++) {
      const d = t.charCodeAt(i);
      if (d === 0x22) i = skipString(t, i) - 1;
      else if (d === 0x7b || d === 0x5b) depth++;
      else if ((d === 0x7d || d === 0x5d) && --depth === 0) return i + 1;
    }
    return i;
  }
  while (i < t.length) {
    const d = t.charCodeAt(i);
    if (d === 0x2c || d === 0x7d || d === 0x5d || isWs(d)) break;
    i++;
  }
  return i;
}

interface Span {
  key?: string;
  start: number;
  end: number;
}

/** Spans of the members of a JSON object text, or of the elements of an array text. */
function spans(t: string): { object: boolean; items: Span[] } | undefined {
  let i = skipWs(t, 0);
  const open = t.charCodeAt(i);
  if (open !== 0x7b && open !== 0x5b) return undefined;
  const object = open === 0x7b;
  const items: Span[] = [];
  i = skipWs(t, i + 1);
  if (t.charCodeAt(i) === (object ? 0x7d : 0x5d)) return { object, items };
  for (;;) {
    let key: string | undefined;
    if (object) {
      const k = skipString(t, i);
      key = JSON.parse(t.slice(i, k)) as string;
      i = skipWs(t, skipWs(t, k) + 1); // past ':'
    }
    const end = skipValue(t, i);
    items.push({ ...(key !== undefined ? { key } : {}), start: i, end });
    i = skipWs(t, end);
    if (t.charCodeAt(i) !== 0x2c) break;
    i = skipWs(t, i + 1);
  }
  return { object, items };
}

/**
 * The members of an object by name (the last of duplicates, as JSON.parse keeps), or undefined
 * when `r` is not an object. One scan of the text; nothing is parsed but the names.
 */
export function members(r: unknown): Map<string, RawJson> | undefined {
  if (!(r instanceof RawJson)) return undefined;
  const s = spans(r.text);
  if (!s?.object) return undefined;
  return new Map(s.items.map((it) => [it.key!, new RawJson(r.text.slice(it.start, it.end))]));
}

/** The member `key` of an object (the last one, as JSON.parse keeps), or undefined. */
export function member(r: unknown, key: string): RawJson | undefined {
  return members(r)?.get(key);
}

/** The elements of an array, or undefined when `r` is not an array. */
export function elements(r: unknown): RawJson[] | undefined {
  if (!(r instanceof RawJson)) return undefined;
  const s = spans(r.text);
  if (!s || s.object) return undefined;
  return s.items.map((it) => new RawJson(r.text.slice(it.start, it.end)));
}

/** `r` (an object) with the value of member `key` (every occurrence) replaced by `text`. */
export function withMember(r: RawJson, key: string, text: string): RawJson {
  const s = spans(r.text);
  if (!s?.object) throw new Error('not a JSON object');
  let out = '';
  let at = 0;
  for (const it of s.items) {
    if (it.key !== key) continue;
    out += r.text.slice(at, it.start) + text;
    at = it.end;
  }
  return new RawJson(out + r.text.slice(at));
}
