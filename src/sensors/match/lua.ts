// Lua for script filters and script transforms, run by wasmoon (Lua 5.4 compiled to WebAssembly)
// in a sandbox: only the base, string, table, math and utf8 libraries, without load, dofile,
// loadfile, print, collectgarbage or debug; no io, os, package or require. Each run gets fresh
// globals and library tables (nothing leaks from one event to the next, as upstream creates a new
// Lua state per event; see WRAPPER), with the event payload as the global `event`. Runs are
// bounded by an instruction count and each script's memory is capped.
import { LuaEngine, LuaFactory, LuaLibraries } from 'wasmoon';

export class LuaScriptError extends Error {
  readonly code = 'LuaScriptError';
}

/** Instructions one run may execute before it is stopped. */
export const LUA_INSTRUCTION_LIMIT = 10_000_000;
/** Memory one script may allocate. */
export const LUA_MEMORY_LIMIT = 64 * 1024 * 1024;
/** Largest payload (as JSON) handed to a script. */
export const LUA_MAX_EVENT_BYTES = 4 * 1024 * 1024;

export type LuaModule = Awaited<ReturnType<LuaFactory['getLuaModule']>>;
let loading: Promise<LuaModule> | undefined;
let lua: LuaModule | undefined;

/** Loads the Lua WebAssembly module once per process. */
export function loadLua(): Promise<void> {
  loading ??= new LuaFactory().getLuaModule().then((m) => {
    lua = m;
    return m;
  });
  return loading.then(() => undefined);
}
export const luaLoaded = (): boolean => lua !== undefined;

/** A fresh Lua WebAssembly instance (its own linear memory), for the sandbox workers. */
export function newLuaRuntime(): Promise<LuaModule> {
  return new LuaFactory().getLuaModule();
}

/** Bytes of linear memory `m` holds now (it grows and is never given back). */
export function luaRuntimeBytes(m: LuaModule): number {
  const heap = (m as unknown as { module?: { HEAPU8?: Uint8Array } }).module?.HEAPU8;
  return heap?.byteLength ?? 0;
}

// The wrapper keeps what the script must not reach in locals, loads the script once, and runs it
// in a coroutine whose instruction hook stops it: an error (or the hook) ends the coroutine, never
// the wrapper, so nothing escapes to the unprotected call from JavaScript. Nothing one run does
// can run or change anything during a later run (the state is reused, as a fresh one per event
// costs 15 times more): every run gets its own globals and its own copies of the string, table,
// math and utf8 libraries; the string metatable is hidden, so the library behind ("x"):upper()
// cannot be reached; and setmetatable never marks a table for finalization, so no __gc set up by
// one event runs during another's (upstream's gopher-lua runs no finalizers either).
const WRAPPER = `
local sethook, setupvalue, setmetatable, pairs, tostring = debug.sethook, debug.setupvalue, setmetatable, pairs, tostring
local rawget, rawset, type, pcall, error = rawget, rawset, type, pcall, error
local create, resume = coroutine.create, coroutine.resume
local fn, err = load(__sluice_src, "=script", "t")
__sluice_src = nil
if not fn then error(err, 0) end
local safe = {}
for k, v in pairs(_G) do safe[k] = v end
for _, k in pairs({ "debug", "load", "dofile", "loadfile", "print", "collectgarbage", "coroutine", "_G" }) do safe[k] = nil end
local libs = {}
for _, k in pairs({ "string", "table", "math", "utf8" }) do libs[k] = safe[k]; safe[k] = nil end
local function copy(t) local c = {} for k, v in pairs(t) do c[k] = v end return c end
getmetatable("").__metatable = false
safe.setmetatable = function(t, mt)
  local gc = type(mt) == "table" and rawget(mt, "__gc") or nil
  if gc == nil then return setmetatable(t, mt) end
  rawset(mt, "__gc", nil)
  local ok, res = pcall(setmetatable, t, mt)
  rawset(mt, "__gc", gc)
  if not ok then error(res, 2) end
  return res
end
local meta = { __index = safe, __metatable = false }
local limit = __sluice_limit
__sluice_limit = nil
local function stop() error("script stopped: more than " .. limit .. " instructions", 0) end
local function hook() sethook(stop, "", 1); stop() end
function __sluice_run(event)
  local env = setmetatable({
    event = event, string = copy(libs.string), table = copy(libs.table), math = copy(libs.math), utf8 = copy(libs.utf8),
  }, meta)
  env._G = env
  setupvalue(fn, 1, env)
  local co = create(fn)
  sethook(co, hook, "", limit)
  local ok, res = resume(co)
  if not ok then return false, tostring(res) end
  return true, res
end
for _, k in pairs({ "debug", "load", "dofile", "loadfile", "print", "collectgarbage", "coroutine" }) do _G[k] = nil end
`;

