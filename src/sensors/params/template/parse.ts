// Parser for the Go text/template language (the part Sensors use): text and actions with "{{-" /
// "-}}" trimming, comments, pipelines with "|", fields (.a.b), variables ($, $x, $x.a), literals,
// parenthesised pipelines, if / else if / else, range (with $i, $v :=), with, break, continue,
// variable declaration / assignment, and named templates: {{define "n"}}...{{end}} at the top level,
// {{template "n" pipeline}} and {{block "n" pipeline}}...{{end}} (define + template in one, as
// text/template has it). It builds a tree; nothing is ever evaluated as JavaScript.

export class TemplateError extends Error {
  readonly code = 'TemplateError';
}

export type Arg =
  | { k: 'field'; names: string[] }
  | { k: 'var'; name: string; names: string[] }
  | { k: 'dot' }
  | { k: 'lit'; v: string | number | boolean }
  | { k: 'nil' }
  | { k: 'fn'; name: string }
  | { k: 'pipe'; pipe: Pipe; names: string[] };

export interface Cmd {
  args: Arg[];
}
export interface Pipe {
  decl: string[];
  assign: boolean;
  cmds: Cmd[];
}
export type Node =
  | { k: 'text'; v: string }
  | { k: 'action'; pipe: Pipe }
  | { k: 'if' | 'with'; pipe: Pipe; body: Node[]; else: Node[] | undefined }
  | { k: 'range'; pipe: Pipe; body: Node[]; else: Node[] | undefined }
  | { k: 'break' }
  | { k: 'continue' }
  | { k: 'template'; name: string; pipe: Pipe | undefined; defs: ReadonlyMap<string, Node[]>; where: string };

type Tok =
  | { t: 'field'; names: string[]; sp: boolean }
  | { t: 'var'; name: string; names: string[]; sp: boolean }
  | { t: 'dot'; sp: boolean }
  | { t: 'ident'; name: string; sp: boolean }
  | { t: 'str'; v: string; sp: boolean }
  | { t: 'num'; v: number; sp: boolean }
  | { t: '|' | '(' | ')' | ':=' | '=' | ','; sp: boolean };

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER =
  /[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(\d[\d_]*(\.[\d_]*)?|\.\d[\d_]*)([eE][+-]?\d+)?)/y;
const FIELDS = /(\.[A-Za-z_][A-Za-z0-9_]*)+/y;

function unquote(body: string, where: () => string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = body[++i];
    const simple: Record<string, string> = {
      n: '\n',
      t: '\t',
      r: '\r',
      '\\': '\\',
      '"': '"',
      "'": "'",
      a: '\x07',
      b: '\b',
      f: '\f',
      v: '\v',
    };
    if (n !== undefined && simple[n] !== undefined) out += simple[n];
    else if (n === 'x' || n === 'u' || n === 'U') {
      const len = n === 'x' ? 2 : n === 'u' ? 4 : 8;
      const hex = body.slice(i + 1, i + 1 + len);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len)
        throw new TemplateError(`${where()}: bad escape`);
      out += String.fromCodePoint(Number.parseInt(hex, 16));
      i += len;
    } else throw new TemplateError(`${where()}: unknown escape sequence \\${n ?? ''}`);
  }
  return out;
}

