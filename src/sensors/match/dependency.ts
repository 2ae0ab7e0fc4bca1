// A Sensor dependency compiled once: its filters (context, time, data, exprs, script, combined by
// filtersLogicalOperator, "and" by default) and its transform (jq or Lua). Everything that can be
// checked is checked at compile time, with messages naming the dependency and the filter.
//
// Lua and jq run in WebAssembly modules that load asynchronously. After `await
// loadMatchRuntimes()` (or with compileDependencyAsync) everything is compiled eagerly and
// check/matches/transform return plain values; before that, a dependency that needs Lua or jq
// compiles it on first use and returns a Promise for that call.
import type { EventDependency, EventDependencyFilter } from '../../api/sensor.ts';
import type { CloudEvent } from '../../eventsources/envelope.ts';
import { Meter, metered } from '../inline-budget.ts';
import type { Sandbox } from '../sandbox/pool.ts';
import { compileContextFilter } from './context.ts';
import { type Check, combine, compileDataFilters } from './data.ts';
import { compileExpr } from './expr.ts';
import { compileJq, type JqProgram, jqLoaded, loadJq } from './jq.ts';
import { compileLua, type LuaProgram, loadLua, luaLoaded } from './lua.ts';
import { type CompiledPath, compilePath, MISSING } from './path.ts';
import {
  DependencyConfigError,
  Fail,
  FilterEvaluationError,
  type MatchResult,
  TransformError,
} from './result.ts';
import { compileTimeFilter } from './time.ts';

export interface CompiledDependency {
  readonly name: string;
  /** Whether the event passes, and if not, why (and whether a filter failed to run). */
  check(event: CloudEvent, now?: Date): MatchResult | Promise<MatchResult>;
  /**
   * True when the event passes the filters. False for an ordinary non-match; throws
   * FilterEvaluationError (the event does not match) when a filter could not be evaluated, so the
   * caller can log the reason.
   */
  matches(event: CloudEvent, now?: Date): boolean | Promise<boolean>;
  /** The event with its data replaced by the transform's result (the event itself without one). */
  transform(event: CloudEvent): CloudEvent | Promise<CloudEvent>;
}

/** Loads the Lua and jq WebAssembly modules (once per process). */
export async function loadMatchRuntimes(): Promise<void> {
  await Promise.all([loadLua(), loadJq()]);
}

type EventCheck = (ev: CloudEvent, now: Date | undefined) => Fail | undefined;

const PASS: MatchResult = { matched: true };
const toResult = (f: Fail | undefined): MatchResult =>
  f ? { matched: false, reason: f.reason, error: f.error } : PASS;
const isOr = (op: string | undefined) => op === 'or';

/** A Lua or jq program compiled on first use when its runtime was not loaded at compile time. */
class Lazy<T> {
  private value: T | undefined;
  private failure: Error | undefined;
  private readonly ready: () => boolean;
  private readonly load: () => Promise<void>;
  private readonly make: () => T;
  constructor(ready: () => boolean, load: () => Promise<void>, make: () => T, eager: boolean) {
    this.ready = ready;
    this.load = load;
    this.make = make;
    if (eager && ready()) this.value = make();
  }
  /** The program, or a Promise of it while the runtime loads. Throws the compile error. */
  get(): T | Promise<T> {
    if (this.failure) throw this.failure;
    if (this.value !== undefined) return this.value;
    if (this.ready()) return this.build();
    return this.load().then(() => this.build());
  }
  private build(): T {
    if (this.value !== undefined) return this.value;
    try {
      this.value = this.make();
      return this.value;
    } catch (e) {
      this.failure = e as Error;
      throw e;
    }
  }
}

/** A user program ready to run on event data: jq gives all its outputs, Lua its first result. */
export interface Program {
  run(input: unknown): unknown;
}

/**
 * Where user programs run. The Sensor passes the sandbox (worker threads with deadlines and
 * memory limits, see ../sandbox); without one they run in-process (tests, `sluice lint`).
 */
export interface ProgramHost {
  program(lang: 'jq' | 'lua', source: string): Program;
}

/** In-process programs on the process-wide runtimes (compiled eagerly when loaded). */
function inProcess(eager: boolean): ProgramHost {
  return {
    program(lang, source) {
      if (lang === 'jq') {
        const jq = new Lazy<JqProgram>(jqLoaded, loadJq, () => compileJq(source), eager);
        return { run: (input) => then(jq.get(), (p) => p.run(input)) };
      }
      const lua = new Lazy<LuaProgram>(luaLoaded, loadLua, () => compileLua(source), eager);
      return { run: (input) => then(lua.get(), (p) => p.run(input)) };
    },
  };
}

/** f(v), or a Promise of it when v is one. */
function then<T, R>(v: T | Promise<T>, f: (x: T) => R | Promise<R>): R | Promise<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}

