// The sandbox that runs jq and Lua off the event loop: deadlines (counted from the start of the
// run, not the queue), memory caps (wasm linear memory and Lua allocator), engines replaced after
// a trap, and the main loop responsive whatever a program does.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import { Sandbox, type SandboxError } from '../../../src/sensors/sandbox/pool.ts';
import { capWasmMemory, WASM_PAGE, WasmPatchError } from '../../../src/sensors/sandbox/wasm-memory.ts';

const err = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as SandboxError,
  );

/** Counts event-loop ticks while `p` runs: a blocked loop would count ~0. */
async function ticksDuring<T>(p: Promise<T>): Promise<number> {
  let n = 0;
  const t = setInterval(() => n++, 20);
  await p.catch(() => {});
  clearInterval(t);
  return n;
}

describe('capWasmMemory', () => {
  const jqWasm = readFileSync(createRequire(import.meta.url).resolve('jq-wasm/jq.wasm'));
  it('lowers the maximum of the module memory in place (module still valid)', () => {
    const capped = capWasmMemory(jqWasm, 32 * 1024 * 1024);
    expect(capped.length).toBe(jqWasm.length);
    expect(
      (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly.validate(
        capped,
      ),
    ).toBe(true);
    // Memory section: find the limits again and read the max.
    const find = (b: Uint8Array) => {
      let p = 8;
      const leb = () => {
        let r = 0;
        let s = 0;
        let x: number;
        do {
          x = b[p++]!;
          r += (x & 0x7f) * 2 ** s;
          s += 7;
        } while (x & 0x80);
        return r;
      };
      while (p < b.length) {
        const id = b[p++]!;
        const size = leb();
        const start = p;
        if (id === 5) {
          leb();
          p++;
          const initial = leb();
          return { initial, max: leb() };
        }
        p = start + size;
      }
      return undefined;
    };
    expect(find(jqWasm)!.max).toBeGreaterThan(512);
    expect(find(capped)).toEqual({ initial: find(jqWasm)!.initial, max: (32 * 1024 * 1024) / WASM_PAGE });
    // never below the initial size
    expect(find(capWasmMemory(jqWasm, 1))!.max).toBe(find(jqWasm)!.initial);
  });
  it('refuses what is not a wasm module', () => {
    expect(() => capWasmMemory(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 1 << 20)).toThrow(WasmPatchError);
  });
});

describe('Sandbox', () => {
  const sb = new Sandbox({ timeoutMs: 600, memoryMiB: 64, workers: 2 });
  afterAll(() => sb.close());

  it('runs jq and Lua and reports program errors as such', async () => {
    expect(await sb.run('jq', '.a + 1', { a: 1 })).toEqual([2]);
    expect(await sb.run('lua', 'return { b = event.a * 2 }', { a: 4 })).toEqual({ b: 8 });
    expect((await err(sb.run('lua', 'error("boom")', {}))).code).toBe('EvalProgramError');
    expect((await err(sb.check('jq', '.a +'))).code).toBe('EvalProgramError');
    expect((await err(sb.run('jq', '.a.b', { a: 1 }))).code).toBe('EvalProgramError');
  });

  it('a jq loop is stopped at the deadline, its worker replaced; the loop stays responsive', async () => {
    const started = Date.now();
    const run = sb.run('jq', 'last(range(1e15))', {});
    const ticks = await ticksDuring(run);
    const e = await err(run);
    expect(e.code).toBe('EvalTimeout');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(ticks).toBeGreaterThan(10);
    expect(await sb.run('jq', '.x', { x: 'after' })).toEqual(['after']);
  });

  it('a jq allocation hits the memory cap (trap) and the next call gets a fresh engine', async () => {
    const e = await err(sb.run('jq', '[range(3e7)]', {}));
    expect(['EvalMemory', 'EvalTimeout']).toContain(e.code);
    expect(await sb.run('jq', '.x', { x: 1 })).toEqual([1]);
  });

  it('Lua loops stop (instruction limit or deadline), including C-level pattern backtracking', async () => {
    expect((await err(sb.run('lua', 'while true do end', {}))).code).toBe('EvalTimeout');
    const slow = 'return string.find(string.rep("a", 5000), string.rep("a-", 30) .. "b")';
    expect((await err(sb.run('lua', slow, {}))).code).toBe('EvalTimeout');
    const mem = 'local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1000) .. i end';
    expect(['EvalMemory', 'EvalTimeout']).toContain((await err(sb.run('lua', mem, {}))).code);
    expect(await sb.run('lua', 'return event.a', { a: 9 })).toBe(9);
  });

  it('the deadline counts run time only: calls queued behind runaways still succeed', async () => {
    const one = new Sandbox({ timeoutMs: 400, workers: 1 });
    try {
      const loops = [
        err(one.run('jq', 'last(range(1e15))', {})),
        err(one.run('jq', 'last(range(1e15))', {})),
      ];
      const good = one.run('jq', '.ok', { ok: true });
      expect(await good).toEqual([true]);
      for (const l of loops) expect((await l).code).toBe('EvalTimeout');
    } finally {
      await one.close();
    }
  });

  it('nothing one Lua run sets up runs or changes anything during a later run (report break 8)', async () => {
    const one = new Sandbox({ timeoutMs: 1000, workers: 1 });
    // The adversary's filter: a __gc finalizer that loops forever, set up by a few events; then
    // innocent events that allocate enough for the collector to run (on one reused state).
    const script = [
      'if event.cleanup then setmetatable({}, {__gc = function() while true do end end}) end',
      'if event.poison then string.upper = function() return "poisoned" end end',
      'local t = {}',
      'for i = 1, 200 do t[i] = string.rep("b", 500) .. i end',
      'return ("a"):upper() == "A" and string.upper("a") == "A"',
    ].join('\n');
    try {
      for (let i = 0; i < 3; i++) expect(await one.run('lua', script, { cleanup: true })).toBe(true);
      expect(await one.run('lua', script, { poison: true })).toBe(false);
      const outcomes = { ok: 0, failed: [] as string[] };
      for (let i = 0; i < 150; i++) {
        await one.run('lua', script, { n: i }).then(
          (v) => (v === true ? outcomes.ok++ : outcomes.failed.push(String(v))),
          (e: SandboxError) => outcomes.failed.push(e.code),
        );
      }
      expect(outcomes).toEqual({ ok: 150, failed: [] });
      // the real string library cannot be reached through the string metatable
      expect(await one.run('lua', 'return getmetatable("")', {})).toBe(false);
      const meta = setmetatableKept(one);
      expect(await meta).toBe(true);
    } finally {
      await one.close();
    }
  });

  it('a closed sandbox refuses calls as busy (the event is retried, not blamed)', async () => {
    const s = new Sandbox();
    await s.close();
    expect((await err(s.run('jq', '.', {}))).code).toBe('EvalBusy');
  });
});

/** setmetatable with a __gc field still returns the table and keeps the metatable as given. */
function setmetatableKept(sb: Sandbox): Promise<unknown> {
  return sb.run(
    'lua',
    [
      'local mt = { __gc = function() end, __index = { x = 1 } }',
      'local t = setmetatable({}, mt)',
      'return getmetatable(t) == mt and mt.__gc ~= nil and t.x == 1',
    ].join('\n'),
    {},
  );
}
