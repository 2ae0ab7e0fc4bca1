// Expression filters. Upstream evaluates them with govaluate; sluice parses them with jexl (its own
// parser and interpreter, no eval of user input) after a small rewrite of govaluate syntax
// (translateGovaluate), and evaluates them with govaluate's operators, precedence and type rules
// (./govaluate-ops.ts): == / != compare strictly (10 != "10"), ^ is XOR, & | << >> ~ are bitwise,
// ?? coalesces, a prefix minus negates, =~ / !~ search a Go regular expression, in / IN test
// membership of a list, and [odd name] refers to a variable whose name is not a plain identifier.
// What govaluate refuses (a.b struct accessors, a[0], {objects}, functions) is refused at compile.
import jexlModule from 'jexl';
import { binaryOps, ExprError, NEGATE, unaryOps } from './govaluate-ops.ts';
import { type GoRegex, goRegex } from './regex.ts';

export { ExprError } from './govaluate-ops.ts';

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
  addBinaryOp(op: string, precedence: number, fn: (l: unknown, r: unknown) => unknown, lazy?: boolean): void;
  addUnaryOp(op: string, fn: (v: unknown) => unknown): void;
  _grammar: { elements: Record<string, { precedence?: number }> };
}
const Jexl = (jexlModule as unknown as { Jexl: new () => JexlInstance }).Jexl;

const regexCache = new Map<string, GoRegex>();
function regexTest(value: string, pattern: unknown): boolean {
  if (typeof pattern !== 'string') throw new ExprError('the right side of =~ / !~ must be a string');
  let re = regexCache.get(pattern);
  if (!re) {
    re = goRegex(pattern);
    if (regexCache.size > 500) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re.test(value);
}

let engine: JexlInstance | undefined;
function jexl(): JexlInstance {
  if (engine) return engine;
  const j = new Jexl();
  for (const op of binaryOps(regexTest)) j.addBinaryOp(op.op, op.precedence, op.fn, op.lazy);
  for (const [op, fn] of unaryOps) j.addUnaryOp(op, fn);
  engine = j;
  return j;
}

/** For each "(" at offset i: whether it holds a top-level comma, i.e. is a govaluate list. */
function listParens(expr: string): Set<number> {
  const lists = new Set<number>();
  const open: number[] = [];
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (c === '"' || c === "'") i = closeQuote(expr, i);
    else if (c === '[') i = Math.max(i, expr.indexOf(']', i));
    else if (c === '(') open.push(i);
    else if (c === ')') open.pop();
    else if (c === ',' && open.length) lists.add(open[open.length - 1]!);
  }
  return lists;
}

function closeQuote(expr: string, i: number): number {
  let j = i + 1;
  while (j < expr.length && expr[j] !== expr[i]) j += expr[j] === '\\' ? 2 : 1;
  return j;
}

const WORD = /[A-Za-z0-9_.]/;

/**
 * Rewrites govaluate syntax into the jexl dialect compileExpr runs: [escaped names] become
 * identifiers (recorded in `names`), a parenthesised list ("a", "b") becomes a jexl array,
 * in / IN the membership operator, a prefix minus the NEGATE token, 0x1F hex literals decimals.
 * Throws ExprError for an unclosed [name] and for "#", which govaluate does not know either.
 */
export function translateGovaluate(expr: string, names: Map<string, string>): string {
  const lists = listParens(expr);
  const closers: string[] = [];
  const prefixes: number[] = []; // paren depth of each prefix operator still waiting for its operand
  let out = '';
  let operand = false; // the last token ends an operand (a minus after it subtracts)
  let prefix = false; // the last token is a prefix operator
  const endOperand = () => {
    operand = true;
    prefix = false;
    while (prefixes.length && prefixes[prefixes.length - 1] === closers.length) {
      prefixes.pop();
      out += ')';
    }
  };
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (c === '"' || c === "'") {
      const j = closeQuote(expr, i);
      out += expr.slice(i, j + 1);
      i = j;
      endOperand();
    } else if (c === '[') {
      const j = expr.indexOf(']', i);
      if (j < 0) throw new ExprError('unclosed "[" in variable name');
      out += alias(names, expr.slice(i + 1, j));
      i = j;
      endOperand();
    } else if (/[A-Za-z0-9_]/.test(c)) {
      let j = i;
      while (j < expr.length && WORD.test(expr[j]!)) j++;
      const word = expr.slice(i, j);
      const hex = /^0x([0-9a-fA-F]+)$/.exec(word);
      i = j - 1;
      if (word === 'in' || word === 'IN') {
        out += ' in ';
        operand = prefix = false;
        continue;
      }
      out += hex ? String(Number.parseInt(hex[1]!, 16)) : word;
      endOperand();
    } else if (c === '(') {
      const list = lists.has(i);
      out += list ? '[' : '(';
      closers.push(list ? ']' : ')');
      operand = prefix = false;
    } else if (c === ')') {
      out += closers.pop() ?? ')';
      endOperand();
    } else if ((c === '=' || c === '!') && /[=~]/.test(expr[i + 1] ?? '')) {
      out += c + expr[++i];
      operand = prefix = false;
    } else if (c === '#') {
      throw new ExprError('"#" is not a govaluate operator');
    } else if (!operand && (c === '-' || c === '~' || c === '!')) {
      // A prefix applies to the operand right after it (-2 ** 2 is 4 in govaluate).
      if (prefix) throw new ExprError(`"${c}" right after another prefix operator is not govaluate syntax`);
      out += `(${c === '-' ? NEGATE : c} `;
      prefixes.push(closers.length);
      prefix = true;
    } else {
      out += c;
      if (!/\s/.test(c)) operand = prefix = false;
    }
  }
  return out;
}

function alias(names: Map<string, string>, raw: string): string {
  let id = names.get(raw);
  if (!id) {
    id = `__v${names.size}`;
    names.set(raw, id);
  }
  return id;
}

function topIdentifiers(ast: Ast, into: Set<string>) {
  switch (ast.type) {
    case 'Identifier':
      if (ast.from || ast.relative)
        throw new ExprError(
          `"${ast.value}" reads a field of a value, which govaluate does not do for event data: give the nested value its own field (path)`,
        );
      into.add(ast.value);
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
      throw new ExprError(
        'indexing a value with [...] is not govaluate syntax: use a field whose path picks the element',
      );
    case 'ArrayLiteral':
      for (const a of ast.value) topIdentifiers(a, into);
      return;
    case 'ObjectLiteral':
      throw new ExprError('{...} objects are not govaluate syntax');
    case 'FunctionCall':
      throw new ExprError(`function ${ast.name} is not available in expressions`);
    default:
  }
}

export interface CompiledExpr {
  /** Evaluates with the field values bound by name; true only for a boolean true result. */
  evaluate(vars: Record<string, unknown>): boolean;
  /** The expression's value (a number, string, boolean, list or null); throws ExprError. */
  value(vars: Record<string, unknown>): unknown;
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
  const value = (vars: Record<string, unknown>): unknown => {
    let ctx = vars;
    if (aliasPairs.length) {
      ctx = { ...vars };
      for (const [raw, id] of aliasPairs) ctx[id] = vars[raw];
    }
    return compiled.evalSync(ctx);
  };
  return { value, evaluate: (vars) => value(vars) === true };
}
