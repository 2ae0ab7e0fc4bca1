// gjson's built-in modifiers ("@reverse", "@flatten:{"deep":true}", ...) over JSON values.
// The values here are parsed JSON, not text, so the ones that only change whitespace
// (@ugly, @pretty) and @valid (a parsed value is always valid) return their input unchanged.
import type { ModifierName, Path } from './syntax.ts';
import { isContainer, isObject, type JsonObject, type Lookup, MISSING } from './value.ts';

/** Evaluates a parsed path against a value (supplied by the evaluator, for @dig). */
export type Evaluate = (value: unknown, path: Path) => Lookup;
export type Modifier = (value: Lookup) => Lookup;

/** Sets an own property (also for keys such as "__proto__"). */
export function setOwn(o: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A boolean option of a JSON modifier argument such as {"deep":true}. */
function option(arg: string, name: string): boolean {
  if (!arg) return false;
  try {
    const o: unknown = JSON.parse(arg);
    if (!isObject(o)) return false;
    const v = o[name];
    return v === true || v === 'true' || (typeof v === 'number' && v !== 0);
  } catch {
    return false;
  }
}

function reverse(v: Lookup): Lookup {
  if (Array.isArray(v)) return [...v].reverse();
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v).reverse()) setOwn(out, k, v[k]);
    return out;
  }
  return v;
}

function flatten(v: unknown[], deep: boolean): unknown[] {
  const out: unknown[] = [];
  for (const el of v) {
    if (Array.isArray(el)) out.push(...(deep ? flatten(el, true) : el));
    else out.push(el);
  }
  return out;
}

/** Merges an array of objects; with `keepFirst` an earlier key wins (gjson's "preserve"). */
function join(v: unknown[], keepFirst: boolean): JsonObject {
  const out: JsonObject = {};
  for (const el of v) {
    if (!isObject(el)) continue;
    for (const [k, val] of Object.entries(el)) {
      if (!keepFirst || !Object.hasOwn(out, k)) setOwn(out, k, val);
    }
  }
  return out;
}

/** Zips an object of arrays into an array of objects: {a:[1,2],b:[3,4]} → [{a:1,b:3},{a:2,b:4}]. */
function group(v: JsonObject): JsonObject[] {
  const out: JsonObject[] = [];
  for (const [k, arr] of Object.entries(v)) {
    if (!Array.isArray(arr)) continue;
    arr.forEach((el, i) => {
      out[i] ??= {};
      setOwn(out[i]!, k, el);
    });
  }
  return out;
}

/** Every value the path finds in `v` or anywhere below it, outermost first. */
function dig(v: unknown, path: Path, evaluate: Evaluate, out: unknown[]): unknown[] {
  const r = evaluate(v, path);
  if (r !== MISSING) out.push(r);
  if (isContainer(v)) for (const child of Object.values(v)) dig(child, path, evaluate, out);
  return out;
}

/** Parses `@fromstr` input: a string holding JSON → that JSON; anything else as gjson reads it. */
function fromString(v: Lookup): Lookup {
  if (typeof v !== 'string') return v === null ? MISSING : v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return MISSING;
  }
}

/**
 * Builds one modifier. `arg` is the text after "@name:" ("" when none); `argPath` is the parsed
 * argument of @dig. Follows gjson v1.18's modifiers of the same names.
 */
export function makeModifier(
  name: ModifierName,
  arg: string,
  argPath: Path | undefined,
  evaluate: Evaluate,
): Modifier {
  switch (name) {
    case 'this':
    case 'valid':
    case 'ugly':
    case 'pretty':
      return (v) => v;
    case 'reverse':
      return reverse;
    case 'flatten': {
      const deep = option(arg, 'deep');
      return (v) => (Array.isArray(v) ? flatten(v, deep) : v);
    }
    case 'join': {
      const keepFirst = option(arg, 'preserve');
      return (v) => (Array.isArray(v) ? join(v, keepFirst) : v);
    }
    case 'keys':
      return (v) =>
        v === MISSING ? [] : isObject(v) ? Object.keys(v) : Array.isArray(v) ? v.map(() => null) : [null];
    case 'values':
      return (v) => (v === MISSING ? [] : isObject(v) ? Object.values(v) : Array.isArray(v) ? v : [v]);
    case 'tostr':
      return (v) => (v === MISSING ? '' : JSON.stringify(v));
    case 'fromstr':
      return fromString;
    case 'group':
      return (v) => (isObject(v) ? group(v) : MISSING);
    case 'dig':
      return (v) => (argPath ? dig(v, argPath, evaluate, []) : []);
  }
}
