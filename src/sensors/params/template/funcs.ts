// The functions templates can call: Go's built-ins (and, or, not, eq, len, index, printf, ...)
// and the commonly used part of sprig (b64dec, upper, trim, default, toJson, substr, ...).
// Deliberately absent: env / expandenv (they would expose the Sensor's environment, which holds
// credentials) and anything that reaches the network or the file system.
import { createHash, randomUUID } from 'node:crypto';
import { activeMeter } from '../../inline-budget.ts';
import { type GoMatch, type GoRegex, goRegex } from '../../match/regex.ts';
import { goQuote, goSprintf, goType, NO_VALUE, printValue, truthy } from './print.ts';

export class FuncError extends Error {}

export type TemplateFunc = (args: unknown[]) => unknown;

const isMap = (v: unknown): v is Record<string, unknown> =>
  v !== null &&
  typeof v === 'object' &&
  !Array.isArray(v) &&
  !(v instanceof Date) &&
  !(v instanceof Uint8Array);

/** sprig's strval: strings as they are, everything else as fmt %v prints it. */
export const strval = (v: unknown): string => (typeof v === 'string' ? v : printValue(v));

function str(fn: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return printValue(v);
  if (v === null || v === undefined || v === NO_VALUE)
    throw new FuncError(`${fn}: invalid value; expected string`);
  throw new FuncError(`${fn}: wrong type for value; expected string; got ${goType(v)}`);
}

function int(fn: string, v: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) return Number(v);
  throw new FuncError(`${fn}: expected an integer, got ${goType(v)} ${printValue(v)}`);
}

/** sprig's cast-based conversions: never fail, 0 when the value is not a number. */
const toInt = (v: unknown): number => {
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : 0;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') {
    const t = v.trim();
    return /^[+-]?\d+$/.test(t) ? Number(t) : 0;
  }
  return 0;
};
const toFloat = (v: unknown): number => {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') {
    const n = Number(v.trim());
    return v.trim() !== '' && Number.isFinite(n) ? n : 0;
  }
  return 0;
};

function list(fn: string, v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (v === null || v === undefined || v === NO_VALUE) return [];
  throw new FuncError(`${fn}: expected a list, got ${goType(v)}`);
}

/** Charges a sort of `n` items (n log n) to the evaluation's budget. */
function chargeSort(fn: string, n: number): void {
  if (n > 1) activeMeter()?.charge(Math.ceil(n * Math.log2(n)), fn);
}

/** A key equal for values goEqual calls equal (type and value; JSON text for maps and lists). */
function equalityKey(v: unknown): string {
  const x = v === NO_VALUE || v === undefined ? null : v;
  if (x !== null && typeof x === 'object') return `o${JSON.stringify(x)}`;
  return `${typeof x}:${String(x)}`;
}

/** sprig's uniq (first of each equal run kept, order kept) in linear time. */
function uniq(l: readonly unknown[]): unknown[] {
  const seen = new Set<string>();
  const out: unknown[] = [];
  for (const e of l) {
    const k = equalityKey(e);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(e);
  }
  return out;
}

/** sprig's empty: the zero value of its type. */
export const empty = (v: unknown): boolean => !truthy(v);

function goEqual(a: unknown, b: unknown): boolean {
  if (a === NO_VALUE) a = null;
  if (b === NO_VALUE) b = null;
  if (a === b) return true;
  if (typeof a !== typeof b) return false;
  if (a && b && typeof a === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return false;
}

function compare(fn: string, a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new FuncError(`${fn}: incompatible types for comparison (${goType(a)} and ${goType(b)})`);
}

/** Go's json.Marshal escapes <, > and & for HTML safety; toRawJson does not. */
const htmlSafe = (s: string) =>
  s.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
const toJsonValue = (v: unknown): unknown => (v === NO_VALUE ? null : v);

function b64dec(s: string): string {
  const t = s.replace(/[\r\n]/g, '');
  const bad = t.search(/[^A-Za-z0-9+/=]/);
  if (bad >= 0 || t.length % 4 !== 0 || /=[^=]/.test(t)) {
    const at = bad >= 0 ? bad : t.length - (t.length % 4 || 4);
    return `illegal base64 data at input byte ${Math.max(0, at)}`;
  }
  return Buffer.from(t, 'base64').toString('utf8');
}

/** strings.Title: upper-cases the first letter of each word. */
const title = (s: string) =>
  s.replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, sep: string, l: string) => sep + l.toUpperCase());