function tokenize(src: string, start: number, end: number, where: (pos: number) => string): Tok[] {
  const toks: Tok[] = [];
  let i = start;
  let sp = true;
  while (i < end) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      sp = true;
      i++;
      continue;
    }
    const at = () => where(i);
    if (c === '"') {
      let j = i + 1;
      while (j < end && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      if (j >= end) throw new TemplateError(`${at()}: unterminated quoted string`);
      toks.push({ t: 'str', v: unquote(src.slice(i + 1, j), at), sp });
      i = j + 1;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0 || j >= end) throw new TemplateError(`${at()}: unterminated raw quoted string`);
      toks.push({ t: 'str', v: src.slice(i + 1, j), sp });
      i = j + 1;
    } else if (c === "'") {
      const j = src.indexOf("'", i + 2);
      if (j < 0 || j >= end) throw new TemplateError(`${at()}: unterminated character constant`);
      const ch = unquote(src.slice(i + 1, j), at);
      toks.push({ t: 'num', v: ch.codePointAt(0) ?? 0, sp });
      i = j + 1;
    } else if (c === '|' || c === '(' || c === ')' || c === ',') {
      toks.push({ t: c, sp });
      i++;
    } else if (c === ':' && src[i + 1] === '=') {
      toks.push({ t: ':=', sp });
      i += 2;
    } else if (c === '=') {
      toks.push({ t: '=', sp });
      i++;
    } else if (c === '$') {
      IDENT.lastIndex = i + 1;
      const m = IDENT.exec(src);
      const name = m && m.index === i + 1 ? `$${m[0]}` : '$';
      i += name.length;
      FIELDS.lastIndex = i;
      const f = FIELDS.exec(src);
      const names = f && f.index === i && i + f[0].length <= end ? f[0].slice(1).split('.') : [];
      if (names.length) i += f![0].length;
      toks.push({ t: 'var', name, names, sp });
    } else if (c === '.' && !/[0-9]/.test(src[i + 1] ?? '')) {
      FIELDS.lastIndex = i;
      const f = FIELDS.exec(src);
      if (f && f.index === i && i + f[0].length <= end) {
        toks.push({ t: 'field', names: f[0].slice(1).split('.'), sp });
        i += f[0].length;
      } else {
        toks.push({ t: 'dot', sp });
        i++;
      }
    } else if (/[0-9+\-.]/.test(c)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(src);
      if (!m || m.index !== i) throw new TemplateError(`${at()}: bad number syntax`);
      const text = m[0].replaceAll('_', '');
      const v = /^[+-]?0[oObB]/.test(text)
        ? Number(text.replace(/^([+-]?)0([oObB])/, '$10$2'))
        : Number(text);
      if (Number.isNaN(v)) throw new TemplateError(`${at()}: bad number syntax: ${m[0]}`);
      toks.push({ t: 'num', v, sp });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      IDENT.lastIndex = i;
      const m = IDENT.exec(src)!;
      toks.push({ t: 'ident', name: m[0], sp });
      i += m[0].length;
    } else {
      throw new TemplateError(`${at()}: unexpected "${c}" in action`);
    }
    sp = false;
  }
  return toks;
}

interface Action {
  toks: Tok[];
  where: string;
}
type Item = { k: 'text'; v: string } | { k: 'action'; a: Action };

