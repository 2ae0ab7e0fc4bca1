// Removes resolved secret values from text before it is logged, counted or stored (trigger errors
// often echo what was sent: "401 invalid credentials: Basic dXNlcjpwYXNz"). Every value read from
// a Secret is registered here as it is resolved (no limit on how many). redact() finds each value
// in the text as it is, and after undoing the escapes targets use when they echo it (JSON's
// \uXXXX as Go writes < > & and \/, HTML entities, percent-encoding; applied twice, so an escape
// inside an escape is found too), and inside every base64 or base64url run of the text (so
// `Basic <user:pass>` of any registered pair, or a secret inside a longer encoded blob, is caught);
// a secret cut off at the end of a truncated body is masked too. Values shorter than
// MIN_SECRET_LENGTH would match all over ordinary text: they are redacted only where they stand
// alone (not inside a longer word or number), and registering one says so (warn callback).

/** Values shorter than this are redacted only as whole words. */
export const MIN_SECRET_LENGTH = 4;
export const REDACTED = '[redacted]';

/** A text with escapes undone, and for each of its characters the span of the source it came from. */
interface Decoded {
  text: string;
  from: number[];
  to: number[];
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  n: '\n',
  r: '\r',
  t: '\t',
  b: '\b',
  f: '\f',
};
const NAMED_ENTITIES: Record<string, string> = {
  quot: '"',
  amp: '&',
  lt: '<',
  gt: '>',
  apos: "'",
  nbsp: '\u00a0',
};
const ENTITY = /^&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|(quot|amp|lt|gt|apos|nbsp));/;
const HEX2 = /^%([0-9a-fA-F]{2})/;

/** One escape (JSON, HTML entity, percent-encoded UTF-8) at `i`: the text it stands for and its length. */
function escapeAt(s: string, i: number): [string, number] | undefined {
  const c = s[i];
  if (c === '\\') {
    const n = s[i + 1] ?? '';
    if (n === 'u' && /^[0-9a-fA-F]{4}$/.test(s.slice(i + 2, i + 6)))
      return [String.fromCharCode(Number.parseInt(s.slice(i + 2, i + 6), 16)), 6];
    const simple = SIMPLE_ESCAPES[n];
    return simple === undefined ? undefined : [simple, 2];
  }
  if (c === '&') {
    const m = ENTITY.exec(s.slice(i, i + 12));
    if (!m) return undefined;
    const code = m[1] ? Number(m[1]) : m[2] ? Number.parseInt(m[2], 16) : undefined;
    if (code !== undefined) return code <= 0x10ffff ? [String.fromCodePoint(code), m[0].length] : undefined;
    return [NAMED_ENTITIES[m[3]!]!, m[0].length];
  }
  if (c === '%') {
    // A run of %XX bytes that is valid UTF-8 for one character.
    const bytes: number[] = [];
    let j = i;
    for (let k = 0; k < 4; k++) {
      const m = HEX2.exec(s.slice(j, j + 3));
      if (!m) break;
      bytes.push(Number.parseInt(m[1]!, 16));
      j += 3;
      const lead = bytes[0]!;
      const need = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
      if (bytes.length === need) {
        try {
          return [decodeURIComponent(s.slice(i, j)), j - i];
        } catch {
          return undefined;
        }
      }
    }
  }
  return undefined;
}

function decodeOnce(s: string): Decoded {
  let text = '';
  const from: number[] = [];
  const to: number[] = [];
  for (let i = 0; i < s.length; ) {
    const e = escapeAt(s, i);
    const [out, len] = e ?? [s[i]!, 1];
    for (let k = 0; k < out.length; k++) {
      from.push(i);
      to.push(i + len);
    }
    text += out;
    i += len;
  }
  return { text, from, to };
}

/** `inner` (decoded from `outer.text`) with spans in `outer`'s source. */
function compose(outer: Decoded, inner: Decoded): Decoded {
  return {
    text: inner.text,
    from: inner.from.map((f) => outer.from[f]!),
    to: inner.to.map((t) => outer.to[t - 1]!),
  };
}

const identity = (s: string): Decoded => {
  const from = Array.from({ length: s.length }, (_, i) => i);
  return { text: s, from, to: from.map((i) => i + 1) };
};

/** Runs of base64 / base64url text long enough to hide a secret. */
const BASE64_RUN = /[A-Za-z0-9+/_-]{6,}={0,2}/g;
const WORD_CHAR = /[A-Za-z0-9]/;
const PRINTABLE = /^[\x20-\x7e]*$/;

export class Redactor {
  private readonly values = new Set<string>();
  /** Registered values of MIN_SECRET_LENGTH or more, and their plain base64 forms. */
  private needles: string[] = [];
  private long: string[] = [];
  private short: string[] = [];
  private readonly warn: ((message: string) => void) | undefined;

