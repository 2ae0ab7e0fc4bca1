// The sandbox: jq and Lua programs of a Sensor run in a piscina worker-thread pool, never on the
// Sensor's event loop. Each call has a deadline counted from when a worker starts running the
// program (queue time and engine warm-up do not count against it); at the deadline the worker thread is terminated and
// piscina starts a new one. Each worker's JavaScript heap is bounded by V8 resourceLimits, and
// each WebAssembly engine's linear memory by the cap written into its module (jq) or its Lua
// state's allocator limit (Lua); a worker that runs out of heap dies and is replaced. So whatever
// one event's program does, the main loop, /healthz and SIGTERM stay responsive and the other
// events are evaluated by the other workers (or by the replacement).
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { cappedJqModule } from '../match/jq.ts';
import type { EvalFailure, EvalReply, EvalTask, Lang, SandboxWorkerData } from './protocol.ts';

/** Limits of user programs (jq, Lua); a Sensor can override them in `spec.evaluation`. */
export interface SandboxLimits {
  /** Longest one call may run (ms). */
  timeoutMs: number;
  /** Memory of one engine (wasm linear memory cap, Lua allocator cap) and of a worker's JS heap (MiB). */
  memoryMiB: number;
  /** Worker threads (each with its own engines). */
  workers: number;
  /** Lua instructions per call (a cheap stop before the deadline for plain Lua loops). */
  luaInstructions: number;
  /** Longest a call may wait for a free worker before it fails as "busy" (retried later) (ms). */
  maxQueueWaitMs: number;
  /**
   * Largest result one call may hand back, as JSON bytes (the runtime sets the bus's max_payload:
   * a transformed event must fit where any event fits). Checked in the worker, before the result
   * is copied to the Sensor's heap; over it the call fails as EvalMemory.
   */
  outputBytes: number;
}

export const DEFAULT_SANDBOX_LIMITS: SandboxLimits = {
  timeoutMs: 2000,
  memoryMiB: 64,
  workers: 2,
  luaInstructions: 10_000_000,
  maxQueueWaitMs: 30_000,
  outputBytes: 1024 * 1024,
};

export type EvalErrorCode = 'EvalProgramError' | 'EvalTimeout' | 'EvalMemory' | 'EvalCrash' | 'EvalBusy';

const CODE: Record<EvalFailure, EvalErrorCode> = {
  program: 'EvalProgramError',
  timeout: 'EvalTimeout',
  memory: 'EvalMemory',
  crash: 'EvalCrash',
};