/** Splits a template into text and action items, applying the "{{-" / "-}}" trim markers. */
function lex(src: string, name: string, delims: readonly [string, string]): Item[] {
  const [L, R] = delims;
  const items: Item[] = [];
  const lineOf = (pos: number) => src.slice(0, pos).split('\n').length;
  const where = (pos: number) => `template ${name}:${lineOf(pos)}`;
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf(L, i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open < 0) {
      if (text) items.push({ k: 'text', v: text });
      break;
    }
    let p = open + L.length;
    if (src[p] === '-' && /\s/.test(src[p + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      p += 2;
    }
    if (text) items.push({ k: 'text', v: text });
    // Comments: {{/* ... */}}
    const q = src.slice(p).match(/^\s*/)![0].length + p;
    if (src.startsWith('/*', q)) {
      const endC = src.indexOf('*/', q + 2);
      if (endC < 0) throw new TemplateError(`${where(open)}: unclosed comment`);
      let r = endC + 2;
      r += src.slice(r).match(/^\s*/)![0].length;
      if (src[r] === '-' && src.startsWith(R, r + 1)) {
        trimNext = true;
        r += 1;
      }
      if (!src.startsWith(R, r))
        throw new TemplateError(`${where(open)}: comment ends before closing delimiter`);
      i = r + R.length;
      continue;
    }
    // Find the closing delimiter outside quoted strings.
    let j = p;
    let close = -1;
    while (j < src.length) {
      const c = src[j]!;
      if (c === '"' || c === '`' || c === "'") {
        let k = j + 1;
        while (k < src.length && src[k] !== c) k += c !== '`' && src[k] === '\\' ? 2 : 1;
        j = k + 1;
        continue;
      }
      if (src.startsWith(R, j)) {
        close = j;
        break;
      }
      j++;
    }
    if (close < 0) throw new TemplateError(`${where(open)}: unclosed action`);
    let bodyEnd = close;
    if (src[close - 1] === '-' && /\s/.test(src[close - 2] ?? '')) {
      trimNext = true;
      bodyEnd = close - 1;
    }
    items.push({ k: 'action', a: { toks: tokenize(src, p, bodyEnd, where), where: where(open) } });
    i = close + R.length;
  }
  return items;
}

class Parser {
  private pos = 0;
  private readonly items: Item[];
  private readonly isFunc: (name: string) => boolean;
  /** The {{define}}d (and {{block}}) templates, shared by every {{template}} node. */
  private readonly defs = new Map<string, Node[]>();
  constructor(items: Item[], isFunc: (name: string) => boolean) {
    this.items = items;
    this.isFunc = isFunc;
  }

  parse(): Node[] {
    const { nodes, end } = this.list(false);
    if (end) throw new TemplateError(`${end.where}: unexpected {{${end.word}}}`);
    return nodes;
  }

  /** Parses nodes until {{end}} / {{else ...}} (returned as `end`). */
  private list(inBlock: boolean): {
    nodes: Node[];
    end?: { word: 'end' | 'else'; where: string; rest: Tok[] };
  } {
    const nodes: Node[] = [];
    while (this.pos < this.items.length) {
      const it = this.items[this.pos++]!;
      if (it.k === 'text') {
        nodes.push({ k: 'text', v: it.v });
        continue;
      }
      const { toks, where } = it.a;
      const first = toks[0];
      if (!first) throw new TemplateError(`${where}: missing value for command`);
      const kw = first.t === 'ident' ? first.name : '';
      switch (kw) {
        case 'end':
        case 'else':
          if (!inBlock) throw new TemplateError(`${where}: unexpected {{${kw}}}`);
          return { nodes, end: { word: kw, where, rest: toks.slice(1) } };
        case 'if':
        case 'with':
        case 'range':
          nodes.push(this.block(kw, toks.slice(1), where));
          break;
        case 'break':
        case 'continue':
          nodes.push({ k: kw });
          break;
        case 'define':
          if (inBlock) throw new TemplateError(`${where}: {{define}} is only allowed at the top level`);
          this.define(this.templateName(toks, where, false), where);
          break;
        case 'template':
        case 'block': {
          const name = this.templateName(toks, where, true);
          const pipe = toks.length > 2 ? this.pipe(toks.slice(2), where, true) : undefined;
          if (kw === 'block') this.define(name, where);
          nodes.push({ k: 'template', name, pipe, defs: this.defs, where });
          break;
        }
        default:
          nodes.push({ k: 'action', pipe: this.pipe(toks, where, true) });
      }
    }
    if (inBlock) throw new TemplateError('unexpected end of template: missing {{end}}');
    return { nodes };
  }

  /** The quoted name of {{define "n"}} / {{template "n" ...}} / {{block "n" ...}}. */
  private templateName(toks: Tok[], where: string, pipeAllowed: boolean): string {
    const kw = (toks[0] as { name: string }).name;
    const t = toks[1];
    if (t?.t !== 'str') throw new TemplateError(`${where}: {{${kw}}} needs a quoted template name`);
    if (!pipeAllowed && toks.length > 2)
      throw new TemplateError(`${where}: unexpected tokens after the name`);
    return t.v;
  }

  /** Reads a named template's body up to its {{end}}; a second non-empty definition is an error. */
  private define(name: string, where: string): void {
    const body = this.list(true);
    if (body.end?.word !== 'end' || body.end.rest.length)
      throw new TemplateError(`${body.end?.where ?? where}: expected {{end}} of template "${name}"`);
    const old = this.defs.get(name);
    if (old?.some((n) => n.k !== 'text' || n.v.trim() !== ''))
      throw new TemplateError(`${where}: multiple definition of template "${name}"`);
    this.defs.set(name, body.nodes);
  }

  private block(kw: 'if' | 'with' | 'range', toks: Tok[], where: string): Node {
    const pipe = this.pipe(toks, where, true);
    if (!pipe.cmds.length) throw new TemplateError(`${where}: missing value for ${kw}`);
    const body = this.list(true);
    let elseNodes: Node[] | undefined;
    if (body.end?.word === 'else') {
      const rest = body.end.rest;
      const chained = rest[0]?.t === 'ident' && (rest[0].name === 'if' || rest[0].name === 'with');
      if (chained && kw !== 'range') {
        // {{else if ...}} / {{else with ...}}: a nested block that shares this block's {{end}}.
        const inner = (rest[0] as { name: 'if' | 'with' }).name;
        elseNodes = [this.block(inner, rest.slice(1), body.end.where)];
        return { k: kw, pipe, body: body.nodes, else: elseNodes };
      }
      if (rest.length) throw new TemplateError(`${body.end.where}: unexpected tokens after else`);
      const tail = this.list(true);
      if (tail.end?.word !== 'end') throw new TemplateError(`${tail.end?.where ?? where}: expected {{end}}`);
      if (tail.end.rest.length) throw new TemplateError(`${tail.end.where}: unexpected tokens after end`);
      elseNodes = tail.nodes;
    } else if (body.end?.rest.length) {
      throw new TemplateError(`${body.end.where}: unexpected tokens after end`);
    }
    return { k: kw, pipe, body: body.nodes, else: elseNodes };
  }

  private pipe(toks: Tok[], where: string, top: boolean): Pipe {
    let i = 0;
    const decl: string[] = [];
    let assign = false;
    // Declarations: $x := ..., $i, $v := ..., $x = ...
    const look = () => {
      let j = 0;
      const names: string[] = [];
      while (toks[j]?.t === 'var' && (toks[j] as { names: string[] }).names.length === 0) {
        names.push((toks[j] as { name: string }).name);
        j++;
        if (toks[j]?.t === ',') {
          j++;
          continue;
        }
        break;
      }
      const op = toks[j]?.t;
      if (names.length && (op === ':=' || op === '=')) return { names, j: j + 1, assign: op === '=' };
      return undefined;
    };
    const d = top ? look() : undefined;
    if (d) {
      if (d.names.length > 2) throw new TemplateError(`${where}: too many declarations`);
      decl.push(...d.names);
      assign = d.assign;
      i = d.j;
    }
    const cmds: Cmd[] = [];
    let args: Arg[] = [];
    const endCmd = () => {
      if (!args.length) throw new TemplateError(`${where}: missing command in pipeline`);
      cmds.push({ args });
      args = [];
    };
    while (i < toks.length) {
      const t = toks[i]!;
      if (t.t === '|') {
        endCmd();
        i++;
        continue;
      }
      const [arg, next] = this.operand(toks, i, where);
      args.push(arg);
      i = next;
    }
    if (args.length) endCmd();
    else if (cmds.length) throw new TemplateError(`${where}: missing command after "|"`);
    for (const [n, c] of cmds.entries()) {
      if (n > 0 && c.args[0]!.k !== 'fn' && c.args.length === 1 && c.args[0]!.k !== 'pipe') {
        throw new TemplateError(`${where}: non-function in pipeline stage ${n + 1}`);
      }
    }
    return { decl, assign, cmds };
  }

  private operand(toks: Tok[], i: number, where: string): [Arg, number] {
    const t = toks[i]!;
    let arg: Arg;
    let next = i + 1;
    switch (t.t) {
      case 'field':
        arg = { k: 'field', names: t.names };
        break;
      case 'var':
        arg = { k: 'var', name: t.name, names: t.names };
        break;
      case 'dot':
        arg = { k: 'dot' };
        break;
      case 'str':
        arg = { k: 'lit', v: t.v };
        break;
      case 'num':
        arg = { k: 'lit', v: t.v };
        break;
      case 'ident':
        if (t.name === 'true' || t.name === 'false') arg = { k: 'lit', v: t.name === 'true' };
        else if (t.name === 'nil') arg = { k: 'nil' };
        else if (this.isFunc(t.name)) arg = { k: 'fn', name: t.name };
        else throw new TemplateError(`${where}: function "${t.name}" not defined`);
        break;
      case '(': {
        let depth = 1;
        let j = i + 1;
        while (j < toks.length && depth) {
          const tt = toks[j]!.t;
          if (tt === '(') depth++;
          else if (tt === ')') depth--;
          j++;
        }
        if (depth) throw new TemplateError(`${where}: unclosed left paren`);
        const inner = this.pipe(toks.slice(i + 1, j - 1), where, false);
        if (!inner.cmds.length) throw new TemplateError(`${where}: missing value in parentheses`);
        next = j;
        let names: string[] = [];
        const after = toks[next];
        if (after && after.t === 'field' && !after.sp) {
          names = after.names;
          next++;
        }
        arg = { k: 'pipe', pipe: inner, names };
        break;
      }
      default:
        throw new TemplateError(`${where}: unexpected "${t.t}" in operand`);
    }
    return [arg, next];
  }
}

export function parseTemplate(
  src: string,
  name: string,
  isFunc: (name: string) => boolean,
  delims: readonly [string, string] = ['{{', '}}'],
): Node[] {
  return new Parser(lex(src, name, delims), isFunc).parse();
}
