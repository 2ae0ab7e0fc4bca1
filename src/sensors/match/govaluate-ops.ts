// The operators of govaluate (github.com/Knetic/govaluate, the version upstream's Sensor links),
// with its precedence and its type rules, as operator functions for the jexl engine that parses
// sluice's `exprs`. Measured against govaluate itself (test/unit/sensors/govaluate.test.ts lists the
// expressions and govaluate's answers):
// - precedence, loosest first: ? : ?? (one level), ||, &&, comparators (== != < <= > >= =~ !~ in),
//   bitwise & | ^, shifts << >>, + -, * / %, **, prefixes - ! ~; all left-associative
//   (2 ** 3 ** 2 is 64, 10 - 4 - 3 is 3);
// - numbers are float64; ^ is XOR (not power), & | ^ ~ work on int64(x), << >> on uint64(x) with
//   Go's shift rules (a count of 64 or more gives 0);
// - + concatenates when either side is a string, otherwise both must be numbers; < <= > >= take
//   two numbers or two strings; && || ! ? take booleans; =~ !~ take strings; `in` takes a list
//   (`("a", "b")` or a list field): a single parenthesised value is not a list;
// - a type error is an evaluation error (the filter fails with the reason), as in govaluate.

export class ExprError extends Error {
  readonly code = 'InvalidExpression';
}

/** What a value is called in a type error. */
function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
}

function num(op: string, v: unknown): number {
  if (typeof v !== 'number')
    throw new ExprError(`${show(v)} cannot be used with "${op}": it is not a number`);
  return v;
}

function bool(op: string, v: unknown): boolean {
  if (typeof v !== 'boolean')
    throw new ExprError(`${show(v)} cannot be used with "${op}": it is not a boolean`);
  return v;
}

const INT64_MIN = -(2n ** 63n);

/** Go's int64(f) on amd64: truncation; NaN, infinities and out-of-range values give MinInt64. */
function int64(f: number): bigint {
  if (!Number.isFinite(f) || Math.abs(f) >= 2 ** 63) return INT64_MIN;
  return BigInt(Math.trunc(f));
}

/** Go's uint64(f) on amd64 for the values a shift sees (negative values wrap as int64 does). */
function uint64(f: number): bigint {
  if (Number.isFinite(f) && f >= 0 && f < 2 ** 64) return BigInt(Math.trunc(f));
  return BigInt.asUintN(64, int64(f));
}

const bitwise = (op: string, fn: (a: bigint, b: bigint) => bigint) => (l: unknown, r: unknown) =>
  Number(BigInt.asIntN(64, fn(int64(num(op, l)), int64(num(op, r)))));

function shift(op: '<<' | '>>', l: unknown, r: unknown): number {
  const a = uint64(num(op, l));
  const n = uint64(num(op, r));
  if (n >= 64n) return 0;
  return Number(op === '<<' ? BigInt.asUintN(64, a << n) : a >> n);
}

function compare(op: string, l: unknown, r: unknown): [number, number] | [string, string] {
  if (typeof l === 'number' && typeof r === 'number') return [l, r];
  if (typeof l === 'string' && typeof r === 'string') return [l, r];
  throw new ExprError(`${show(l)} ${op} ${show(r)}: "${op}" compares two numbers or two strings`);
}