  /** `warn` is told about values that can be redacted only as whole words (too short). */
  constructor(warn?: (message: string) => void) {
    this.warn = warn;
  }

  /** Registers a resolved secret value (and its trimmed form: triggers trim what they send). */
  add(value: string): void {
    let added = false;
    for (const v of new Set([value, value.trim()])) {
      if (!v || this.values.has(v)) continue;
      this.values.add(v);
      added = true;
      if (v.length < MIN_SECRET_LENGTH)
        this.warn?.(
          `a Secret value of ${v.length} character(s) is redacted from error text only where it stands alone; use longer secrets`,
        );
    }
    if (!added) return;
    this.long = [...this.values]
      .filter((v) => v.length >= MIN_SECRET_LENGTH)
      .sort((a, b) => b.length - a.length);
    this.short = [...this.values].filter((v) => v.length < MIN_SECRET_LENGTH);
    const needles = new Set<string>(this.long);
    for (const v of this.long) {
      needles.add(Buffer.from(v).toString('base64').replace(/=+$/, ''));
      needles.add(Buffer.from(v).toString('base64url'));
    }
    this.needles = [...needles]
      .filter((n) => n.length >= MIN_SECRET_LENGTH)
      .sort((a, b) => b.length - a.length);
  }

  /** `text` with every registered secret (in any form above) replaced by "[redacted]". */
  redact(text: string): string {
    if (!this.values.size || !text) return text;
    const ranges: Array<[number, number]> = [];
    const once = decodeOnce(text);
    for (const d of [identity(text), once, compose(once, decodeOnce(once.text))]) this.find(d, ranges);
    return this.cutTail(apply(text, ranges));
  }

  /** Adds the source spans of every secret found in `d.text` to `ranges`. */
  private find(d: Decoded, ranges: Array<[number, number]>): void {
    const t = d.text;
    const span = (i: number, len: number) => ranges.push([d.from[i]!, d.to[i + len - 1]!]);
    for (const n of this.needles)
      for (let i = t.indexOf(n); i !== -1; i = t.indexOf(n, i + 1)) span(i, n.length);
    for (const v of this.short) {
      for (let i = t.indexOf(v); i !== -1; i = t.indexOf(v, i + 1))
        if (!WORD_CHAR.test(t[i - 1] ?? ' ') && !WORD_CHAR.test(t[i + v.length] ?? ' ')) span(i, v.length);
    }
    for (const m of t.matchAll(BASE64_RUN)) if (this.hidesSecret(m[0])) span(m.index, m[0].length);
  }

  /** True when a base64 / base64url run decodes to text holding a registered value. */
  private hidesSecret(run: string): boolean {
    const bare = run.replace(/=+$/, '');
    for (const enc of ['base64', 'base64url'] as const) {
      // Every alignment, so a run cut at any character still decodes.
      for (let skip = 0; skip < 4 && skip < bare.length; skip++) {
        const plain = Buffer.from(bare.slice(skip), enc).toString('latin1');
        const utf8 = Buffer.from(plain, 'latin1').toString('utf8');
        for (const v of this.long) if (plain.includes(v) || utf8.includes(v)) return true;
        // A short value only in decoded text that is plain ASCII (e.g. "user:pw9"), not in noise.
        if (PRINTABLE.test(plain)) for (const v of this.short) if (isWord(plain, v)) return true;
      }
    }
    return false;
  }

  /** A text cut off mid-secret (a bounded body) ends with the secret's first characters: mask them. */
  private cutTail(text: string): string {
    let cut = 0;
    for (const f of this.needles) {
      for (let n = Math.min(f.length - 1, text.length); n >= MIN_SECRET_LENGTH; n--) {
        if (n > cut && text.endsWith(f.slice(0, n))) {
          cut = n;
          break;
        }
      }
    }
    return cut ? `${text.slice(0, text.length - cut)}${REDACTED}` : text;
  }
}

/** True when `v` occurs in `t` as a whole word. */
function isWord(t: string, v: string): boolean {
  for (let i = t.indexOf(v); i !== -1; i = t.indexOf(v, i + 1))
    if (!WORD_CHAR.test(t[i - 1] ?? ' ') && !WORD_CHAR.test(t[i + v.length] ?? ' ')) return true;
  return false;
}

/** `text` with the (possibly overlapping) `ranges` replaced by REDACTED. */
function apply(text: string, ranges: Array<[number, number]>): string {
  if (!ranges.length) return text;
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [a, b] of ranges) {
    const last = merged.at(-1);
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  let out = '';
  let at = 0;
  for (const [a, b] of merged) {
    out += text.slice(at, a) + REDACTED;
    at = b;
  }
  return out + text.slice(at);
}
