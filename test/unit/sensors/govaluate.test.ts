// exprs evaluate as govaluate does. Every row below was run through govaluate itself (the version
// upstream's Sensor links, 9aa49832a739) and its answer is the expectation: values for the ones it
// evaluates, and an error (at compile or at evaluation) for the ones it refuses.
import { describe, expect, it } from 'vitest';
import { compileExpr, ExprError } from '../../../src/sensors/match/expr.ts';

type Row = [expr: string, vars: Record<string, unknown>, want: unknown];
const evaluated: Row[] = [
  ['action in ("opened","reopened")', { action: 'opened' }, true],
  ['action IN ("opened","reopened")', { action: 'closed' }, false],
  ['n in (5, 6)', { n: 5 }, true],
  ['n in ("5", 6)', { n: 5 }, false],
  ['n in a', { n: 5, a: [5, 6] }, true],
  ['(n ^ 1) == 4', { n: 5 }, true],
  ['n ^ 1.5', { n: 5 }, 4],
  ['-n == -5', { n: 5 }, true],
  ['-(n) < 0', { n: 5 }, true],
  ['-2 ** 2', {}, 4],
  ['2 ** -1', {}, 0.5],
  ['n & 4', { n: 5 }, 4],
  ['n | 2', { n: 5 }, 7],
  ['n << 2', { n: 5 }, 20],
  ['n >> 1', { n: 5 }, 2],
  ['~n', { n: 5 }, -6],
  ['~n == -6', { n: 5 }, true],
  ['x ?? 3', { x: null }, 3],
  ['x ?? 3', { x: 1 }, 1],
  ['n > 3 ? "big" : "small"', { n: 5 }, 'big'],
  ['n > 9 ? "big"', { n: 5 }, null],
  ['1 + 2 * 3', {}, 7],
  ['10 - 4 - 3', {}, 3],
  ['2 ** 3 ** 2', {}, 64],
  ['100 / 10 / 5', {}, 2],
  ['1 | 2 ^ 3 & 4', {}, 0],
  ['1 + 2 << 1', {}, 6],
  ['1 << 2 + 1', {}, 8],
  ['5 & 4 == 4', {}, true],
  ['n == 10', { n: '10' }, false],
  ['s + 1', { s: 'a' }, 'a1'],
  ['s > "a"', { s: 'b' }, true],
  ['!b', { b: true }, false],
  ['false && n', { n: 1 }, false],
  ['true || n', { n: 1 }, true],
  ['n % 3', { n: 5 }, 2],
  ['s =~ "^a"', { s: 'abc' }, true],
  ['s !~ "^a"', { s: 'abc' }, false],
  ['[a b] == 1', { 'a b': 1 }, true],
  ['0x1F == 31', {}, true],
  ["'single'", {}, 'single'],
  ['o == o2', { o: { a: 1 }, o2: { a: 1 } }, true],
  ['l == l2', { l: [1], l2: [1] }, true],
  ['n in (l)', { n: 1, l: [1] }, true],
  ['n > 3 && n < 10 || n == 0', { n: 5 }, true],
  ['b ? 1 : 2', { b: false }, 2],
  ['(1, 2)', {}, [1, 2]],
  ['~1.5', {}, -2],
  ['1.5 & 3', {}, 1],
  ['-1 >> 1', {}, 9223372036854776000],
  ['1 << 64', {}, 0],
  ['1 << -1', {}, 0],
  ['true == 1', {}, false],
  ['n == 5.0', { n: 5 }, true],
  ['!(b)', { b: true }, false],
  ['a - -b', { a: 1, b: 2 }, 3],
  ['n > -1', { n: 0 }, true],
  ['-n ** 2', { n: 3 }, 9],
  ['!b == false', { b: true }, true],
  ['(1, 2) == (1, 2)', {}, true],
  ['"a" + 1.5', {}, 'a1.5'],
  ['"a" + true', {}, 'atrue'],
  ['"a" + 1000000', {}, 'a1e+06'],
  ['"a" + 0.00001', {}, 'a1e-05'],
  ['b in (1, "x", true)', { b: true }, true],
  ['x ?? y ?? 3', { x: null, y: null }, 3],
  ['b ? 1 : b2 ? 2 : 3', { b: false, b2: true }, 2],
  ['b ? 1 : 2 == 2', { b: true }, 1],
  ['n % -3', { n: 5 }, 2],
  ['-n % 3', { n: 5 }, -2],
  ['"a\\"b" == s', { s: 'a"b' }, true],
  ['1 == 1 == true', {}, true],
  ['n - 1 > 3 && s =~ "x"', { n: 5, s: 'yx' }, true],
  ['n & 6 ^ 3', { n: 5 }, 7],
  ['n * 2 ** 2', { n: 3 }, 12],
  ['n in (1, 2) == true', { n: 1 }, true],
  ['(n) in (1, 2)', { n: 1 }, true],
  ['s in l', { s: 'a', l: ['a'] }, true],
  ['n == 1 || n == 2 && false', { n: 1 }, true],
  ['(n == 1 || n == 2) && false', { n: 1 }, false],
  ['true ? false : true', {}, false],
  ["n > 3 ? s : 'small'", { n: 5, s: null }, 'small'],
];
// PARSE: govaluate refuses to compile; EVAL: it compiles and fails on these values.
const refused: Array<[expr: string, vars: Record<string, unknown>, when: 'PARSE' | 'EVAL']> = [
  ['action In ("opened")', { action: 'opened' }, 'PARSE'],
  ['s in ("xabcx")', { s: 'abc' }, 'EVAL'],
  ['s in ("abc")', { s: 'abc' }, 'EVAL'],
  ['n in (5)', { n: 5 }, 'EVAL'],
  ['n in a', { n: 5, a: '5' }, 'EVAL'],
  ['- -n', { n: 5 }, 'PARSE'],
  ['s > 1', { s: 'b' }, 'EVAL'],
  ['!n', { n: 1 }, 'EVAL'],
  ['b && n', { b: true, n: 1 }, 'EVAL'],
  ['n =~ "5"', { n: 5 }, 'EVAL'],
  ['a.b == 1', { a: { b: 1 } }, 'PARSE'],
  ['n ? 1 : 2', { n: 5 }, 'EVAL'],
  ['n ~ 1', { n: 1 }, 'PARSE'],
  ['n ! 1', { n: 1 }, 'PARSE'],
  ['!!b', { b: true }, 'PARSE'],
  ['-s', { s: 'a' }, 'EVAL'],
  ['s in ("a") && true', { s: 'a' }, 'EVAL'],
  ['1 + true', {}, 'EVAL'],
  ["s == 'it''s'", { s: 'x' }, 'PARSE'],
  ['~-n', { n: 3 }, 'PARSE'],
  ['!-n', { n: 3 }, 'PARSE'],
];

