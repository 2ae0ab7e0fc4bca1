// GJSON path syntax (github.com/tidwall/gjson, the path language upstream Argo Events uses for
// data filters and parameter keys), parsed once into components. The grammar follows gjson's
// SYNTAX.md: components separated by "." (or "|", which applies the rest to the result so far),
// "\" escapes, "*" / "?" wildcards in keys, "#" (array length, or every element with "#.rest"),
// queries "#(path op value)" (first match) and "#(...)#" (all matches, also the legacy "#[...]"),
// modifiers "@name[:arg]", multipaths "[a,b]" / "{a,name:b}" and literals "!true", "!{...}".
// Input gjson would read in a way nobody means (an unbalanced query, text after a query or a
// modifier argument, an empty key, a JSON-lines path) is refused with a PathError instead.

/** A path that cannot be parsed, with a message naming what is wrong. */
export class PathError extends Error {
  readonly code = 'InvalidPath';
}

/** Built-in gjson modifiers (gjson v1.18). */
export const MODIFIERS = [
  'this',
  'reverse',
  'flatten',
  'join',
  'keys',
  'values',
  'tostr',
  'fromstr',
  'group',
  'dig',
  'valid',
  'ugly',
  'pretty',
] as const;
export type ModifierName = (typeof MODIFIERS)[number];
const MODIFIER_SET: ReadonlySet<string> = new Set(MODIFIERS);

/** A query inside "#(...)": `path op value`, or `path` alone (the path must exist). */
export interface Query {
  path: Path;
  /** "", "=", "!=", "<", "<=", ">", ">=", "%" (glob match) or "!%" (glob mismatch). */
  op: string;
  /** The right-hand side, unquoted ("~true" etc. keep their "~"). */
  value: string;
}

/** How a component is joined to the next one. */
export type Separator = 'end' | 'dot' | 'pipe';

export type Component =
  | {
      kind: 'key';
      /** The key with escapes removed (also the text an array index is read from). */
      key: string;
      /** A glob over keys when the key holds an unescaped "*" or "?". */
      wild: boolean;
      /** The raw text had an escape, so it can never be an array index. */
      escaped: boolean;
      /** Array index (digits only), or -1. */
      index: number;
      /** gjson's "array character": a "#" anywhere in the raw key. */
      arrch: boolean;
      sep: Separator;
      /** "." followed by a modifier, multipath or literal acts as "|" on objects and indexes. */
      dotPipe: boolean;
    }
  | { kind: 'query'; query: Query; all: boolean; text: string; sep: Separator }
  | { kind: 'modifier'; name: ModifierName; arg: string; text: string; sep: Separator }
  | { kind: 'literal'; value: unknown; text: string; sep: Separator }
  | { kind: 'multi'; object: boolean; subs: SubPath[]; text: string; sep: Separator };

export interface SubPath {
  /** The key a `{...}` multipath gives the value; undefined: taken from the path. */
  name: string | undefined;
  path: Path;
}

/** A parsed path: the components in order. */
export interface Path {
  readonly text: string;
  readonly components: readonly Component[];
}

const QUOTE = '"';

/** Index just past the JSON string starting at `i` (a '"'), or -1 if it never ends. */
function skipString(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (s[j] === QUOTE) return j + 1;
  }
  return -1;
}

/**
 * Index just past the bracket group opening at `i` (closers of any kind match, as in gjson), or
 * -1 when it is not closed. Queries count only parentheses and square brackets.
 */
export function skipGroup(s: string, i: number, braces = true): number {
  let depth = 0;
  for (let j = i; j < s.length; j++) {
    const c = s[j]!;
    if (c === '\\') j++;
    else if (c === QUOTE) {
      const end = skipString(s, j);
      if (end < 0) return -1;
      j = end - 1;
    } else if (c === '(' || c === '[' || (braces && c === '{')) depth++;
    else if (c === ')' || c === ']' || (braces && c === '}')) {
      depth--;
      if (depth === 0) return j + 1;
    }
  }
  return -1;
}

/** A known modifier name right after "@" at `i`, if there is one. */
function modifierAt(s: string, i: number): ModifierName | undefined {
  if (s[i] !== '@') return undefined;
  let j = i + 1;
  while (j < s.length && s[j] !== '.' && s[j] !== '|' && s[j] !== ':') j++;
  const name = s.slice(i + 1, j);
  return MODIFIER_SET.has(name) ? (name as ModifierName) : undefined;
}

/** gjson's isDotPiperChar: what follows a "." turns it into a "|". */
function startsFresh(s: string, i: number): boolean {
  const c = s[i];
  return c === '[' || c === '{' || modifierAt(s, i) !== undefined;
}

/** Reads the separator at `i` (after a component); returns it and the next index. */
function separatorAt(s: string, i: number, what: string): [Separator, number] {
  if (i >= s.length) return ['end', i];
  if (s[i] === '|' || s[i] === '.') {
    if (i === s.length - 1) throw new PathError(`path ends with "${s[i]}"`);
    return [s[i] === '|' ? 'pipe' : 'dot', i + 1];
  }
  throw new PathError(`unexpected ${JSON.stringify(s.slice(i))} after ${what}`);
}

