// Evaluates parsed gjson paths against parsed JSON, with gjson's semantics: on an object a key
// (or the first key a wildcard matches; with more path to go, the first match under which the
// rest exists), on an array an index, "#" (the length, or with more path the rest applied to
// every element, keeping those where it exists) or a query; "|" applies the rest to the result
// so far; modifiers, multipaths and literals where a lookup starts. Plain dotted paths, the
// common case on the per-event path, take a tight loop with no allocation.
import { compileGlob, type Glob } from './glob.ts';
import { type Modifier, makeModifier, setOwn } from './modifiers.ts';
import { compileQueryTest, type QueryTest } from './query.ts';
import { type Component, type Path, PathError, parsePath } from './syntax.ts';
import { isContainer, isObject, type JsonObject, type Lookup, MISSING } from './value.ts';

/** A path compiled once, evaluated per event. */
export interface CompiledPath {
  readonly path: string;
  /** The value at the path, or MISSING. */
  get(root: unknown): Lookup;
}

type KeyStep = Extract<Component, { kind: 'key' }> & {
  glob: Glob | undefined;
  /** On a "#" projection: the segments after "|" that gjson applies to each element (see below). */
  rest?: Segment[];
};
type Step =
  | KeyStep
  | { kind: 'query'; all: boolean; sep: Component['sep']; path: Path; test: QueryTest; rest?: Segment[] }
  | { kind: 'modifier'; sep: Component['sep']; apply: Modifier }
  | { kind: 'literal'; sep: Component['sep']; value: unknown; asKey: KeyStep }
  | { kind: 'multi'; sep: Component['sep']; object: boolean; subs: Array<{ name: string; path: Path }> };

/** Steps between two "|" separators. */
type Segment = Step[];

/**
 * Internal result: the last step of a segment was looked up in an object or array and found
 * nothing. Unlike MISSING (the lookup never got that far), gjson still applies what follows a
 * "|" to it, as to an empty value: "obj.missing|@keys" is [], "obj.a.b|@keys" with no "a" is
 * missing.
 */
const ABSENT: unique symbol = Symbol('absent');
const found = (r: Lookup): boolean => r !== MISSING && r !== ABSENT;

const compiled = new WeakMap<Path, Segment[]>();

