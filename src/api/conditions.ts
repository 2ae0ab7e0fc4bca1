// Trigger `conditions`: a boolean expression over dependency names with &&, || and parentheses,
// e.g. "dep-a && (dep-b || dep-c)". Parsed once, evaluated against the set of satisfied
// dependencies. Pure and dependency-free; no eval.

export type ConditionNode =
  | { kind: 'name'; name: string }
  | { kind: 'and' | 'or'; left: ConditionNode; right: ConditionNode };

export class ConditionSyntaxError extends Error {
  readonly position: number;

  constructor(message: string, position: number) {
    super(`${message} at position ${position + 1}`);
    this.position = position;
  }
}

interface Token {
  type: 'name' | 'and' | 'or' | 'lparen' | 'rparen';
  text: string;
  pos: number;
}

const NAME_CHAR = /[A-Za-z0-9_.-]/;

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '(' || c === ')') {
      out.push({ type: c === '(' ? 'lparen' : 'rparen', text: c, pos: i });
      i++;
    } else if (c === '&' || c === '|') {
      if (src[i + 1] !== c) throw new ConditionSyntaxError(`"${c}" must be doubled ("${c}${c}")`, i);
      out.push({ type: c === '&' ? 'and' : 'or', text: c + c, pos: i });
      i += 2;
    } else if (NAME_CHAR.test(c)) {
      const start = i;
      while (i < src.length && NAME_CHAR.test(src[i]!)) i++;
      out.push({ type: 'name', text: src.slice(start, i), pos: start });
    } else {
      throw new ConditionSyntaxError(`unexpected character "${c}"`, i);
    }
  }
  return out;
}

/** Parses a conditions expression; throws ConditionSyntaxError with the position. */
export function parseConditions(src: string): ConditionNode {
  const tokens = tokenize(src);
  let i = 0;
  const peek = () => tokens[i];
  const end = src.length;
  // or := and ('||' and)* ; and := primary ('&&' primary)* ; primary := name | '(' or ')'
  const primary = (): ConditionNode => {
    const t = peek();
    if (!t) throw new ConditionSyntaxError('expression ends where a dependency name is expected', end);
    if (t.type === 'name') {
      i++;
      return { kind: 'name', name: t.text };
    }
    if (t.type === 'lparen') {
      i++;
      const inner = or();
      const close = peek();
      if (close?.type !== 'rparen') throw new ConditionSyntaxError('missing ")"', close?.pos ?? end);
      i++;
      return inner;
    }
    throw new ConditionSyntaxError(`unexpected "${t.text}"`, t.pos);
  };
  const and = (): ConditionNode => {
    let left = primary();
    while (peek()?.type === 'and') {
      i++;
      left = { kind: 'and', left, right: primary() };
    }
    return left;
  };
  const or = (): ConditionNode => {
    let left = and();
    while (peek()?.type === 'or') {
      i++;
      left = { kind: 'or', left, right: and() };
    }
    return left;
  };
  if (tokens.length === 0) throw new ConditionSyntaxError('empty expression', 0);
  const ast = or();
  const rest = peek();
  if (rest) throw new ConditionSyntaxError(`unexpected "${rest.text}"`, rest.pos);
  return ast;
}

export function conditionNames(node: ConditionNode, out = new Set<string>()): Set<string> {
  if (node.kind === 'name') out.add(node.name);
  else {
    conditionNames(node.left, out);
    conditionNames(node.right, out);
  }
  return out;
}

export function evaluateConditions(node: ConditionNode, satisfied: ReadonlySet<string>): boolean {
  if (node.kind === 'name') return satisfied.has(node.name);
  return node.kind === 'and'
    ? evaluateConditions(node.left, satisfied) && evaluateConditions(node.right, satisfied)
    : evaluateConditions(node.left, satisfied) || evaluateConditions(node.right, satisfied);
}

/**
 * CEL approximation of the grammar for the CRD (CEL cannot parse): allowed characters only,
 * as many "(" as ")", no single & or |, no operator at either end or next to another.
 */
export const CONDITIONS_CEL = [
  {
    rule: "self.matches('^[A-Za-z0-9_.()&| \\\\t-]+$')",
    message: 'conditions may only contain dependency names, &&, ||, parentheses and spaces',
  },
  {
    rule: "self.split('(').size() == self.split(')').size()",
    message: 'conditions has unbalanced parentheses',
  },
  {
    rule: "!self.matches('(^|[^&])&([^&]|$)') && !self.matches('(^|[^|])[|]([^|]|$)')",
    message: 'conditions must use && and ||, not single & or |',
  },
  {
    rule: "!self.matches('^\\\\s*(&&|[|][|])') && !self.matches('(&&|[|][|])\\\\s*$') && !self.matches('(&&|[|][|])\\\\s*(&&|[|][|])')",
    message: 'conditions has an operator without a dependency name on one side',
  },
];