interface Parsed {
  comp: Component;
  next: number;
}

/** A key component: up to the next unescaped "." or "|". */
function readKey(s: string, start: number): Parsed {
  let key = '';
  let wild = false;
  let escaped = false;
  let arrch = false;
  let i = start;
  for (; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      escaped = true;
      i++;
      if (i < s.length) key += s[i];
      continue;
    }
    if (c === '.' || c === '|') break;
    if (c === '*' || c === '?') wild = true;
    if (c === '#') arrch = true;
    key += c;
  }
  if (i === start) throw new PathError(`empty key at position ${start + 1}`);
  const [sep, next] = separatorAt(s, i, `key ${JSON.stringify(key)}`);
  const index = !escaped && /^[0-9]+$/.test(key) ? Number(key) : -1;
  const dotPipe = sep === 'dot' && startsFresh(s, next);
  return { comp: { kind: 'key', key, wild, escaped, index, arrch, sep, dotPipe }, next };
}

/** Unquotes a query value the way gjson does ("..." → its text, escapes decoded). */
function unquote(v: string): string {
  if (v.length >= 2 && v[0] === QUOTE && v[v.length - 1] === QUOTE) {
    const inner = v.slice(1, -1);
    if (!inner.includes('\\')) return inner;
    try {
      return JSON.parse(v) as string;
    } catch {
      return inner.replace(/\\(.)/g, '$1');
    }
  }
  return v;
}

const OPS = ['!=', '!%', '<=', '>=', '==', '<', '>', '=', '%'];

/** A query "#(...)" or "#[...]" starting at `start` (the "#"), with an optional trailing "#". */
function readQuery(s: string, start: number): Parsed {
  const end = skipGroup(s, start + 1, false);
  if (end < 0) throw new PathError(`query at position ${start + 1} is not closed`);
  const body = s.slice(start + 2, end - 1);
  // The operator starts at the first of ! = < > % outside nested groups and strings.
  let opAt = -1;
  for (let i = 0; i < body.length && opAt < 0; i++) {
    const c = body[i]!;
    if (c === '\\') i++;
    else if (c === QUOTE) i = Math.max(skipString(body, i) - 1, i);
    else if (c === '(' || c === '[') i = Math.max(skipGroup(body, i, false) - 1, i);
    else if ('!=<>%'.includes(c)) opAt = i;
  }
  let query: Query;
  if (opAt < 0) query = { path: parseSub(body.trim()), op: '', value: '' };
  else {
    const rest = body.slice(opAt).trim();
    const op = OPS.find((o) => rest.startsWith(o));
    if (!op) throw new PathError(`query ${s.slice(start, end)} has no known operator (${OPS.join(' ')})`);
    query = {
      path: parseSub(body.slice(0, opAt).trim()),
      op: op === '==' ? '=' : op,
      value: unquote(rest.slice(op.length).trim()),
    };
  }
  let i = end;
  const all = s[i] === '#';
  if (all) i++;
  const [sep, next] = separatorAt(s, i, `query ${s.slice(start, i)}`);
  return { comp: { kind: 'query', query, all, text: s.slice(start, i), sep }, next };
}

/** A modifier "@name" or "@name:arg" at `start`. */
function readModifier(s: string, start: number, name: ModifierName): Parsed {
  let i = start + 1 + name.length;
  let arg = '';
  if (s[i] === ':' && i + 1 < s.length) {
    i++;
    const c = s[i]!;
    const json = c === '{' || c === '[' ? skipGroup(s, i) : c === QUOTE ? skipString(s, i) : -1;
    if (json > 0) {
      arg = s.slice(i, json);
      i = json;
    } else {
      // A plain argument runs to the next "|" (gjson does not stop it at ".").
      let j = i;
      while (j < s.length && s[j] !== '|') {
        const g = '{[("'.includes(s[j]!) ? (s[j] === QUOTE ? skipString(s, j) : skipGroup(s, j)) : -1;
        j = g > 0 ? g : j + 1;
      }
      arg = s.slice(i, j);
      i = j;
    }
  } else if (s[i] === ':') i++;
  const [sep, next] = separatorAt(s, i, `modifier @${name}`);
  return { comp: { kind: 'modifier', name, arg, text: s.slice(start, i), sep }, next };
}

const LITERAL_WORDS: Record<string, unknown> = {
  true: true,
  false: false,
  null: null,
  nan: Number.NaN,
  inf: Number.POSITIVE_INFINITY,
};

