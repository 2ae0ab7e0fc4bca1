// Paths into event payloads: gjson's syntax and semantics (src/gjson), the one implementation
// behind data filters, expression fields, parameter keys and ordering keys. Paths are compiled
// once; `lookup` caches paths that arrive at run time. Below are gjson's value conversions
// (Result.String/Float/Bool) as the filters use them.
import { type CompiledPath, compileGjson, type Lookup, MISSING, PathError } from '../../gjson/index.ts';

export { type CompiledPath, type Lookup, MISSING, PathError };

/** Compiles a gjson path; throws PathError (code InvalidPath) when it cannot be read. */
export const compilePath = (path: string): CompiledPath => compileGjson(path);

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
      return compactJson(v);
  }
}

/**
 * JSON text of `v`. A value nested too deeply for JSON.stringify's recursion (what `@fromstr` can
 * make of a string in the event: the decoder bounds the event itself) is written by a loop.
 */
export function compactJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? '';
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    return deepJson(v);
  }
}

type Frame = { items: Array<[string | undefined, unknown]>; i: number; close: string };

/** JSON.stringify without recursion (for values nested tens of thousands of levels deep). */
function deepJson(root: unknown): string {
  const out: string[] = [];
  const stack: Frame[] = [];
  const open = (v: unknown): void => {
    if (v !== null && typeof v === 'object' && !isRawJson(v)) {
      const arr = Array.isArray(v);
      const items: Frame['items'] = arr
        ? v.map((x) => [undefined, x] as [undefined, unknown])
        : Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
      out.push(arr ? '[' : '{');
      stack.push({ items, i: 0, close: arr ? ']' : '}' });
    } else out.push(JSON.stringify(v === undefined ? null : v) ?? 'null');
  };
  open(root);
  while (stack.length) {
    const f = stack.at(-1)!;
    if (f.i >= f.items.length) {
      out.push(f.close);
      stack.pop();
      continue;
    }
    const [k, x] = f.items[f.i++]!;
    if (f.i > 1) out.push(',');
    if (k !== undefined) out.push(`${JSON.stringify(k)}:`);
    open(x);
  }
  return out.join('');
}

const isRawJson = (v: object): boolean =>
  (JSON as unknown as { isRawJSON?: (x: unknown) => boolean }).isRawJSON?.(v) === true;

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