const run = (expr: string, vars: Record<string, unknown>) => compileExpr(expr, Object.keys(vars)).value(vars);

describe('exprs: govaluate operators, precedence and types', () => {
  it.each(evaluated)('%s with %j is %j', (expr, vars, want) => {
    expect(run(expr, vars)).toEqual(want);
  });

  it.each(refused)('%s with %j is refused (govaluate: %s)', (expr, vars, when) => {
    if (when === 'PARSE') expect(() => compileExpr(expr, Object.keys(vars))).toThrow(ExprError);
    else expect(() => run(expr, vars)).toThrow(ExprError);
  });

  it('the report cases: lowercase in, XOR, prefix minus, bitwise operators, ??', () => {
    expect(compileExpr('action in ("opened","reopened")', ['action']).evaluate({ action: 'opened' })).toBe(
      true,
    );
    // Not a substring test: one value in parentheses is not a list, so govaluate fails the filter.
    expect(() => run('s in ("xabcx")', { s: 'abc' })).toThrow(/must be a list/);
    expect(run('(n ^ 1) == 4', { n: 5 })).toBe(true);
    expect(run('-n == -5', { n: 5 })).toBe(true);
    expect(run('(n & 4) | (n << 1) | (n >> 2) | ~0', { n: 5 })).toBe(-1);
    expect(run('x ?? "fallback"', { x: null })).toBe('fallback');
  });

  it('the right side of && / || / ? is evaluated only when needed, as govaluate short-circuits', () => {
    expect(run('false && (s > 1)', { s: 'x' })).toBe(false);
    expect(run('true || (s > 1)', { s: 'x' })).toBe(true);
    expect(() => run('true && (s > 1)', { s: 'x' })).toThrow(/two numbers or two strings/);
  });

  it('refuses what govaluate cannot read from event data, at compile time (so lint reports it)', () => {
    expect(() => compileExpr('a.b == 1', ['a'])).toThrow(/own field/);
    expect(() => compileExpr('a[0] == 1', ['a'])).toThrow(ExprError);
    expect(() => compileExpr('--n', ['n'])).toThrow(/prefix/);
    expect(() => compileExpr('n # 1', ['n'])).toThrow(ExprError);
  });
});