/** JSON → Lua-friendly values: null members are dropped (upstream does the same). */
function toLuaValue(v: unknown): unknown {
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v)) return v.filter((x) => x !== null && x !== undefined).map(toLuaValue);
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>))
      if (x !== null && x !== undefined) out[k] = toLuaValue(x);
    return out;
  }
  return v;
}

/** Lua results → JSON values: tables with keys 1..n become arrays, others objects. */
function fromLuaValue(v: unknown, depth = 0): unknown {
  if (depth > 100) throw new LuaScriptError('result nested too deeply');
  if (v === null || v === undefined) return null;
  if (typeof v === 'function') throw new LuaScriptError('result contains a function');
  if (Array.isArray(v)) return v.map((x) => fromLuaValue(x, depth + 1));
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    const n = entries.length;
    if (n > 0 && entries.every(([k]) => /^[1-9][0-9]*$/.test(k) && Number(k) <= n)) {
      const arr: unknown[] = new Array(n).fill(null);
      for (const [k, x] of entries) arr[Number(k) - 1] = fromLuaValue(x, depth + 1);
      return arr;
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of entries) out[k] = fromLuaValue(x, depth + 1);
    return out;
  }
  return v;
}

export interface LuaProgram {
  /** Runs the script with `event` bound to the payload; returns its first result as JSON. */
  run(event: unknown): unknown;
  close(): void;
}

export interface LuaLimits {
  /** Instructions one run may execute (default LUA_INSTRUCTION_LIMIT). */
  instructions?: number;
  /** Bytes the script's Lua state may allocate (default LUA_MEMORY_LIMIT). */
  memoryBytes?: number;
}

/**
 * Compiles a script on `runtime` (default: the process-wide one, after loadLua()). Throws
 * LuaScriptError on a syntax error.
 */
export function compileLua(
  source: string,
  runtime: LuaModule | undefined = lua,
  limits: LuaLimits = {},
): LuaProgram {
  if (!runtime) throw new LuaScriptError('the Lua runtime is not loaded yet (await loadLua() first)');
  const engine = new LuaEngine(runtime, {
    openStandardLibs: false,
    injectObjects: false,
    enableProxy: false,
    traceAllocations: true,
  });
  const g = engine.global;
  for (const lib of [
    LuaLibraries.Base,
    LuaLibraries.Table,
    LuaLibraries.String,
    LuaLibraries.Math,
    LuaLibraries.UTF8,
    LuaLibraries.Debug,
    LuaLibraries.Coroutine,
  ]) {
    g.loadLibrary(lib);
  }
  g.setMemoryMax(limits.memoryBytes ?? LUA_MEMORY_LIMIT);
  g.set('__sluice_src', source);
  g.set('__sluice_limit', limits.instructions ?? LUA_INSTRUCTION_LIMIT);
  try {
    engine.doStringSync(WRAPPER);
  } catch (e) {
    g.close();
    throw new LuaScriptError(`syntax error: ${cleanLuaMessage(e)}`);
  }
  return {
    run(event) {
      const input = toLuaValue(event);
      // Converting the payload allocates outside the protected run; keep it well under the cap.
      if (JSON.stringify(input ?? null).length > LUA_MAX_EVENT_BYTES)
        throw new LuaScriptError(`event data larger than ${LUA_MAX_EVENT_BYTES} bytes is not passed to Lua`);
      try {
        const out = g.call('__sluice_run', input);
        if (out[0] !== true) throw new LuaScriptError(cleanLuaMessage(String(out[1])));
        return fromLuaValue(out[1]);
      } catch (e) {
        if (e instanceof LuaScriptError) throw e;
        throw new LuaScriptError(cleanLuaMessage(e));
      } finally {
        // Keep the stack clean between runs.
        g.setTop(0);
      }
    },
    close: () => g.close(),
  };
}

function cleanLuaMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg
    .replace(/^Error: /, '')
    .replace(/^\[string "[^"]*"\]:\d+: /, '')
    .replace(/^script:(\d+): /, 'line $1: ');
}
