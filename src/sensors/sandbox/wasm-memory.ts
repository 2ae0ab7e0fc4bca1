// Caps a WebAssembly module's own linear memory. V8's worker `resourceLimits` bound the JavaScript
// heap only; a module's memory grows outside it up to the maximum written in the module (jq-wasm
// ships 256 MiB, wasmoon 2 GiB). Rewriting that maximum in the memory section makes `memory.grow`
// fail past the cap, so a runaway allocation ends as an allocation failure (jq aborts, Lua's
// allocator returns NULL) inside the module instead of taking the process's memory.

/** One WebAssembly page (64 KiB). */
export const WASM_PAGE = 64 * 1024;

export class WasmPatchError extends Error {
  readonly code = 'WasmPatchError';
}

interface Leb {
  value: number;
  start: number;
  end: number;
}

function readLeb(b: Uint8Array, at: number): Leb {
  let value = 0;
  let shift = 0;
  let p = at;
  for (;;) {
    if (p >= b.length || shift > 28) throw new WasmPatchError('truncated or oversized LEB128 number');
    const x = b[p++]!;
    value += (x & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(x & 0x80)) break;
  }
  return { value, start: at, end: p };
}

/** Writes `value` over `leb` using exactly the same number of bytes (padded LEB128, valid in wasm). */
function writeLebInPlace(b: Uint8Array, leb: Leb, value: number): void {
  const n = leb.end - leb.start;
  if (value >= 2 ** (7 * n)) throw new WasmPatchError(`${value} does not fit in ${n} LEB128 bytes`);
  let v = value;
  for (let i = 0; i < n; i++) {
    const last = i === n - 1;
    b[leb.start + i] = (v & 0x7f) | (last ? 0 : 0x80);
    v = Math.floor(v / 128);
  }
}

/**
 * A copy of `wasm` whose defined memories may grow to at most `maxBytes` (rounded down to whole
 * pages, never below a memory's initial size). Throws WasmPatchError when the binary cannot be
 * read, has no memory of its own, or the cap does not fit in the existing encoding.
 */
export function capWasmMemory(wasm: Uint8Array, maxBytes: number): Uint8Array {
  const b = new Uint8Array(wasm);
  if (b[0] !== 0 || b[1] !== 0x61 || b[2] !== 0x73 || b[3] !== 0x6d)
    throw new WasmPatchError('not a wasm module');
  const pages = Math.floor(maxBytes / WASM_PAGE);
  let p = 8;
  let patched = 0;
  while (p < b.length) {
    const id = b[p++]!;
    const size = readLeb(b, p);
    const body = size.end;
    if (id === 5) {
      const count = readLeb(b, body);
      let q = count.end;
      for (let i = 0; i < count.value; i++) {
        const flags = b[q++]!;
        if (flags & 0x04) throw new WasmPatch64Error();
        const initial = readLeb(b, q);
        q = initial.end;
        if (flags & 0x01) {
          const max = readLeb(b, q);
          q = max.end;
          writeLebInPlace(b, max, Math.max(initial.value, Math.min(max.value, pages)));
          patched++;
        } else {
          throw new WasmPatchError('memory has no maximum to lower (unbounded memories are not patched)');
        }
      }
    }
    p = body + size.value;
  }
  if (!patched) throw new WasmPatchError('the module defines no memory');
  return b;
}

class WasmPatch64Error extends WasmPatchError {
  constructor() {
    super('64-bit memories are not supported');
  }
}
