// The sandbox worker (a piscina worker thread): runs jq and Lua programs for the Sensor. Each
// engine is a WebAssembly instance with capped linear memory; an instance that trapped (abort,
// allocation failure) is dropped and a fresh one made for the next task, and one whose memory grew
// past a quarter of the cap is recycled after the task so its memory goes back to the system.
// Runaway loops are stopped from outside: the pool terminates this thread at the deadline.
import { workerData } from 'node:worker_threads';
import { compileJq, isJqError, type JqProgram, type JqRuntime, newJqRuntime } from '../match/jq.ts';
import type { LuaModule, LuaProgram } from '../match/lua.ts';
import { exceedsJsonSize } from './output-size.ts';
import type { EvalFailure, EvalReply, EvalTask, SandboxWorkerData } from './protocol.ts';
import { Wasm } from './wasm.ts';

// Lua (wasmoon, 1.3 MB of JavaScript) is loaded only by workers that get a Lua task; jq's module
// comes compiled from the pool, so a replacement worker is ready in a few milliseconds.
const shared = (workerData ?? {}) as Partial<SandboxWorkerData>;
let luaApi: typeof import('../match/lua.ts') | undefined;
const lua = async () => {
  luaApi ??= await import('../match/lua.ts');
  return luaApi;
};

const MAX_CACHED = 64;

interface Engines {
  jq?: { rt: JqRuntime; programs: Map<string, JqProgram>; cap: number };
  lua?: { rt: LuaModule; programs: Map<string, LuaProgram>; cap: number; instructions: number };
}
const engines: Engines = {};

function dropLua() {
  for (const p of engines.lua?.programs.values() ?? []) {
    try {
      p.close();
    } catch {
      // the instance is going away anyway
    }
  }
  delete engines.lua;
}

async function jqProgram(t: EvalTask): Promise<JqProgram> {
  let e = engines.jq;
  if (!e || e.cap !== t.memoryBytes) {
    const compiled = shared.jqCap === t.memoryBytes ? shared.jqModule : undefined;
    e = { rt: await newJqRuntime(t.memoryBytes, compiled), programs: new Map(), cap: t.memoryBytes };
    engines.jq = e;
  }
  let p = e.programs.get(t.source);
  if (!p) {
    p = compileJq(t.source, e.rt.jq);
    if (e.programs.size >= MAX_CACHED) e.programs.clear();
    e.programs.set(t.source, p);
  }
  return p;
}

async function luaProgram(t: EvalTask): Promise<LuaProgram> {
  let e = engines.lua;
  if (!e || e.cap !== t.memoryBytes || e.instructions !== t.luaInstructions) {
    dropLua();
    const { newLuaRuntime } = await lua();
    e = {
      rt: await newLuaRuntime(),
      programs: new Map(),
      cap: t.memoryBytes,
      instructions: t.luaInstructions,
    };
    engines.lua = e;
  }
  let p = e.programs.get(t.source);
  if (!p) {
    p = (await lua()).compileLua(t.source, e.rt, {
      memoryBytes: t.memoryBytes,
      instructions: t.luaInstructions,
    });
    if (e.programs.size >= MAX_CACHED) {
      const [oldest, prog] = e.programs.entries().next().value as [string, LuaProgram];
      prog.close();
      e.programs.delete(oldest);
    }
    e.programs.set(t.source, p);
  }
  return p;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

function classifyLua(msg: string): EvalFailure {
  if (/not enough memory/i.test(msg)) return 'memory';
  if (/script stopped: more than \d+ instructions/.test(msg)) return 'timeout';
  return 'program';
}

/** Recycles engines that trapped or grew, so neither a broken instance nor its memory is kept. */
function afterTask(t: EvalTask, trapped: boolean) {
  if (t.lang === 'jq' && engines.jq && (trapped || engines.jq.rt.memoryBytes() > t.memoryBytes / 4))
    delete engines.jq;
  if (
    t.lang === 'lua' &&
    engines.lua &&
    (trapped || (luaApi?.luaRuntimeBytes(engines.lua.rt) ?? 0) > t.memoryBytes / 2)
  )
    dropLua();
}

/**
 * Marks the start of the user program's run: the deadline counts from here. Setting up an engine
 * (a fresh worker loads and instantiates it) and compiling a program from the spec count as queue
 * time, so a replacement worker's warm-up never makes a good event time out.
 */
const startClock = (t: EvalTask) => {
  if (t.started) Atomics.store(t.started, 1, BigInt(Date.now()));
};

/** The reply for a run's result: refused when it is larger than the task allows. */
const resultReply = (t: EvalTask, value: unknown): EvalReply =>
  exceedsJsonSize(value, t.outputBytes)
    ? {
        ok: false,
        failure: 'memory',
        message: `the result is larger than ${t.outputBytes} bytes as JSON (the largest a program may hand back)`,
      }
    : { ok: true, value };

export default async function evaluate(t: EvalTask): Promise<EvalReply> {
  if (t.started) Atomics.store(t.started, 0, BigInt(Date.now()));
  let trapped = false;
  try {
    if (t.lang === 'jq') {
      const p = await jqProgram(t);
      startClock(t);
      return t.op === 'run' ? resultReply(t, p.run(t.input)) : { ok: true, value: null };
    }
    const p = await luaProgram(t);
    startClock(t);
    return t.op === 'run' ? resultReply(t, p.run(t.input)) : { ok: true, value: null };
  } catch (e) {
    const msg = message(e);
    if (t.lang === 'jq') {
      if (isJqError(e) || (e as { code?: string }).code === 'JqError')
        return { ok: false, failure: 'program', message: msg };
      trapped = true;
      return {
        ok: false,
        failure: 'memory',
        message: `the jq engine aborted (out of its ${Math.round(t.memoryBytes / 1048576)} MiB memory limit or an internal error): ${msg}`,
      };
    }
    if (e instanceof Wasm.RuntimeError) {
      trapped = true;
      return { ok: false, failure: 'crash', message: `the Lua engine trapped: ${msg}` };
    }
    // e.g. a payload nested too deeply to convert: the engine state is unknown, start afresh.
    if (e instanceof RangeError) trapped = true;
    return { ok: false, failure: classifyLua(msg), message: msg };
  } finally {
    afterTask(t, trapped);
  }
}
