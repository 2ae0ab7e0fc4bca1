// jq for dependency transforms, run by jq-wasm (jq 1.8 compiled to WebAssembly; its `env` is an
// empty emulated environment, not the Sensor's). Upstream uses gojq; the language is the same.
import { type Jq, JqError, loadJq as loadJqWasm } from 'jq-wasm';

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

const clean = (e: unknown) =>
  (e instanceof Error ? e.message : String(e))
    .replace(/^jq: error( \(at [^)]*\))?: /, '')
    .replace(/\njq: \d+ compile errors?$/, '')
    .trim();

export interface JqProgram {
  /** All outputs of the program for this input. */
  run(input: unknown): unknown[];
}

/** Checks the program compiles (without running it) and returns a runner. */
export function compileJq(program: string): JqProgram {
  if (!jq) throw new JqProgramError('the jq runtime is not loaded yet (await loadJq() first)');
  const j = jq;
  try {
    // Compiles the program but never runs it: a syntax error or unknown function fails here.
    j.json(null, `if false then (${program}\n) else empty end`);
  } catch (e) {
    throw new JqProgramError(`cannot compile: ${clean(e)}`);
  }
  return {
    run(input) {
      try {
        return j.json(input ?? null, program);
      } catch (e) {
        if (e instanceof JqError) throw new JqProgramError(clean(e));
        throw new JqProgramError(clean(e));
      }
    },
  };
}