/** A Go (RE2) regular expression (re2js: linear time, charged to the evaluation's budget). */
const regex = (fn: string, pattern: string): GoRegex => {
  try {
    return goRegex(pattern);
  } catch (e) {
    throw new FuncError(`${fn}: ${(e as Error).message}`);
  }
};

/** Go's Regexp.ReplaceAllString (expand) or ReplaceAllLiteralString over `s`. */
function regexReplace(re: GoRegex, s: string, repl: string, literal: boolean): string {
  let out = '';
  let at = 0;
  for (const m of re.matches(s)) {
    out += s.slice(at, m.start) + (literal ? repl : expandGo(repl, m));
    at = m.end;
    if (out.length > MAX_REPEAT) throw new FuncError(`result longer than ${MAX_REPEAT} characters`);
  }
  return out + s.slice(at);
}

/** Go's Regexp.Split(s, n). */
function regexSplitGo(re: GoRegex, s: string, n: number): string[] {
  if (n === 0) return [];
  if (re.source.length > 0 && s.length === 0) return [''];
  const parts: string[] = [];
  let beg = 0;
  let end = 0;
  for (const m of re.matches(s, n)) {
    if (n > 0 && parts.length === n - 1) break;
    end = m.start;
    if (m.end !== 0) parts.push(s.slice(beg, end));
    beg = m.end;
  }
  if (end !== s.length) parts.push(s.slice(beg));
  return parts;
}

const MAX_REPEAT = 1 << 20;

