// Expression filters. Upstream evaluates them with govaluate; sluice parses and evaluates them
// with jexl (its own parser and interpreter, no eval of user input), set up to read govaluate
// expressions the same way: && binds tighter than ||, == / != compare strictly (10 != "10"),
// =~ / !~ test a regular expression, IN ("a", "b") tests membership, and [odd name] refers to a
// variable whose name is not a plain identifier.
import jexlModule from 'jexl';
import { type GoRegex, goRegex } from './regex.ts';

// The parts of jexl's syntax tree this module walks.
type Ast =
  | { type: 'UnaryExpression'; right: Ast }
  | { type: 'BinaryExpression'; left: Ast; right: Ast }
  | { type: 'ConditionalExpression'; test: Ast; consequent: Ast; alternate: Ast }
  | { type: 'FilterExpression'; subject: Ast }
  | { type: 'Literal' }
  | { type: 'ArrayLiteral'; value: Ast[] }
  | { type: 'ObjectLiteral'; value: Record<string, Ast> }
  | { type: 'Identifier'; value: string; from?: Ast; relative?: boolean }
  | { type: 'FunctionCall'; name: string };
type Compiled = { evalSync(context?: object): unknown; _getAst(): Ast };
interface JexlInstance {
  compile(expr: string): Compiled;
  addBinaryOp(op: string, precedence: number, fn: (l: unknown, r: unknown) => unknown): void;
  _grammar: { elements: Record<string, { precedence?: number }> };
}
const Jexl = (jexlModule as unknown as { Jexl: new () => JexlInstance }).Jexl;

export class ExprError extends Error {
  readonly code = 'InvalidExpression';
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

const regexCache = new Map<string, GoRegex>();
function regexTest(value: unknown, pattern: unknown): boolean {
  if (typeof pattern !== 'string') throw new ExprError('the right side of =~ / !~ must be a string');
  let re = regexCache.get(pattern);
  if (!re) {
    re = goRegex(pattern);
    if (regexCache.size > 500) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re.test(String(value));
}

let engine: JexlInstance | undefined;
function jexl(): JexlInstance {
  if (engine) return engine;
  const j = new Jexl();
  // govaluate: && before ||; jexl gives them the same precedence by default.
  j._grammar.elements['&&']!.precedence = 15;
  j.addBinaryOp('==', 20, deepEqual);
  j.addBinaryOp('!=', 20, (l, r) => !deepEqual(l, r));
  j.addBinaryOp('=~', 20, (l, r) => regexTest(l, r));
  j.addBinaryOp('!~', 20, (l, r) => !regexTest(l, r));
  j.addBinaryOp('**', 50, (l, r) => (l as number) ** (r as number));
  engine = j;
  return j;
}

/** Rewrites govaluate-only syntax into jexl: [escaped names] and IN (list). */
export function translateGovaluate(expr: string, names: Map<string, string>): string {
  let out = '';
  const closers: string[] = [];
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < expr.length && expr[j] !== c) j += expr[j] === '\\' ? 2 : 1;
      out += expr.slice(i, j + 1);
      i = j;
      continue;
    }
    if (c === '[') {
      const j = expr.indexOf(']', i);
      if (j < 0) throw new ExprError('unclosed "[" in variable name');
      const raw = expr.slice(i + 1, j);
      let id = names.get(raw);
      if (!id) {
        id = `__v${names.size}`;
        names.set(raw, id);
      }
      out += id;
      i = j;
      continue;
    }
    const inMatch = /^IN\s*\(/.exec(expr.slice(i));
    if (inMatch && !/[A-Za-z0-9_]/.test(expr[i - 1] ?? ' ')) {
      out += 'in [';
      closers.push(']');
      i += inMatch[0].length - 1;
      continue;
    }
    if (c === '(') closers.push(')');
    if (c === ')') {
      out += closers.pop() ?? ')';
      continue;
    }
    out += c;
  }
  return out;
}

function topIdentifiers(ast: Ast, into: Set<string>) {
  switch (ast.type) {
    case 'Identifier':
      if (ast.from) topIdentifiers(ast.from, into);
      else if (!ast.relative) into.add(ast.value);
      return;
    case 'UnaryExpression':
      topIdentifiers(ast.right, into);
      return;
    case 'BinaryExpression':
      topIdentifiers(ast.left, into);
      topIdentifiers(ast.right, into);
      return;
    case 'ConditionalExpression':
      topIdentifiers(ast.test, into);
      topIdentifiers(ast.consequent, into);
      topIdentifiers(ast.alternate, into);
      return;
    case 'FilterExpression':
      topIdentifiers(ast.subject, into);
      return;
    case 'ArrayLiteral':
      for (const a of ast.value) topIdentifiers(a, into);
      return;
    case 'ObjectLiteral':
      for (const a of Object.values(ast.value)) topIdentifiers(a, into);
      return;
    case 'FunctionCall':
      throw new ExprError(`function ${ast.name} is not available in expressions`);
    default:
  }
}

export interface CompiledExpr {
  /** Evaluates with the field values bound by name; true only for a boolean true result. */
  evaluate(vars: Record<string, unknown>): boolean;
}

/**
 * Compiles a govaluate-style expression. `fieldNames` are the names the expression may use;
 * a name the expression uses that is not among them is a compile error.
 */
export function compileExpr(expr: string, fieldNames: readonly string[]): CompiledExpr {
  const aliases = new Map<string, string>();
  const src = translateGovaluate(expr, aliases);
  let compiled: Compiled;
  try {
    compiled = jexl().compile(src);
    const used = new Set<string>();
    topIdentifiers(compiled._getAst(), used);
    const known = new Set([
      ...fieldNames,
      ...[...aliases].filter(([raw]) => fieldNames.includes(raw)).map(([, id]) => id),
    ]);
    const unknown = [...used].filter((n) => !known.has(n));
    if (unknown.length) {
      const display = unknown.map((n) => [...aliases].find(([, id]) => id === n)?.[0] ?? n);
      throw new ExprError(
        `uses ${display.map((n) => `"${n}"`).join(', ')}, not among its fields (${fieldNames.join(', ') || 'none'})`,
      );
    }
  } catch (e) {
    if (e instanceof ExprError) throw e;
    throw new ExprError(`cannot parse: ${(e as Error).message}`);
  }
  const aliasPairs = [...aliases].filter(([raw]) => fieldNames.includes(raw));
  return {
    evaluate(vars) {
      let ctx = vars;
      if (aliasPairs.length) {
        ctx = { ...vars };
        for (const [raw, id] of aliasPairs) ctx[id] = vars[raw];
      }
      return compiled.evalSync(ctx) === true;
    },
  };
}
