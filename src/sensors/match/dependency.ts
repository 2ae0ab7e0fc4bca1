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
        return new Fail(`${w}: ${(err as Error).message}`, true);
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

function build(dep: EventDependency, eager: boolean): CompiledDependency {
  const where = `dependency "${dep.name}": filters`;
  const f = dep.filters;
  const checks: EventCheck[] = [];
  let script: Lazy<LuaProgram> | undefined;
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
      const src = f.script;
      script = new Lazy(luaLoaded, loadLua, () => compileLua(src), eager);
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
  const runScript = (p: LuaProgram, ev: CloudEvent): Fail | undefined => {
    try {
      return p.run(ev.data) === true ? undefined : new Fail(`${scriptWhere}: did not return true`, false);
    } catch (e) {
      return new Fail(`${scriptWhere}: ${(e as Error).message}`, true);
    }
  };
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
    );
  };

  const evaluate = (ev: CloudEvent, now: Date | undefined): Fail | undefined | Promise<Fail | undefined> => {
    const fails: Fail[] = [];
    let passedAny = false;
    for (const c of checks) {
      const r = c(ev, now);
      if (r) {
        if (!or) return r;
        fails.push(r);
      } else passedAny = true;
    }
    if (!script) return finish(fails, passedAny, 'absent');
    if (or && passedAny) return undefined;
    let prog: LuaProgram | Promise<LuaProgram>;
    try {
      prog = script.get();
    } catch (e) {
      return finish(fails, passedAny, new Fail(`${scriptWhere}: ${(e as Error).message}`, true));
    }
    if (prog instanceof Promise) {
      return prog.then(
        (p) => finish(fails, passedAny, runScript(p, ev)),
        (e: Error) => finish(fails, passedAny, new Fail(`${scriptWhere}: ${e.message}`, true)),
      );
    }
    return finish(fails, passedAny, runScript(prog, ev));
  };

  const toBool = (r: Fail | undefined): boolean => {
    if (!r) return true;
    if (r.error) throw new FilterEvaluationError(r.reason);
    return false;
  };

  const transform = compileTransform(dep, eager);
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
  eager: boolean,
): (ev: CloudEvent) => CloudEvent | Promise<CloudEvent> {
  const t = dep.transform;
  if (!t || (!t.jq && !t.script)) return (ev) => ev;
  const where = `dependency "${dep.name}": transform`;
  if (t.jq && t.script) throw new DependencyConfigError(`${where}: set either jq or script, not both`);
  const withData = (ev: CloudEvent, data: unknown): CloudEvent => ({
    ...ev,
    data,
    datacontenttype: 'application/json',
  });
  const wrap = (e: unknown, what: string) =>
    e instanceof TransformError ? e : new TransformError(`${where}.${what}: ${(e as Error).message}`);
  if (t.jq) {
    const program = t.jq;
    let jq: Lazy<JqProgram>;
    try {
      jq = new Lazy<JqProgram>(jqLoaded, loadJq, () => compileJq(program), eager);
    } catch (e) {
      throw new DependencyConfigError(`${where}.jq: ${(e as Error).message}`);
    }
    const apply = (p: JqProgram, ev: CloudEvent): CloudEvent => {
      let outs: unknown[];
      try {
        outs = p.run(ev.data);
      } catch (e) {
        throw wrap(e, 'jq');
      }
      if (!outs.length) throw new TransformError(`${where}.jq: the program produced no output`);
      const out = outs[0];
      if (out === null || typeof out !== 'object' || Array.isArray(out))
        throw new TransformError(`${where}.jq: the result must be a JSON object, got ${typeName(out)}`);
      return withData(ev, out);
    };
    return (ev) => {
      let p: JqProgram | Promise<JqProgram>;
      try {
        p = jq.get();
      } catch (e) {
        throw wrap(e, 'jq');
      }
      if (p instanceof Promise)
        return p.then(
          (x) => apply(x, ev),
          (e) => {
            throw wrap(e, 'jq');
          },
        );
      return apply(p, ev);
    };
  }
  const src = t.script!;
  let lua: Lazy<LuaProgram>;
  try {
    lua = new Lazy<LuaProgram>(luaLoaded, loadLua, () => compileLua(src), eager);
  } catch (e) {
    throw new DependencyConfigError(`${where}.script: ${(e as Error).message}`);
  }
  const apply = (p: LuaProgram, ev: CloudEvent): CloudEvent => {
    let out: unknown;
    try {
      out = p.run(ev.data);
    } catch (e) {
      throw wrap(e, 'script');
    }
    if (out === null || typeof out !== 'object')
      throw new TransformError(`${where}.script: the script must return a table, got ${typeName(out)}`);
    return withData(ev, out);
  };
  return (ev) => {
    let p: LuaProgram | Promise<LuaProgram>;
    try {
      p = lua.get();
    } catch (e) {
      throw wrap(e, 'script');
    }
    if (p instanceof Promise)
      return p.then(
        (x) => apply(x, ev),
        (e) => {
          throw wrap(e, 'script');
        },
      );
    return apply(p, ev);
  };
}

/**
 * Compiles a dependency's filters and transform. Throws DependencyConfigError for anything
 * invalid that can be seen without the Lua/jq runtimes (all of it, once they are loaded).
 */
export function compileDependency(dep: EventDependency): CompiledDependency {
  try {
    return build(dep, true);
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