function compileExprs(f: EventDependencyFilter, where: string): Check | undefined {
  if (!f.exprs) return undefined;
  const or = isOr(f.exprLogicalOperator);
  const checks: Check[] = [];
  f.exprs.forEach((e, i) => {
    const w = `${where}.exprs[${i}] (${JSON.stringify(e.expr)})`;
    // Upstream skips an expression that names no fields; so does sluice.
    if (!e.fields.length) return;
    const names = e.fields.map((x) => x.name);
    let expr: ReturnType<typeof compileExpr>;
    try {
      expr = compileExpr(e.expr, names);
    } catch (err) {
      throw new DependencyConfigError(`${w}: ${(err as Error).message}`);
    }
    const fields: Array<[string, CompiledPath]> = e.fields.map((x) => [x.name, compilePath(x.path)]);
    checks.push((data) => {
      const vars: Record<string, unknown> = {};
      for (const [name, path] of fields) {
        const v = path.get(data);
        if (v === MISSING)
          return new Fail(`${w}: path "${path.path}" does not exist in the event data`, false);
        vars[name] = v;
      }
      let ok: boolean;
      try {
        ok = expr.evaluate(vars);
      } catch (err) {
        return new Fail(`${w}: ${(err as Error).message}`, true, err);
      }
      return ok ? undefined : new Fail(`${w}: false`, false);
    });
  });
  if (!checks.length) return undefined;
  return checks.length === 1 ? checks[0] : combine(checks, or, `${where}.exprs`);
}

function eventTime(ev: CloudEvent, now: Date | undefined): Date {
  const t = typeof ev.time === 'string' ? Date.parse(ev.time) : Number.NaN;
  return Number.isNaN(t) ? (now ?? new Date()) : new Date(t);
}

function build(dep: EventDependency, host: ProgramHost): CompiledDependency {
  const where = `dependency "${dep.name}": filters`;
  const f = dep.filters;
  const checks: EventCheck[] = [];
  let script: Program | undefined;
  try {
    if (f?.context) {
      const c = compileContextFilter(f.context, where);
      checks.push((ev) => c(ev));
    }
    if (f?.time) {
      const t = compileTimeFilter(f.time);
      const w = `${where}.time`;
      checks.push((ev, now) => {
        const why = t.check(eventTime(ev, now));
        return why ? new Fail(`${w}: ${why}`, false) : undefined;
      });
    }
    if (f?.data?.length) {
      const d = compileDataFilters(f.data, isOr(f.dataLogicalOperator), where);
      checks.push((ev) => d(ev.data));
    }
    const x = f ? compileExprs(f, where) : undefined;
    if (x) checks.push((ev) => x(ev.data));
    if (f?.script) {
      script = host.program('lua', f.script);
    }
  } catch (e) {
    if (e instanceof DependencyConfigError) throw e;
    throw new DependencyConfigError(
      (e as Error).message.startsWith('dependency "')
        ? (e as Error).message
        : `${where}: ${(e as Error).message}`,
    );
  }
  const or = isOr(dep.filtersLogicalOperator);
  const scriptWhere = `${where}.script`;
  const scriptResult = (out: unknown): Fail | undefined =>
    out === true ? undefined : new Fail(`${scriptWhere}: did not return true`, false);
  const scriptError = (e: unknown): Fail => new Fail(`${scriptWhere}: ${(e as Error).message}`, true, e);
  const finish = (
    fails: Fail[],
    passedAny: boolean,
    scriptFail: Fail | undefined | 'absent',
  ): Fail | undefined => {
    if (scriptFail !== 'absent') {
      if (!scriptFail) passedAny = true;
      else fails.push(scriptFail);
    }
    if (!or) return fails[0];
    if (passedAny || (fails.length === 0 && scriptFail === 'absent' && checks.length === 0)) return undefined;
    if (fails.length === 1) return fails[0];
    return new Fail(
      `dependency "${dep.name}": no filter passed (filtersLogicalOperator "or"): ${fails.map((x) => x.reason).join('; ')}`,
      fails.some((x) => x.error),
      fails.find((x) => x.error)?.cause,
    );
  };

  /** The inline checks (data, exprs, context, time) on one work budget; undefined: go on to the script. */
  const inline = (ev: CloudEvent, now: Date | undefined, fails: Fail[]): Fail | 'passed-any' | undefined => {
    let passedAny = false;
    for (const c of checks) {
      const r = c(ev, now);
      if (r) {
        if (!or) return r;
        fails.push(r);
      } else passedAny = true;
    }
    return passedAny ? 'passed-any' : undefined;
  };
  const evaluate = (ev: CloudEvent, now: Date | undefined): Fail | undefined | Promise<Fail | undefined> => {
    const fails: Fail[] = [];
    const r = checks.length ? metered(new Meter(), () => inline(ev, now, fails)) : undefined;
    if (r instanceof Fail) return r;
    const passedAny = r === 'passed-any';
    if (!script) return finish(fails, passedAny, 'absent');
    if (or && passedAny) return undefined;
    let out: unknown;
    try {
      out = script.run(ev.data);
    } catch (e) {
      return finish(fails, passedAny, scriptError(e));
    }
    if (out instanceof Promise) {
      return out.then(
        (v: unknown) => finish(fails, passedAny, scriptResult(v)),
        (e: unknown) => finish(fails, passedAny, scriptError(e)),
      );
    }
    return finish(fails, passedAny, scriptResult(out));
  };

  const toBool = (r: Fail | undefined): boolean => {
    if (!r) return true;
    if (r.error) throw new FilterEvaluationError(r.reason, r.cause);
    return false;
  };

  const transform = compileTransform(dep, host);
  return {
    name: dep.name,
    check(ev, now) {
      const r = evaluate(ev, now);
      return r instanceof Promise ? r.then(toResult) : toResult(r);
    },
    matches(ev, now) {
      const r = evaluate(ev, now);
      return r instanceof Promise ? r.then(toBool) : toBool(r);
    },
    transform,
  };
}

