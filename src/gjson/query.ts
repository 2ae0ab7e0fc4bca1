// The comparison inside a gjson query "#(path op value)", as gjson defines it: strings compare
// as strings (and "%" / "!%" as wildcard patterns), numbers as numbers, true/false only with the
// operators that make sense for them, and null, objects and arrays only by existence (no
// operator). A value written "~true", "~false", "~null" or "~*" first turns the field into a
// boolean (truthy, falsy, null, exists) and compares that.
import { compileGlob, type Glob } from './glob.ts';
import type { Query } from './syntax.ts';
import { MISSING } from './value.ts';

/** The field value found by the query path, or MISSING. */
export type QueryTest = (value: unknown) => boolean;

/** Go's strconv.ParseFloat for what JSON and paths carry; 0 when it is not a number (as gjson). */
function toNumber(s: string): number {
  const t = s.trim();
  if (/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number(t);
  if (/^[+-]?(inf|infinity)$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(t)) return Number.NaN;
  return 0;
}

/** Go's strconv.ParseBool on lower-cased text; undefined when it is not a boolean. */
function goBool(s: string): boolean | undefined {
  const t = s.toLowerCase();
  if (t === '1' || t === 't' || t === 'true') return true;
  if (t === '0' || t === 'f' || t === 'false') return false;
  return undefined;
}

function truthy(v: unknown): boolean {
  if (v === true) return true;
  if (typeof v === 'string') return goBool(v) === true;
  if (typeof v === 'number') return v !== 0;
  return false;
}

function falsy(v: unknown): boolean {
  if (v === null || v === false) return true;
  if (typeof v === 'string') return goBool(v) === false;
  if (typeof v === 'number') return v === 0;
  return false;
}

function compareStrings(op: string, a: string, b: string, glob: Glob | undefined): boolean {
  switch (op) {
    case '=':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '%':
      return glob!.test(a);
    case '!%':
      return !glob!.test(a);
    default:
      return false;
  }
}

function compareNumbers(op: string, a: number, b: number): boolean {
  switch (op) {
    case '=':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    default:
      return false;
  }
}

function compareBool(op: string, v: boolean, rhs: string): boolean {
  if (v) {
    if (op === '=') return rhs === 'true';
    if (op === '!=') return rhs !== 'true';
    if (op === '>') return rhs === 'false';
    return op === '>=';
  }
  if (op === '=') return rhs === 'false';
  if (op === '!=') return rhs !== 'false';
  if (op === '<') return rhs === 'true';
  return op === '<=';
}

const TILDE: Record<string, (v: unknown) => boolean> = {
  '*': (v) => v !== MISSING,
  null: (v) => v === MISSING || v === null,
  true: (v) => v !== MISSING && truthy(v),
  false: (v) => v === MISSING || falsy(v),
};

/** Compiles the comparison of a query (the path is evaluated by the caller). */
export function compileQueryTest(q: Query): QueryTest {
  const { op } = q;
  let rhs = q.value;
  let tilde: ((v: unknown) => boolean) | undefined;
  if (rhs.startsWith('~')) {
    const fn = TILDE[rhs.slice(1)];
    if (!fn) return () => false;
    tilde = fn;
    rhs = 'true';
  }
  const glob = op === '%' || op === '!%' ? compileGlob(rhs) : undefined;
  const num = toNumber(rhs);
  return (found) => {
    const v = tilde ? tilde(found) : found;
    if (v === MISSING) return false;
    if (op === '') return true;
    switch (typeof v) {
      case 'string':
        return compareStrings(op, v, rhs, glob);
      case 'number':
        return compareNumbers(op, v, num);
      case 'boolean':
        return compareBool(op, v, rhs);
      default:
        return false;
    }
  };
}