/** sprig's untilStep: start, start+step, ... before stop; empty when step goes the wrong way. */
function untilStep(start: number, stop: number, step: number): number[] {
  if (step === 0 || stop < start !== step < 0) return [];
  if (Math.abs((stop - start) / step) > MAX_REPEAT)
    throw new FuncError(`untilStep: more than ${MAX_REPEAT} numbers`);
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

/** The pad width of indent/nindent, refused when the indented text would exceed MAX_REPEAT. */
function indentWidth(name: string, n: unknown, text: string): number {
  const w = int(name, n);
  if (w < 0) throw new FuncError(`${name}: negative width`);
  const lines = text.split('\n').length;
  if (text.length + w * lines > MAX_REPEAT)
    throw new FuncError(`${name}: result longer than ${MAX_REPEAT} characters`);
  return w;
}

/** Go's Regexp.Expand: $1, ${1}, $name, ${name} and $$ in a replacement. */
function expandGo(tpl: string, m: GoMatch): string {
  return tpl.replace(/\$(\$|\{(\w+)\}|(\w+))/g, (_all, _x, braced?: string, bare?: string) => {
    const name = braced ?? bare;
    if (name === undefined) return '$';
    if (/^\d+$/.test(name)) return m.groups[Number(name)] ?? '';
    return m.named[name] ?? '';
  });
}

const GO_LAYOUT: Array<[string, (d: Date, utc: boolean) => string]> = [
  ['2006', (d) => String(d.getUTCFullYear())],
  ['January', (d) => d.toLocaleString('en-US', { month: 'long', timeZone: 'UTC' })],
  ['Jan', (d) => d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' })],
  ['Monday', (d) => d.toLocaleString('en-US', { weekday: 'long', timeZone: 'UTC' })],
  ['Mon', (d) => d.toLocaleString('en-US', { weekday: 'short', timeZone: 'UTC' })],
  ['MST', () => 'UTC'],
  ['Z07:00', () => 'Z'],
  ['-07:00', () => '+00:00'],
  ['-0700', () => '+0000'],
  ['01', (d) => String(d.getUTCMonth() + 1).padStart(2, '0')],
  ['02', (d) => String(d.getUTCDate()).padStart(2, '0')],
  ['06', (d) => String(d.getUTCFullYear() % 100).padStart(2, '0')],
  ['15', (d) => String(d.getUTCHours()).padStart(2, '0')],
  ['03', (d) => String(d.getUTCHours() % 12 || 12).padStart(2, '0')],
  ['04', (d) => String(d.getUTCMinutes()).padStart(2, '0')],
  ['05', (d) => String(d.getUTCSeconds()).padStart(2, '0')],
  ['.000', (d) => `.${String(d.getUTCMilliseconds()).padStart(3, '0')}`],
  ['PM', (d) => (d.getUTCHours() >= 12 ? 'PM' : 'AM')],
];

function goDate(layout: string, d: Date): string {
  let out = '';
  for (let i = 0; i < layout.length; ) {
    const hit = GO_LAYOUT.find(([tok]) => layout.startsWith(tok, i));
    if (hit) {
      out += hit[1](d, true);
      i += hit[0].length;
    } else out += layout[i++];
  }
  return out;
}

const toDateValue = (fn: string, v: unknown): Date => {
  if (v instanceof Date) return v;
  if (typeof v === 'number') return new Date(v * 1000);
  if (typeof v === 'string' && !Number.isNaN(Date.parse(v))) return new Date(v);
  throw new FuncError(`${fn}: expected a time, got ${goType(v)}`);
};

export const FUNCS: Record<string, TemplateFunc> = {
  // ----------------------------------------------------------------------- Go built-ins
  not: ([a]) => !truthy(a),
  len: ([a]) => {
    if (typeof a === 'string') return Buffer.byteLength(a);
    if (Array.isArray(a)) return a.length;
    if (isMap(a)) return Object.keys(a).length;
    throw new FuncError(`len: len of type ${goType(a)}`);
  },
  index: ([a, ...keys]) => {
    let cur = a;
    for (const k of keys) {
      if (Array.isArray(cur)) {
        const i = int('index', k);
        if (i < 0 || i >= cur.length) throw new FuncError(`index: index out of range: ${i}`);
        cur = cur[i];
      } else if (isMap(cur)) {
        cur = Object.hasOwn(cur, String(k)) ? cur[String(k)] : NO_VALUE;
      } else if (cur === null || cur === NO_VALUE) {
        throw new FuncError('index: index of untyped nil');
      } else throw new FuncError(`index: can't index item of type ${goType(cur)}`);
    }
    return cur;
  },
  slice: ([a, ...idx]) => {
    const [i = 0, j] = idx.map((x) => int('slice', x));
    if (typeof a === 'string') return a.slice(i, j);
    if (Array.isArray(a)) return a.slice(i, j);
    throw new FuncError(`slice: can't slice item of type ${goType(a)}`);
  },
  print: (args) =>
    args
      .map((a, i) => {
        const prevStr = i > 0 && typeof args[i - 1] === 'string';
        return (i > 0 && typeof a !== 'string' && !prevStr ? ' ' : '') + printValue(a);
      })
      .join(''),
  println: (args) => `${args.map(printValue).join(' ')}\n`,
  printf: ([f, ...args]) => goSprintf(str('printf', f), args),
  eq: ([a, ...bs]) => {
    if (!bs.length) throw new FuncError('eq: missing argument for comparison');
    return bs.some((b) => goEqual(a, b));
  },
  ne: ([a, b]) => !goEqual(a, b),
  lt: ([a, b]) => compare('lt', a, b) < 0,
  le: ([a, b]) => compare('le', a, b) <= 0,
  gt: ([a, b]) => compare('gt', a, b) > 0,
  ge: ([a, b]) => compare('ge', a, b) >= 0,
  html: (args) =>
    args
      .map(strval)
      .join('')
      .replace(
        /[&<>"'\0]/g,
        (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;', '\0': '\uFFFD' })[c]!,
      ),
  js: (args) => JSON.stringify(args.map(strval).join('')).slice(1, -1).replace(/'/g, "\\'"),
  urlquery: (args) => encodeURIComponent(args.map(strval).join('')).replace(/%20/g, '+'),

  // ----------------------------------------------------------------------- sprig: strings
  upper: ([s]) => str('upper', s).toUpperCase(),
  lower: ([s]) => str('lower', s).toLowerCase(),
  title: ([s]) => title(str('title', s)),
  untitle: ([s]) =>
    str('untitle', s).replace(/(^|\s)(\S)/g, (_m, a: string, b: string) => a + b.toLowerCase()),
  trim: ([s]) => str('trim', s).trim(),
  trimAll: ([cut, s]) => {
    const set = new Set(str('trimAll', cut));
    const chars = [...str('trimAll', s)];
    let i = 0;
    let j = chars.length;
    while (i < j && set.has(chars[i]!)) i++;
    while (j > i && set.has(chars[j - 1]!)) j--;
    return chars.slice(i, j).join('');
  },
  trimPrefix: ([p, s]) => {
    const t = str('trimPrefix', s);
    const pre = str('trimPrefix', p);
    return t.startsWith(pre) ? t.slice(pre.length) : t;
  },
  trimSuffix: ([p, s]) => {
    const t = str('trimSuffix', s);
    const suf = str('trimSuffix', p);
    return suf && t.endsWith(suf) ? t.slice(0, -suf.length) : t;
  },
  nospace: ([s]) => str('nospace', s).replace(/\s+/g, ''),
  trunc: ([n, s]) => {
    const c = int('trunc', n);
    const t = str('trunc', s);
    if (c < 0) return -c < t.length ? t.slice(t.length + c) : t;
    return c < t.length ? t.slice(0, c) : t;
  },
  substr: ([a, b, s]) => {
    const start = int('substr', a);
    const end = int('substr', b);
    const t = str('substr', s);
    if (start < 0) return t.slice(0, end);
    if (end < 0 || end > t.length) return t.slice(start);
    return t.slice(start, end);
  },
  repeat: ([n, s]) => {
    const c = int('repeat', n);
    const t = str('repeat', s);
    if (c < 0) throw new FuncError('repeat: negative count');
    if (c * t.length > MAX_REPEAT) throw new FuncError(`repeat: result longer than ${MAX_REPEAT} characters`);
    return t.repeat(c);
  },
  replace: ([o, n, s]) => {
    const [from, to, text] = [str('replace', o), str('replace', n), str('replace', s)];
    const hits = from === '' ? text.length + 1 : text.split(from).length - 1;
    if (text.length + hits * (to.length - from.length) > MAX_REPEAT)
      throw new FuncError(`replace: result longer than ${MAX_REPEAT} characters`);
    return text.replaceAll(from, to);
  },
  contains: ([sub, s]) => str('contains', s).includes(str('contains', sub)),
  hasPrefix: ([p, s]) => str('hasPrefix', s).startsWith(str('hasPrefix', p)),
  hasSuffix: ([p, s]) => str('hasSuffix', s).endsWith(str('hasSuffix', p)),
  quote: (args) =>
    args
      .filter((a) => a !== null && a !== NO_VALUE)
      .map((a) => goQuote(strval(a)))
      .join(' '),
  squote: (args) =>
    args
      .filter((a) => a !== null && a !== NO_VALUE)
      .map((a) => `'${strval(a)}'`)
      .join(' '),
  cat: (args) =>
    args
      .filter((a) => a !== null && a !== NO_VALUE)
      .map(strval)
      .join(' '),
  indent: ([n, s]) => {
    const t = str('indent', s);
    const pad = ' '.repeat(indentWidth('indent', n, t));
    return pad + t.replaceAll('\n', `\n${pad}`);
  },
  nindent: ([n, s]) => {
    const t = str('nindent', s);
    const pad = ' '.repeat(indentWidth('nindent', n, t));
    return `\n${pad}${t.replaceAll('\n', `\n${pad}`)}`;
  },
  split: ([sep, s]) =>
    Object.fromEntries(
      str('split', s)
        .split(str('split', sep))
        .map((p, i) => [`_${i}`, p]),
    ),
  splitList: ([sep, s]) => str('splitList', s).split(str('splitList', sep)),
  join: ([sep, v]) => {
    const items = Array.isArray(v) ? v : typeof v === 'string' ? [v] : list('join', v);
    return items
      .filter((x) => x !== null)
      .map(strval)
      .join(str('join', sep));
  },
  sortAlpha: ([v]) => {
    const l = list('sortAlpha', v);
    chargeSort('sortAlpha', l.length);
    return l.map(strval).sort();
  },
  snakecase: ([s]) =>
    str('snakecase', s)
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .replace(/[\s-]+/g, '_')
      .toLowerCase(),
  kebabcase: ([s]) =>
    str('kebabcase', s)
      .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
      .replace(/[\s_]+/g, '-')
      .toLowerCase(),
  camelcase: ([s]) =>
    str('camelcase', s)
      .split(/[_\s-]+/)
      .map((w) => (w ? w[0]!.toUpperCase() + w.slice(1) : w))
      .join(''),

  // ----------------------------------------------------------------------- sprig: encoding
  b64enc: ([s]) => Buffer.from(str('b64enc', s), 'utf8').toString('base64'),
  b64dec: ([s]) => b64dec(str('b64dec', s)),
  sha1sum: ([s]) => createHash('sha1').update(str('sha1sum', s)).digest('hex'),
  sha256sum: ([s]) => createHash('sha256').update(str('sha256sum', s)).digest('hex'),
  uuidv4: () => randomUUID(),
  toJson: ([v]) => htmlSafe(JSON.stringify(toJsonValue(v)) ?? 'null'),
  toRawJson: ([v]) => JSON.stringify(toJsonValue(v)) ?? 'null',
  toPrettyJson: ([v]) => htmlSafe(JSON.stringify(toJsonValue(v), null, 2) ?? 'null'),
  fromJson: ([s]) => {
    try {
      return JSON.parse(str('fromJson', s)) as unknown;
    } catch {
      return {};
    }
  },

  // ----------------------------------------------------------------------- sprig: defaults, logic
  default: ([d, v]) => (empty(v) ? d : v),
  empty: ([v]) => empty(v),
  coalesce: (args) => args.find((a) => !empty(a)) ?? null,
  ternary: ([a, b, c]) => (truthy(c) ? a : b),
  fail: ([m]) => {
    throw new FuncError(str('fail', m));
  },
  typeOf: ([v]) => goType(v),
  kindOf: ([v]) =>
    v === null || v === NO_VALUE
      ? 'invalid'
      : typeof v === 'number'
        ? 'float64'
        : typeof v === 'string'
          ? 'string'
          : typeof v === 'boolean'
            ? 'bool'
            : Array.isArray(v)
              ? 'slice'
              : 'map',

  // ----------------------------------------------------------------------- sprig: conversion, math
  toString: (args: unknown[]) => strval(args[0]),
  toStrings: ([v]) => list('toStrings', v).map(strval),
  atoi: ([s]) => toInt(typeof s === 'string' ? s : ''),
  int: ([v]) => toInt(v),
  int64: ([v]) => toInt(v),
  float64: ([v]) => toFloat(v),
  add: (args) => args.reduce<number>((s, a) => s + toInt(a), 0),
  add1: ([a]) => toInt(a) + 1,
  sub: ([a, b]) => toInt(a) - toInt(b),
  mul: (args) => args.reduce<number>((s, a) => s * toInt(a), 1),
  div: ([a, b]) => {
    const d = toInt(b);
    if (d === 0) throw new FuncError('div: integer divide by zero');
    return Math.trunc(toInt(a) / d);
  },
  mod: ([a, b]) => {
    const d = toInt(b);
    if (d === 0) throw new FuncError('mod: integer divide by zero');
    return toInt(a) % d;
  },
  max: (args) => Math.max(...args.map(toInt)),
  min: (args) => Math.min(...args.map(toInt)),
  addf: (args) => args.reduce<number>((s, a) => s + toFloat(a), 0),
  subf: ([a, ...r]) => r.reduce<number>((s, x) => s - toFloat(x), toFloat(a)),
  mulf: (args) => args.reduce<number>((s, a) => s * toFloat(a), 1),
  divf: ([a, ...r]) => r.reduce<number>((s, x) => s / toFloat(x), toFloat(a)),
  floor: ([a]) => Math.floor(toFloat(a)),
  ceil: ([a]) => Math.ceil(toFloat(a)),
  round: ([a, p]) => {
    const f = 10 ** toInt(p ?? 0);
    return Math.round(toFloat(a) * f) / f;
  },

  // ----------------------------------------------------------------------- sprig: integer ranges
  until: ([n]) => {
    const c = int('until', n);
    return untilStep(0, c, c < 0 ? -1 : 1);
  },
  untilStep: ([a, b, c]) => untilStep(int('untilStep', a), int('untilStep', b), int('untilStep', c)),

  // ----------------------------------------------------------------------- sprig: lists, dicts
  list: (args) => [...args],
  first: ([v]) => list('first', v)[0] ?? null,
  last: ([v]) => list('last', v).at(-1) ?? null,
  rest: ([v]) => list('rest', v).slice(1),
  initial: ([v]) => list('initial', v).slice(0, -1),
  has: ([x, v]) => list('has', v).some((e) => goEqual(e, x)),
  compact: ([v]) => list('compact', v).filter((e) => !empty(e)),
  uniq: ([v]) => uniq(list('uniq', v)),
  dict: (args) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < args.length; i += 2) out[strval(args[i])] = args[i + 1] ?? '';
    return out;
  },
  get: ([m, k]) => (isMap(m) && Object.hasOwn(m, str('get', k)) ? m[str('get', k)] : ''),
  hasKey: ([m, k]) => isMap(m) && Object.hasOwn(m, str('hasKey', k)),
  keys: (args) => {
    const ks = args.flatMap((m) => (isMap(m) ? Object.keys(m) : []));
    chargeSort('keys', ks.length);
    return ks.sort();
  },
  values: ([m]) => (isMap(m) ? Object.values(m) : []),

  // ----------------------------------------------------------------------- sprig: regex
  regexMatch: ([r, s]) => regex('regexMatch', str('regexMatch', r)).test(str('regexMatch', s)),
  regexFind: ([r, s]) =>
    regex('regexFind', str('regexFind', r)).matches(str('regexFind', s), 1)[0]?.groups[0] ?? '',
  regexFindAll: ([r, s, n]) =>
    regex('regexFindAll', str('regexFindAll', r))
      .matches(str('regexFindAll', s), toInt(n))
      .map((m) => m.groups[0] ?? ''),
  regexReplaceAll: ([r, s, repl]) =>
    regexReplace(
      regex('regexReplaceAll', str('regexReplaceAll', r)),
      str('regexReplaceAll', s),
      str('regexReplaceAll', repl),
      false,
    ),
  regexReplaceAllLiteral: ([r, s, repl]) =>
    regexReplace(
      regex('regexReplaceAllLiteral', str('regexReplaceAllLiteral', r)),
      str('regexReplaceAllLiteral', s),
      str('regexReplaceAllLiteral', repl),
      true,
    ),
  regexSplit: ([r, s, n]) =>
    regexSplitGo(regex('regexSplit', str('regexSplit', r)), str('regexSplit', s), toInt(n)),

  // ----------------------------------------------------------------------- sprig: time
  now: () => new Date(),
  unixEpoch: ([t]) => String(Math.floor(toDateValue('unixEpoch', t).getTime() / 1000)),
  date: ([layout, t]) => goDate(str('date', layout), toDateValue('date', t)),
  toDate: ([layout, s]) => {
    void layout;
    return toDateValue('toDate', s);
  },
};

export const isFunc = (name: string): boolean =>
  Object.hasOwn(FUNCS, name) || name === 'and' || name === 'or';