const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`);

function compileTransform(
  dep: EventDependency,
  host: ProgramHost,
): (ev: CloudEvent) => CloudEvent | Promise<CloudEvent> {
  const t = dep.transform;
  if (!t || (!t.jq && !t.script)) return (ev) => ev;
  const where = `dependency "${dep.name}": transform`;
  if (t.jq && t.script) throw new DependencyConfigError(`${where}: set either jq or script, not both`);
  const what = t.jq ? 'jq' : 'script';
  const wrap = (e: unknown): TransformError =>
    e instanceof TransformError ? e : new TransformError(`${where}.${what}: ${(e as Error).message}`, e);
  let program: Program;
  try {
    program = t.jq ? host.program('jq', t.jq) : host.program('lua', t.script!);
  } catch (e) {
    throw new DependencyConfigError(`${where}.${what}: ${(e as Error).message}`);
  }
  const result = (ev: CloudEvent, out: unknown): CloudEvent => {
    let data = out;
    if (t.jq) {
      const outs = out as unknown[];
      if (!outs.length) throw new TransformError(`${where}.jq: the program produced no output`);
      data = outs[0];
      if (data === null || typeof data !== 'object' || Array.isArray(data))
        throw new TransformError(`${where}.jq: the result must be a JSON object, got ${typeName(data)}`);
    } else if (data === null || typeof data !== 'object') {
      throw new TransformError(`${where}.script: the script must return a table, got ${typeName(data)}`);
    }
    return { ...ev, data, datacontenttype: 'application/json' };
  };
  return (ev) => {
    let out: unknown;
    try {
      out = program.run(ev.data);
    } catch (e) {
      throw wrap(e);
    }
    if (out instanceof Promise)
      return out.then(
        (v: unknown) => result(ev, v),
        (e: unknown) => {
          throw wrap(e);
        },
      );
    return result(ev, out);
  };
}

/**
 * Compiles a dependency's filters and transform. Throws DependencyConfigError for anything
 * invalid that can be seen without the Lua/jq runtimes (all of it, once they are loaded).
 */
export function compileDependency(
  dep: EventDependency,
  host: ProgramHost = inProcess(true),
): CompiledDependency {
  try {
    return build(dep, host);
  } catch (e) {
    if (e instanceof DependencyConfigError) throw e;
    throw new DependencyConfigError(`dependency "${dep.name}": ${(e as Error).message}`);
  }
}

/** Loads the Lua and jq runtimes first, so every error (Lua and jq syntax too) shows here. */
export async function compileDependencyAsync(dep: EventDependency): Promise<CompiledDependency> {
  if (dep.filters?.script) await loadLua();
  if (dep.transform?.jq) await loadJq();
  if (dep.transform?.script) await loadLua();
  return compileDependency(dep);
}

/** Programs run by `sandbox` (the Sensor's worker pool): nothing user-written runs on the event loop. */
export function sandboxHost(sandbox: Pick<Sandbox, 'run'>): ProgramHost {
  return { program: (lang, source) => ({ run: (input) => sandbox.run(lang, source, input) }) };
}

/**
 * Compiles a dependency whose jq and Lua programs run in `sandbox`; they are compiled there first,
 * so a syntax error is a DependencyConfigError here, at Sensor start.
 */
export async function compileDependencySandboxed(
  dep: EventDependency,
  sandbox: Pick<Sandbox, 'run' | 'check'>,
): Promise<CompiledDependency> {
  const where = `dependency "${dep.name}"`;
  const checks: Array<[string, 'jq' | 'lua', string | undefined]> = [
    ['filters.script', 'lua', dep.filters?.script],
    ['transform.jq', 'jq', dep.transform?.jq],
    ['transform.script', 'lua', dep.transform?.script],
  ];
  for (const [what, lang, src] of checks) {
    if (!src) continue;
    try {
      await sandbox.check(lang, src);
    } catch (e) {
      throw new DependencyConfigError(`${where}: ${what}: ${(e as Error).message}`);
    }
  }
  return compileDependency(dep, sandboxHost(sandbox));
}
