// jq for dependency transforms, run by jq-wasm (jq 1.8 compiled to WebAssembly; its `env` is an
// empty emulated environment, not the Sensor's). Upstream uses gojq; the language is the same.
// The Sensor runs programs in the sandbox worker pool (../sandbox), each worker on its own jq
// instance whose linear memory is capped (newJqRuntime); the process-wide instance here serves
// compile checks and tests.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type Jq, JqError, loadJq as loadJqWasm } from 'jq-wasm';
import { Wasm, type WasmMemory, type WasmModule } from '../sandbox/wasm.ts';
import { capWasmMemory } from '../sandbox/wasm-memory.ts';

export class JqProgramError extends Error {
  readonly code = 'JqError';
}

let loading: Promise<Jq> | undefined;
let jq: Jq | undefined;

/** Loads the jq WebAssembly module once per process. */
export function loadJq(): Promise<void> {
  loading ??= loadJqWasm().then((j) => {
    jq = j;
    return j;
  });
  return loading.then(() => undefined);
}
export const jqLoaded = (): boolean => jq !== undefined;

const modules = new Map<number, WasmModule>();

export interface JqRuntime {
  jq: Jq;
  /** Bytes of linear memory the instance holds now (it grows and is never given back). */
  memoryBytes(): number;
}

/** The jq module with its memory capped at `maxBytes`, compiled once per process (shareable with workers). */
export async function cappedJqModule(maxBytes: number): Promise<WasmModule> {
  let mod = modules.get(maxBytes);
  if (!mod) {
    const path = createRequire(import.meta.url).resolve('jq-wasm/jq.wasm');
    mod = await Wasm.compile(capWasmMemory(readFileSync(path), maxBytes));
    modules.set(maxBytes, mod);
  }
  return mod;
}

/**
 * A fresh jq instance (its own linear memory) whose memory cannot grow past `maxBytes`: an
 * allocation past it makes jq abort (a trap) instead of growing. `compiled` is cappedJqModule()'s
 * result when the caller has it (a worker gets it from the pool), else it is compiled here.
 */
export async function newJqRuntime(maxBytes: number, compiled?: WasmModule): Promise<JqRuntime> {
  const mod = compiled ?? (await cappedJqModule(maxBytes));
  const m = mod;
  let memory: WasmMemory | undefined;
  const j = await loadJqWasm({
    instantiateWasm(imports, onSuccess) {
      const instance = new Wasm.Instance(m, imports);
      memory = Object.values(instance.exports).find((x): x is WasmMemory => x instanceof Wasm.Memory);
      onSuccess(instance as never, m);
    },
  });
  return { jq: j, memoryBytes: () => memory?.buffer.byteLength ?? 0 };
}

const clean = (e: unknown) =>
  (e instanceof Error ? e.message : String(e))
    .replace(/^jq: error( \(at [^)]*\))?: /, '')
    .replace(/\njq: \d+ compile errors?$/, '')
    .trim();

export interface JqProgram {
  /** All outputs of the program for this input. */
  run(input: unknown): unknown[];
}

/** True for jq's own errors (a program error); anything else thrown by the engine is a trap. */
export const isJqError = (e: unknown): boolean => e instanceof JqError;

/**
 * Checks the program compiles (without running it) and returns a runner on `runtime` (default:
 * the process-wide instance). Program errors throw JqProgramError; an engine trap (abort, out of
 * memory) is rethrown as is, and the instance must not be used again.
 */
export function compileJq(program: string, runtime: Jq | undefined = jq): JqProgram {
  if (!runtime) throw new JqProgramError('the jq runtime is not loaded yet (await loadJq() first)');
  const j = runtime;
  try {
    // Compiles the program but never runs it: a syntax error or unknown function fails here.
    j.json(null, `if false then (${program}\n) else empty end`);
  } catch (e) {
    if (!(e instanceof JqError)) throw e;
    throw new JqProgramError(`cannot compile: ${clean(e)}`);
  }
  return {
    run(input) {
      try {
        return j.json(input ?? null, program);
      } catch (e) {
        if (e instanceof JqError) throw new JqProgramError(clean(e));
        throw e;
      }
    },
  };
}
