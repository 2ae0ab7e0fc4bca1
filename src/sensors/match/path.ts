// Dotted paths into event payloads, read the way upstream's gjson reads them: "body.a.b",
// "body.items.0.id" (a number indexes an array, or names a key of an object), "\." for a dot
// inside a key, "*" / "?" wildcards inside a key (first matching key wins), "items.#" for the
// length of an array and "items.#.id" for the field of every element. Paths are compiled once.

/** Returned by a lookup when the path leads nowhere. */
export const MISSING: unique symbol = Symbol('missing');
export type Lookup = unknown | typeof MISSING;

interface Segment {
  key: string;
  index: number | undefined;
  wildcard: RegExp | undefined;
  hash: boolean;
}

export interface CompiledPath {
  readonly path: string;
  get(root: unknown): Lookup;
}

export class PathError extends Error {
  readonly code = 'InvalidPath';
}

function splitPath(path: string): Array<{ text: string; wild: boolean }> {
  const out: Array<{ text: string; wild: boolean }> = [];
  let text = '';
  let wild = false;
  let pattern = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === '\\' && i + 1 < path.length) {
      const n = path[++i]!;
      text += n;
      pattern += n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    } else if (c === '.') {
      out.push({ text: wild ? pattern : text, wild });
      text = '';
      pattern = '';
      wild = false;
    } else if (c === '*' || c === '?') {
      wild = true;
      text += c;
      pattern += c === '*' ? '.*' : '.';
    } else {
      text += c;
      pattern += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  out.push({ text: wild ? pattern : text, wild });
  return out;
}

function compileSegments(path: string): Segment[] {
  if (path === '') throw new PathError('path is empty');
  return splitPath(path).map(({ text, wild }) => ({
    key: text,
    index: !wild && /^(0|[1-9][0-9]*)$/.test(text) ? Number(text) : undefined,
    wildcard: wild ? new RegExp(`^${text}$`, 's') : undefined,
    hash: !wild && text === '#',
  }));
}

function walk(value: unknown, segs: readonly Segment[], from: number): Lookup {
  let cur = value;
  for (let i = from; i < segs.length; i++) {
    const s = segs[i]!;
    if (cur === null || typeof cur !== 'object') return MISSING;
    if (Array.isArray(cur)) {
      if (s.hash) {
        if (i === segs.length - 1) return cur.length;
        const out: unknown[] = [];
        for (const el of cur) {
          const r = walk(el, segs, i + 1);
          if (r !== MISSING) out.push(r);
        }
        return out;
      }
      if (s.index === undefined || s.index >= cur.length) return MISSING;
      cur = cur[s.index];
      continue;
    }
    const obj = cur as Record<string, unknown>;
    if (s.wildcard) {
      let found: Lookup = MISSING;
      for (const k of Object.keys(obj)) {
        if (s.wildcard.test(k)) {
          found = obj[k];
          break;
        }
      }
      if (found === MISSING) return MISSING;
      cur = found;
      continue;
    }
    if (!Object.hasOwn(obj, s.key)) return MISSING;
    cur = obj[s.key];
    if (cur === undefined) return MISSING;
  }
  return cur;
}

export function compilePath(path: string): CompiledPath {
  const segs = compileSegments(path);
  // The common case (plain keys, no wildcards or "#") gets a tight loop.
  if (segs.every((s) => !s.wildcard && !s.hash)) {
    const keys = segs.map((s) => s.key);
    const idx = segs.map((s) => s.index);
    return {
      path,
      get(root) {
        let cur = root;
        for (let i = 0; i < keys.length; i++) {
          if (cur === null || typeof cur !== 'object') return MISSING;
          if (Array.isArray(cur)) {
            const n = idx[i];
            if (n === undefined || n >= cur.length) return MISSING;
            cur = cur[n];
          } else {
            const k = keys[i]!;
            if (!Object.hasOwn(cur, k)) return MISSING;
            cur = (cur as Record<string, unknown>)[k];
            if (cur === undefined) return MISSING;
          }
        }
        return cur;
      },
    };
  }
  return { path, get: (root) => walk(root, segs, 0) };
}

const cache = new Map<string, CompiledPath>();
/** compilePath with a small cache, for paths that arrive at run time. */
export function lookup(root: unknown, path: string): Lookup {
  let c = cache.get(path);
  if (!c) {
    c = compilePath(path);
    if (cache.size > 1000) cache.clear();
    cache.set(path, c);
  }
  return c.get(root);
}

// ------------------------------------------------------------------ value conversions (gjson) --

/** A number as Go's strconv 'f' format with the shortest exact digits (no exponent). */
export function plainNumber(n: number): string {
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
  const s = String(n);
  if (!s.includes('e')) return s;
  const [mant, expS] = s.split('e') as [string, string];
  const exp = Number(expS);
  const neg = mant.startsWith('-');
  const abs = neg ? mant.slice(1) : mant;
  const dot = abs.indexOf('.');
  const digits = abs.replace('.', '');
  const point = (dot === -1 ? abs.length : dot) + exp;
  let out: string;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return neg ? `-${out}` : out;
}

/** The text of a value as gjson's Result.String() gives it. */
export function textOf(v: unknown): string {
  if (v === MISSING || v === null || v === undefined) return '';
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
      return plainNumber(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    default:
      return JSON.stringify(v) ?? '';
  }
}

const GO_FLOAT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const GO_SPECIAL = /^[+-]?(inf|infinity|nan)$/i;

/** Go's strconv.ParseFloat for decimal input; undefined when it is not a number. */
export function parseGoFloat(s: string): number | undefined {
  const t = s.replaceAll('_', '');
  if (GO_FLOAT.test(t)) return Number(t);
  if (GO_SPECIAL.test(t)) return /nan/i.test(t) ? Number.NaN : t.startsWith('-') ? -Infinity : Infinity;
  return undefined;
}

/** Go's strconv.ParseBool; undefined when it is not a boolean. */
export function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** gjson Result.Float(). */
export function floatOf(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') return parseGoFloat(v) ?? 0;
  return 0;
}

/** gjson Result.Bool(). */
export function boolOf(v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return parseGoBool(v) ?? false;
  return false;
}