/** The last component's text, or "_" when it is not a simple name (gjson's multipath keys). */
function defaultName(text: string): string {
  let last = text;
  for (let i = text.length - 1; i >= 0; i--) {
    if ((text[i] === '.' || text[i] === '|') && text[i - 1] !== '\\') {
      last = text.slice(i + 1);
      break;
    }
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: gjson refuses control characters in names
  return /[[\]{}()#|!\u0000-\u001f]/.test(last) ? '_' : last;
}

function keyStep(key: string, sep: Component['sep']): KeyStep {
  return {
    kind: 'key',
    key,
    wild: false,
    escaped: true,
    index: -1,
    arrch: false,
    sep,
    dotPipe: false,
    glob: undefined,
  };
}

function toStep(c: Component): Step {
  switch (c.kind) {
    case 'key':
      return { ...c, glob: c.wild ? compileGlob(c.key) : undefined };
    case 'query':
      segments(c.query.path);
      return { kind: 'query', all: c.all, sep: c.sep, path: c.query.path, test: compileQueryTest(c.query) };
    case 'modifier': {
      let argPath: Path | undefined;
      if (c.name === 'dig') {
        if (!c.arg) throw new PathError('@dig needs a path argument, e.g. "@dig:name"');
        argPath = parsePath(c.arg);
        segments(argPath);
      }
      return { kind: 'modifier', sep: c.sep, apply: makeModifier(c.name, c.arg, argPath, evaluate) };
    }
    case 'literal':
      return { kind: 'literal', sep: c.sep, value: c.value, asKey: keyStep(c.text, c.sep) };
    case 'multi':
      return {
        kind: 'multi',
        sep: c.sep,
        object: c.object,
        subs: c.subs.map((s) => {
          segments(s.path);
          return { name: s.name ?? defaultName(s.path.text), path: s.path };
        }),
      };
  }
}

/** The path's steps split at "|" (compiled once per parsed path). */
function segments(path: Path): Segment[] {
  let segs = compiled.get(path);
  if (!segs) {
    segs = [[]];
    for (const c of path.components) {
      segs.at(-1)!.push(toStep(c));
      if (c.sep === 'pipe') segs.push([]);
    }
    segs = attachRest(segs);
    compiled.set(path, segs);
  }
  return segs;
}

const projects = (s: Step): s is KeyStep | Extract<Step, { kind: 'query' }> =>
  (s.kind === 'key' && s.key === '#' && !s.escaped) || (s.kind === 'query' && s.all);

/**
 * gjson reads what follows an object multipath to the end of the path, "|" included, so inside a
 * projection it applies per element: friends.#.{"f":first}|f is ["Dale","Jane"] and
 * friends.#.{"f":first}|0 is [] (each element is an object). The segments after such a segment
 * move onto its last projection step.
 */
function attachRest(segs: Segment[]): Segment[] {
  for (let n = 0; n < segs.length - 1; n++) {
    const seg = segs[n]!;
    const multi = seg.findIndex((s) => s.kind === 'multi' && s.object);
    if (multi < 0) continue;
    const proj = seg.slice(0, multi).findLastIndex(projects);
    if (proj < 0) continue;
    (seg[proj] as KeyStep).rest = segs.slice(n + 1);
    return segs.slice(0, n + 1);
  }
  return segs;
}

/** Applies segments in turn, as the top level does. */
function runSegments(r: Lookup, segs: readonly Segment[]): Lookup {
  for (const seg of segs) {
    if (r === MISSING) return MISSING;
    r = chain(r === ABSENT ? MISSING : r, seg, 0, true);
  }
  return r;
}

/** Evaluates a parsed path against `value`. */
export function evaluate(value: unknown, path: Path): Lookup {
  if (!path.components.length) return isObject(value) && Object.hasOwn(value, '') ? value[''] : MISSING;
  const r = runSegments(value, segments(path));
  return r === ABSENT ? MISSING : r;
}

function multipath(v: unknown, step: Extract<Step, { kind: 'multi' }>): Lookup {
  if (step.object) {
    const out: JsonObject = {};
    for (const s of step.subs) {
      const r = evaluate(v, s.path);
      // A repeated name keeps the first value, which is what a lookup in gjson's text finds.
      if (r !== MISSING && !Object.hasOwn(out, s.name)) setOwn(out, s.name, r);
    }
    return out;
  }
  const out: unknown[] = [];
  for (const s of step.subs) {
    const r = evaluate(v, s.path);
    if (r !== MISSING) out.push(r);
  }
  return out;
}

/** Evaluates steps i.. of one segment; `fresh` when step i starts a lookup. */
function chain(v: Lookup, seg: Segment, i: number, fresh: boolean): Lookup {
  const step = seg[i]!;
  const last = i === seg.length - 1;
  if (fresh && (step.kind === 'modifier' || step.kind === 'literal' || step.kind === 'multi')) {
    const r =
      step.kind === 'modifier' ? step.apply(v) : step.kind === 'literal' ? step.value : multipath(v, step);
    return last ? r : chain(r, seg, i + 1, true);
  }
  if (v === MISSING || !isContainer(v)) return MISSING;
  if (step.kind === 'modifier' || step.kind === 'multi') return MISSING;
  const key = step.kind === 'literal' ? step.asKey : step;
  if (Array.isArray(v))
    return key.kind === 'query' ? query(v, key, seg, i, last) : index(v, key, seg, i, last);
  return key.kind === 'key' ? member(v as JsonObject, key, seg, i, last) : MISSING;
}

function member(o: JsonObject, step: KeyStep, seg: Segment, i: number, last: boolean): Lookup {
  if (!step.glob) {
    if (!Object.hasOwn(o, step.key)) return notFound(step, seg, i, last);
    const val = o[step.key];
    if (last) return val;
    if (step.dotPipe) return chain(val, seg, i + 1, true);
    return isContainer(val) ? chain(val, seg, i + 1, false) : MISSING;
  }
  let reached = false;
  for (const k of Object.keys(o)) {
    if (!step.glob.test(k)) continue;
    const val = o[k];
    if (last) return val;
    if (step.dotPipe) return chain(val, seg, i + 1, true);
    if (!isContainer(val)) continue;
    const r = chain(val, seg, i + 1, false);
    if (found(r)) return r;
    reached ||= r === ABSENT;
  }
  return reached ? ABSENT : notFound(step, seg, i, last);
}

/** No match for a key or index: the end of the segment was reached, or a "." acting as "|" applies the rest to nothing. */
function notFound(step: KeyStep, seg: Segment, i: number, last: boolean): Lookup {
  if (last) return ABSENT;
  return step.dotPipe ? chain(MISSING, seg, i + 1, true) : MISSING;
}

function index(a: unknown[], step: KeyStep, seg: Segment, i: number, last: boolean): Lookup {
  if (step.key === '#' && !step.escaped) {
    if (last) return a.length;
    const out: unknown[] = [];
    for (const el of a) {
      let r = chain(el, seg, i + 1, true);
      if (step.rest && found(r)) r = runSegments(r, step.rest);
      if (found(r)) out.push(r);
    }
    return out;
  }
  if (step.index < 0 || step.index >= a.length) return notFound(step, seg, i, last);
  const el = a[step.index];
  if (last) return el;
  if (step.dotPipe) return chain(el, seg, i + 1, true);
  return isContainer(el) ? chain(el, seg, i + 1, false) : MISSING;
}

function query(
  a: unknown[],
  step: Extract<Step, { kind: 'query' }>,
  seg: Segment,
  i: number,
  last: boolean,
): Lookup {
  const out: unknown[] | undefined = step.all ? [] : undefined;
  const bare = step.path.components.length === 0;
  for (const el of a) {
    let target: Lookup;
    if (isContainer(el)) target = evaluate(el, step.path);
    else if (bare) target = el;
    else continue;
    if (!step.test(target)) continue;
    let r = last ? el : chain(el, seg, i + 1, true);
    if (step.rest && found(r)) r = runSegments(r, step.rest);
    if (!out) return found(r) ? r : ABSENT;
    if (found(r)) out.push(r);
  }
  return out ?? (last ? ABSENT : MISSING);
}

/** A plain dotted path (keys and indexes only) as a tight loop. */
function simpleGetter(keys: readonly KeyStep[]): (root: unknown) => Lookup {
  const names = keys.map((k) => k.key);
  const idx = keys.map((k) => k.index);
  return (root) => {
    let cur: unknown = root;
    for (let i = 0; i < names.length; i++) {
      if (cur === null || typeof cur !== 'object') return MISSING;
      if (Array.isArray(cur)) {
        const n = idx[i]!;
        if (n < 0 || n >= cur.length) return MISSING;
        cur = cur[n];
      } else {
        const k = names[i]!;
        if (!Object.hasOwn(cur, k)) return MISSING;
        cur = (cur as JsonObject)[k];
      }
    }
    return cur;
  };
}

/**
 * Compiles a gjson path (see syntax.ts). Throws PathError when the path cannot be read.
 * Follows github.com/tidwall/gjson v1.18 (`Get`), evaluated on parsed JSON.
 */
export function compileGjson(text: string): CompiledPath {
  const path = parsePath(text);
  const segs = segments(path);
  const only = segs.length === 1 ? segs[0]! : [];
  const simple =
    only.length > 0 &&
    only.every((s) => s.kind === 'key' && !s.glob && !s.arrch && !s.dotPipe && s.sep !== 'pipe');
  if (simple) return { path: text, get: simpleGetter(only as KeyStep[]) };
  return { path: text, get: (root) => evaluate(root, path) };
}
