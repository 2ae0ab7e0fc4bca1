// What the Sensor sends to a sandbox worker and what comes back (structured-clone values only).

export type Lang = 'jq' | 'lua';

export interface EvalTask {
  /** "check": compile only (errors at Sensor start); "run": run on `input`. */
  op: 'check' | 'run';
  lang: Lang;
  source: string;
  input?: unknown;
  /**
   * The worker writes Date.now() at [0] when it picks the task up and at [1] when the program
   * starts running, so the deadline counts the program's run time only.
   */
  started?: BigInt64Array;
  /** Cap of each wasm instance's linear memory and of a Lua state's allocations, in bytes. */
  memoryBytes: number;
  /** Lua instructions per run. */
  luaInstructions: number;
  /** Largest result a run may hand back, as JSON bytes; over it the run fails as "memory". */
  outputBytes: number;
}

/** Why a program failed: its own error, memory exhausted, or the engine trapped. */
export type EvalFailure = 'program' | 'memory' | 'timeout' | 'crash';

export type EvalReply = { ok: true; value: unknown } | { ok: false; failure: EvalFailure; message: string };

/** What every worker gets at start: jq's module compiled once, with its memory cap. */
export interface SandboxWorkerData {
  jqModule: WebAssembly.Module;
  jqCap: number;
}
