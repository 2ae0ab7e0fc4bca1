// Runs a parsed Go template over plain JSON data. Field access follows text/template on
// map[string]interface{}: a missing key gives "<no value>", a field of null is an error, a field
// of a string is an error. Bounded: output size and steps are capped, and every step and function
// call (by the size of what it takes and gives) is charged to the evaluation's work budget
// (../../inline-budget.ts), so a template cannot stall the Sensor whatever the event carries.
import { currentMeter, type Meter, metered, UNITS_PER_STEP } from '../../inline-budget.ts';
import { FUNCS, FuncError } from './funcs.ts';
import { type Arg, type Cmd, type Node, type Pipe, TemplateError } from './parse.ts';
import { goType, NO_VALUE, printValue, truthy } from './print.ts';

const MAX_OUTPUT = 1 << 20;
const MAX_STEPS = 1_000_000;

class Break {}
class Continue {}
const BREAK = new Break();
const CONTINUE = new Continue();
const NO_FINAL: unique symbol = Symbol('no final');

interface State {
  out: string;
  steps: number;
  meter: Meter;
  vars: Array<{ name: string; value: unknown }>;
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);

function field(recv: unknown, name: string): unknown {
  if (recv === NO_VALUE) return NO_VALUE;
  if (recv === null || recv === undefined)
    throw new TemplateError(`nil pointer evaluating interface {}.${name}`);
  if (isMap(recv)) {
    if (!Object.hasOwn(recv, name)) return NO_VALUE;
    const v = recv[name];
    return v === undefined ? NO_VALUE : v;
  }
  throw new TemplateError(`can't evaluate field ${name} in type ${goType(recv)}`);
}

const chain = (v: unknown, names: readonly string[]) => names.reduce(field, v);

function step(st: State) {
  if (++st.steps > MAX_STEPS) throw new TemplateError(`template ran more than ${MAX_STEPS} steps`);
  st.meter.charge(UNITS_PER_STEP, 'template');
}

/** Units for handling `v` in a function call: its length (16 characters or one item per unit). */
const sizeUnits = (v: unknown): number =>
  typeof v === 'string' ? v.length >>> 4 : Array.isArray(v) ? v.length : 0;

function variable(st: State, name: string): unknown {
  for (let i = st.vars.length - 1; i >= 0; i--) if (st.vars[i]!.name === name) return st.vars[i]!.value;
  throw new TemplateError(`undefined variable: ${name}`);
}

function setVar(st: State, name: string, value: unknown) {
  for (let i = st.vars.length - 1; i >= 0; i--) {
    if (st.vars[i]!.name === name) {
      st.vars[i]!.value = value;
      return;
    }
  }
  throw new TemplateError(`undefined variable: ${name}`);
}

function evalArg(st: State, dot: unknown, a: Arg): unknown {
  switch (a.k) {
    case 'field':
      return chain(dot, a.names);
    case 'var':
      return chain(variable(st, a.name), a.names);
    case 'dot':
      return dot;
    case 'lit':
      return a.v;
    case 'nil':
      return null;
    case 'pipe':
      return chain(evalPipe(st, dot, a.pipe), a.names);
    case 'fn':
      // A function named as an argument is called with no arguments, as Go does.
      return call(st, dot, a.name, [], NO_FINAL);
  }
}

function call(st: State, dot: unknown, name: string, rest: Arg[], final: unknown): unknown {
  if (name === 'and' || name === 'or') {
    const args: Array<() => unknown> = rest.map((r) => () => evalArg(st, dot, r));
    if (final !== NO_FINAL) args.push(() => final);
    if (!args.length) throw new TemplateError(`wrong number of args for ${name}: want at least 1 got 0`);
    let v: unknown;
    for (const get of args) {
      v = get();
      if (name === 'and' ? !truthy(v) : truthy(v)) return v;
    }
    return v;
  }
  const fn = FUNCS[name];
  if (!fn) throw new TemplateError(`function "${name}" not defined`);
  const args = rest.map((r) => evalArg(st, dot, r));
  if (final !== NO_FINAL) args.push(final);
  let units = 0;
  for (const a of args) units += sizeUnits(a);
  if (units) st.meter.charge(units, name);
  try {
    const out = fn(args);
    const outUnits = sizeUnits(out);
    if (outUnits) st.meter.charge(outUnits, name);
    return out;
  } catch (e) {
    if (e instanceof FuncError) {
      const msg = e.message.startsWith(`${name}: `) ? e.message.slice(name.length + 2) : e.message;
      throw new TemplateError(`error calling ${name}: ${msg}`);
    }
    throw e;
  }
}

function evalCmd(st: State, dot: unknown, cmd: Cmd, final: unknown): unknown {
  step(st);
  const [first, ...rest] = cmd.args;
  if (!first) throw new TemplateError('empty command');
  if (first.k === 'fn') return call(st, dot, first.name, rest, final);
  if (rest.length || final !== NO_FINAL) {
    const what = first.k === 'field' ? `.${first.names.join('.')}` : first.k === 'var' ? first.name : first.k;
    throw new TemplateError(`can't give argument to non-function ${what}`);
  }
  if (first.k === 'nil') throw new TemplateError('nil is not a command');
  return evalArg(st, dot, first);
}