/** A jq/Lua call that did not produce a value. `code` says why; EvalBusy is not the event's fault. */
export class SandboxError extends Error {
  readonly code: EvalErrorCode;
  constructor(code: EvalErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

// The worker next to this module: worker.ts in a checkout, worker.js in a build (scripts/build.sh).
const WORKER = fileURLToPath(
  new URL(import.meta.url.endsWith('.js') ? './worker.js' : './worker.ts', import.meta.url),
);

export class Sandbox {
  readonly limits: SandboxLimits;
  private readonly pool: Promise<Piscina>;
  private closed = false;

  constructor(limits: Partial<SandboxLimits> = {}) {
    this.limits = { ...DEFAULT_SANDBOX_LIMITS, ...limits };
    const memoryBytes = this.limits.memoryMiB * 1048576;
    this.pool = cappedJqModule(memoryBytes).then(
      (jqModule) =>
        new Piscina({
          filename: WORKER,
          // A fixed-size pool: piscina replaces a terminated worker only up to minThreads.
          minThreads: this.limits.workers,
          maxThreads: this.limits.workers,
          idleTimeout: 60_000,
          concurrentTasksPerWorker: 1,
          // Workers must not inherit the Sensor's flags (e.g. --inspect), only what type stripping needs.
          execArgv: ['--disable-warning=ExperimentalWarning'],
          workerData: { jqModule, jqCap: memoryBytes } satisfies SandboxWorkerData,
          resourceLimits: {
            maxOldGenerationSizeMb: this.limits.memoryMiB,
            maxYoungGenerationSizeMb: 16,
            stackSizeMb: 4,
          },
        }),
    );
  }

  /** Compiles the program in a worker; throws SandboxError (EvalProgramError for a syntax error). */
  async check(lang: Lang, source: string): Promise<void> {
    // At start the workers may still be warming up: wait for one as long as it takes (a minute).
    await this.call({ op: 'check', lang, source }, Math.max(this.limits.maxQueueWaitMs, 60_000));
  }

  /** Runs the program on `input`: jq gives all its outputs, Lua its first result (as JSON). */
  run(lang: Lang, source: string, input: unknown): Promise<unknown> {
    return this.call({ op: 'run', lang, source, input });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await (await this.pool).destroy();
  }

  private async call(
    t: Omit<EvalTask, 'memoryBytes' | 'luaInstructions' | 'started' | 'outputBytes'>,
    maxQueueWaitMs = this.limits.maxQueueWaitMs,
  ): Promise<unknown> {
    if (this.closed) throw new SandboxError('EvalBusy', 'the sandbox is closed (the Sensor is stopping)');
    // [0]: when a worker picked the call up, [1]: when the program started running (ms).
    const started = new BigInt64Array(new SharedArrayBuffer(16));
    const ac = new AbortController();
    const stop = this.watchdog(started, ac, maxQueueWaitMs);
    let reply: EvalReply;
    try {
      const pool = await this.pool;
      reply = (await pool.run(
        {
          ...t,
          started,
          memoryBytes: this.limits.memoryMiB * 1048576,
          luaInstructions: this.limits.luaInstructions,
          outputBytes: this.limits.outputBytes,
        },
        { signal: ac.signal },
      )) as EvalReply;
    } catch (err) {
      if (ac.signal.aborted && ac.signal.reason instanceof SandboxError) throw ac.signal.reason;
      const code = (err as { code?: string }).code;
      if (code === 'ERR_WORKER_OUT_OF_MEMORY')
        throw new SandboxError(
          'EvalMemory',
          `the program used more than ${this.limits.memoryMiB} MiB of heap; its worker was replaced`,
        );
      if (this.closed) throw new SandboxError('EvalBusy', 'the sandbox is closed (the Sensor is stopping)');
      throw new SandboxError('EvalCrash', `the program's worker failed: ${(err as Error).message}`);
    } finally {
      stop();
    }
    if (reply.ok) return reply.value;
    throw new SandboxError(CODE[reply.failure], reply.message);
  }

  /**
   * Aborts the call at its deadline (terminating its worker), or while it still waits in the queue
   * after `maxQueueWaitMs` (EvalBusy: piscina just drops it from the queue). A call a worker has
   * picked up and is setting up an engine for is never aborted as busy (that would kill a worker
   * mid warm-up); it gets the queue wait again for the setup, then fails as a crash.
   */
  private watchdog(clock: BigInt64Array, ac: AbortController, maxQueueWaitMs: number): () => void {
    const { timeoutMs } = this.limits;
    const enqueued = Date.now();
    let timer: NodeJS.Timeout;
    const fail = (code: EvalErrorCode, message: string) => ac.abort(new SandboxError(code, message));
    const tick = () => {
      const picked = Number(Atomics.load(clock, 0));
      const running = Number(Atomics.load(clock, 1));
      const now = Date.now();
      let next: number;
      if (running) {
        next = running + timeoutMs;
        if (now >= next)
          return fail(
            'EvalTimeout',
            `the program ran longer than ${timeoutMs} ms; its worker was terminated`,
          );
      } else if (picked) {
        next = picked + maxQueueWaitMs;
        if (now >= next)
          return fail(
            'EvalCrash',
            `the sandbox worker did not get ready in ${maxQueueWaitMs} ms; it was replaced`,
          );
      } else {
        next = enqueued + maxQueueWaitMs;
        if (now >= next) return fail('EvalBusy', `no sandbox worker was free for ${maxQueueWaitMs} ms`);
      }
      timer = setTimeout(tick, Math.max(1, Math.min(timeoutMs, next - now)));
    };
    timer = setTimeout(tick, Math.min(timeoutMs, maxQueueWaitMs));
    return () => clearTimeout(timer);
  }
}