/** A literal "!value" at `start`, or undefined when the text is a plain key. */
function readLiteral(s: string, start: number): Parsed | undefined {
  const i = start + 1;
  const c = s[i];
  if (c === undefined) return undefined;
  let end: number;
  if (c === '{' || c === '[') end = skipGroup(s, i);
  else if (c === QUOTE) end = skipString(s, i);
  else if (/[-+0-9]/.test(c)) {
    end = i + 1;
    while (end < s.length && /[0-9.eE+-]/.test(s[end]!)) end++;
  } else {
    let j = i;
    while (j < s.length && s[j] !== '.' && s[j] !== '|') j++;
    const word = s.slice(i, j).toLowerCase();
    if (!Object.hasOwn(LITERAL_WORDS, word)) return undefined;
    const [sep, next] = separatorAt(s, j, `literal ${s.slice(start, j)}`);
    return { comp: { kind: 'literal', value: LITERAL_WORDS[word], text: s.slice(start, j), sep }, next };
  }
  if (end < 0) throw new PathError(`literal at position ${start + 1} is not closed`);
  const text = s.slice(start, end);
  let value: unknown;
  try {
    value = JSON.parse(s.slice(i, end));
  } catch {
    // gjson parses a number literal as far as it reads as one ("!5." is 5).
    value = c === QUOTE || c === '{' || c === '[' ? undefined : Number.parseFloat(s.slice(i, end));
    if (value === undefined || Number.isNaN(value)) throw new PathError(`literal ${text} is not valid JSON`);
  }
  if (c !== '{' && c !== '[' && end < s.length) {
    // gjson reads a string or number literal to the end of the path: "!\"s\".x" and "!\"s\"|x" are
    // "s"; a number with anything after it does not parse as one, and gjson gives 0 ("!5|x").
    if (c !== QUOTE) value = 0;
    return { comp: { kind: 'literal', value, text: s.slice(start), sep: 'end' }, next: s.length };
  }
  const [sep, next] = separatorAt(s, end, `literal ${text}`);
  return { comp: { kind: 'literal', value, text, sep }, next };
}

/** A multipath "[a,b]" or "{a,name:b}" at `start`. */
function readMulti(s: string, start: number): Parsed {
  const end = skipGroup(s, start);
  if (end < 0) throw new PathError(`multipath at position ${start + 1} is not closed`);
  const subs: SubPath[] = [];
  let from = start + 1;
  let colon = -1;
  let modifier = false;
  let depth = 1;
  const push = (to: number) => {
    const raw = colon < 0 ? s.slice(from, to) : s.slice(colon + 1, to);
    let name: string | undefined;
    if (colon >= 0) {
      const n = s.slice(from, colon);
      try {
        name = n.startsWith(QUOTE) ? (JSON.parse(n) as string) : n;
      } catch {
        name = n;
      }
    }
    if (raw === '') throw new PathError(`empty path in multipath ${s.slice(start, end)}`);
    subs.push({ name, path: parseSub(raw) });
    from = to + 1;
    colon = -1;
    modifier = false;
  };
  for (let i = start + 1; i < end; i++) {
    const c = s[i]!;
    if (c === '\\') i++;
    else if (c === QUOTE) i = skipString(s, i) - 1;
    else if (c === '@' && (s[i - 1] === '.' || s[i - 1] === '|')) modifier = true;
    else if (c === ':' && !modifier && colon < 0 && depth === 1) colon = i;
    else if (c === ',' && depth === 1) push(i);
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) {
      depth--;
      if (depth === 0) push(i);
    }
  }
  const [sep, next] = separatorAt(s, end, `multipath ${s.slice(start, end)}`);
  return {
    comp: { kind: 'multi', object: s[start] === '{', subs, text: s.slice(start, end), sep },
    next,
  };
}

/** Whether a component at `i` starts a fresh lookup (path start, after "|" or a special one). */
function readComponent(s: string, i: number, fresh: boolean): Parsed {
  const c = s[i];
  if (fresh && i + 1 < s.length) {
    const mod = modifierAt(s, i);
    if (mod) return readModifier(s, i, mod);
    if (c === '!') {
      const lit = readLiteral(s, i);
      if (lit) return lit;
    }
    if (c === '[' || c === '{') return readMulti(s, i);
  }
  if (c === '#' && (s[i + 1] === '(' || s[i + 1] === '[')) return readQuery(s, i);
  return readKey(s, i);
}

function parseSub(text: string): Path {
  if (text === '') return { text, components: [] };
  if (text.startsWith('..')) throw new PathError('JSON-lines paths (starting with "..") do not apply');
  const components: Component[] = [];
  let fresh = true;
  for (let i = 0; i < text.length; ) {
    const { comp, next } = readComponent(text, i, fresh);
    components.push(comp);
    i = next;
    // After "|", after a special component, or after "." that gjson reads as "|", the next
    // component starts a fresh lookup (so it may be a modifier, multipath or literal).
    fresh =
      comp.sep === 'pipe' ||
      comp.kind === 'modifier' ||
      comp.kind === 'multi' ||
      comp.kind === 'literal' ||
      (comp.kind === 'key' && comp.dotPipe) ||
      (comp.kind === 'key' && comp.arrch) ||
      comp.kind === 'query';
    if (comp.sep === 'end') break;
  }
  return { text, components };
}

/**
 * Parses a gjson path. Throws PathError for an empty path and for syntax gjson cannot read
 * sensibly. The result is immutable and can be evaluated any number of times.
 */
export function parsePath(text: string): Path {
  if (text === '') throw new PathError('path is empty');
  return parseSub(text);
}