/** govaluate's == : Go's reflect.DeepEqual on JSON values (10 is not "10", true is not 1). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every(
    (k) =>
      Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

function member(l: unknown, r: unknown): boolean {
  if (!Array.isArray(r))
    throw new ExprError(
      `the right side of "in" must be a list such as ("a", "b") or a list field, not ${show(r)} (one value in parentheses is not a list)`,
    );
  // Go compares interface values with ==: same type and value; lists and objects never match.
  return r.some((v) => v === l && (typeof v !== 'object' || v === null));
}

function plus(l: unknown, r: unknown): unknown {
  if (typeof l === 'string' || typeof r === 'string') return goText(l) + goText(r);
  return num('+', l) + num('+', r);
}

/** How govaluate's + writes the non-string side (Go's %v; numbers as strconv 'g' shortest). */
function goText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'number') return goFloat(v);
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** strconv.FormatFloat(v, 'g', -1, 64): shortest digits, exponent form below 1e-4 or from 1e6. */
function goFloat(v: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
  if (v === 0) return '0';
  const [mant, exp] = v.toExponential().split('e') as [string, string];
  const e = Number(exp);
  if (e >= -4 && e < 6) return String(v);
  return `${mant}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}

/** An operand jexl evaluates on demand (its promise is synchronous under evalSync). */
interface Operand {
  eval(): { then(f: (v: unknown) => unknown): unknown };
}

export interface BinaryOp {
  op: string;
  precedence: number;
  fn: (l: unknown, r: unknown) => unknown;
  /** Set for && and ||: the right side is evaluated only when needed, as govaluate short-circuits. */
  lazy?: boolean;
}

/** A ternary-level operator whose right side is evaluated only when `f` asks for it. */
function lazyOp(op: string, f: (left: unknown, right: Operand) => unknown): BinaryOp {
  const fn = (l: unknown, r: unknown) => (l as Operand).eval().then((a) => f(a, r as Operand));
  return { op, precedence: PRECEDENCE.coalesce, fn, lazy: true };
}

/** govaluate's && / ||: booleans only, the right side skipped once the left decides. */
function logical(op: '&&' | '||', precedence: number): BinaryOp {
  const decided = op === '||';
  const fn = (l: unknown, r: unknown) =>
    (l as Operand)
      .eval()
      .then((a) => (bool(op, a) === decided ? decided : (r as Operand).eval().then((b) => bool(op, b))));
  return { op, precedence, fn, lazy: true };
}

/** jexl precedences (higher binds tighter) that reproduce govaluate's order. */
export const PRECEDENCE = {
  coalesce: 5,
  or: 10,
  and: 15,
  compare: 20,
  bitwise: 22,
  shift: 25,
  add: 30,
  mul: 40,
  pow: 50,
};

/** The binary operators, `regexTest` supplying =~ (a Go regular expression search). */
export function binaryOps(regexTest: (value: string, pattern: unknown) => boolean): BinaryOp[] {
  const p = PRECEDENCE;
  const rel = (op: string, t: (a: number | string, b: number | string) => boolean): BinaryOp => ({
    op,
    precedence: p.compare,
    fn: (l, r) => {
      const [a, b] = compare(op, l, r);
      return t(a, b);
    },
  });
  const str = (op: string, v: unknown): string => {
    if (typeof v !== 'string')
      throw new ExprError(`${show(v)} cannot be used with "${op}": it is not a string`);
    return v;
  };
  const arith = (op: string, precedence: number, f: (a: number, b: number) => number): BinaryOp => ({
    op,
    precedence,
    fn: (l, r) => f(num(op, l), num(op, r)),
  });
  return [
    // govaluate's ternary is two left-associative operators beside ??: `a ? b` is b when a is
    // true and nil otherwise, `x : c` and `x ?? c` are x unless x is nil (a ? b : c is (a ? b) : c).
    lazyOp('?', (a, r) => (bool('?', a) ? r.eval() : null)),
    lazyOp(':', (a, r) => a ?? r.eval()),
    lazyOp('??', (a, r) => a ?? r.eval()),
    logical('||', p.or),
    logical('&&', p.and),
    { op: '==', precedence: p.compare, fn: deepEqual },
    { op: '!=', precedence: p.compare, fn: (l, r) => !deepEqual(l, r) },
    rel('<', (a, b) => a < b),
    rel('<=', (a, b) => a <= b),
    rel('>', (a, b) => a > b),
    rel('>=', (a, b) => a >= b),
    { op: '=~', precedence: p.compare, fn: (l, r) => regexTest(str('=~', l), r) },
    { op: '!~', precedence: p.compare, fn: (l, r) => !regexTest(str('!~', l), r) },
    { op: 'in', precedence: p.compare, fn: member },
    { op: '&', precedence: p.bitwise, fn: bitwise('&', (a, b) => a & b) },
    { op: '|', precedence: p.bitwise, fn: bitwise('|', (a, b) => a | b) },
    { op: '^', precedence: p.bitwise, fn: bitwise('^', (a, b) => a ^ b) },
    { op: '<<', precedence: p.shift, fn: (l, r) => shift('<<', l, r) },
    { op: '>>', precedence: p.shift, fn: (l, r) => shift('>>', l, r) },
    { op: '+', precedence: p.add, fn: plus },
    arith('-', p.add, (a, b) => a - b),
    arith('*', p.mul, (a, b) => a * b),
    arith('/', p.mul, (a, b) => a / b),
    arith('%', p.mul, (a, b) => a % b),
    arith('**', p.pow, (a, b) => a ** b),
  ];
}

/** The token the translation writes for govaluate's prefix minus (jexl's '-' is binary only). */
export const NEGATE = '#-';

/** The prefix operators: - (negate), ! (not), ~ (bitwise not). */
export const unaryOps: ReadonlyArray<[string, (v: unknown) => unknown]> = [
  [NEGATE, (v) => -num('-', v)],
  ['!', (v) => !bool('!', v)],
  ['~', (v) => Number(BigInt.asIntN(64, ~int64(num('~', v))))],
];