function evalPipe(st: State, dot: unknown, pipe: Pipe): unknown {
  let v: unknown = NO_FINAL;
  for (const c of pipe.cmds) v = evalCmd(st, dot, c, v);
  for (const name of pipe.decl) {
    if (pipe.assign) setVar(st, name, v);
    else st.vars.push({ name, value: v });
  }
  return v;
}

function emit(st: State, s: string) {
  st.out += s;
  if (st.out.length > MAX_OUTPUT)
    throw new TemplateError(`template output longer than ${MAX_OUTPUT} characters`);
}

function execList(st: State, dot: unknown, nodes: readonly Node[]) {
  for (const n of nodes) {
    switch (n.k) {
      case 'text':
        emit(st, n.v);
        break;
      case 'action': {
        const v = evalPipe(st, dot, n.pipe);
        if (!n.pipe.decl.length) emit(st, printValue(v));
        break;
      }
      case 'if':
      case 'with': {
        const mark = st.vars.length;
        const v = evalPipe(st, dot, n.pipe);
        if (truthy(v)) execList(st, n.k === 'with' ? v : dot, n.body);
        else if (n.else) {
          st.vars.length = mark;
          execList(st, dot, n.else);
        }
        st.vars.length = mark;
        break;
      }
      case 'range':
        execRange(st, dot, n);
        break;
      case 'break':
        throw BREAK;
      case 'continue':
        throw CONTINUE;
      case 'template':
        execTemplate(st, dot, n);
        break;
    }
  }
}

/** Nesting of {{template}} calls; text/template stops at 100,000, a recursion here far sooner. */
const MAX_TEMPLATE_DEPTH = 1000;
let templateDepth = 0;

/** {{template "n" pipeline}}: the named body with the pipeline as dot and $, in a fresh scope. */
function execTemplate(st: State, dot: unknown, n: Extract<Node, { k: 'template' }>) {
  const body = n.defs.get(n.name);
  if (!body) throw new TemplateError(`${n.where}: template "${n.name}" not defined`);
  if (templateDepth >= MAX_TEMPLATE_DEPTH)
    throw new TemplateError(`${n.where}: templates nested more than ${MAX_TEMPLATE_DEPTH} deep`);
  const arg = n.pipe ? evalPipe(st, dot, n.pipe) : NO_VALUE;
  const vars = st.vars;
  st.vars = [{ name: '$', value: arg }];
  templateDepth++;
  try {
    execList(st, arg, body);
  } finally {
    templateDepth--;
    st.vars = vars;
  }
}

function* counting(n: number): Generator<[number, number]> {
  for (let i = 0; i < n; i++) yield [i, i];
}

function execRange(st: State, dot: unknown, n: Extract<Node, { k: 'range' }>) {
  const mark = st.vars.length;
  const decl = n.pipe.decl;
  const v = evalPipe(st, dot, { ...n.pipe, decl: [] });
  // Iterated lazily: "range 1e12" costs steps (and stops at the step limit), never an array.
  let entries: Iterable<[unknown, unknown]>;
  let empty: boolean;
  if (Array.isArray(v)) {
    entries = v.map((e, i) => [i, e]);
    empty = v.length === 0;
  } else if (isMap(v)) {
    const keys = Object.keys(v).sort();
    entries = keys.map((k) => [k, v[k]]);
    empty = keys.length === 0;
  } else if (typeof v === 'number' && Number.isInteger(v)) {
    entries = counting(v);
    empty = v <= 0;
  } else if (v === null || v === NO_VALUE) {
    entries = [];
    empty = true;
  } else throw new TemplateError(`range can't iterate over ${printValue(v)}`);
  if (empty) {
    if (n.else) execList(st, dot, n.else);
    st.vars.length = mark;
    return;
  }
  for (const [k, e] of entries) {
    step(st);
    st.vars.length = mark;
    if (decl.length === 1) st.vars.push({ name: decl[0]!, value: e });
    else if (decl.length === 2) st.vars.push({ name: decl[0]!, value: k }, { name: decl[1]!, value: e });
    try {
      execList(st, e, n.body);
    } catch (x) {
      if (x === BREAK) break;
      if (x !== CONTINUE) throw x;
    }
  }
  st.vars.length = mark;
}

/**
 * Runs `nodes` over `data` on the evaluation's meter (a fresh one outside any evaluation); throws
 * TemplateError, or EvalBudgetError when the template needs more work than the budget allows.
 */
export function execute(nodes: readonly Node[], data: unknown): string {
  const meter = currentMeter();
  const st: State = { out: '', steps: 0, meter, vars: [{ name: '$', value: data }] };
  metered(meter, () => execList(st, data, nodes));
  return st.out;
}
