// The few WebAssembly globals the sandbox uses, typed here (the project's TypeScript libs carry no
// DOM/WebAssembly value declarations).

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
export type WasmModule = WebAssembly.Module;
export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (module: WasmModule, imports: unknown) => WasmInstance;
  Memory: abstract new (...args: never[]) => WasmMemory;
  RuntimeError: new (...args: never[]) => Error;
}

export const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
