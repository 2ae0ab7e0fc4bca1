// Helper processes of the benchmarks (sink, load generator, bare server, EventSource/Sensor
// roles) run as forked Node processes and answer requests over the IPC channel:
//   parent → child  { id, cmd, args }
//   child  → parent { id, ok, result | error }, and once { ready: data } at start.
// A child exits when its parent goes away (the IPC channel closes).

import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export interface Child<R = unknown> {
  proc: ChildProcess;
  /** What the child reported when it became ready (ports and the like). */
  ready: R;
  call<T = unknown>(cmd: string, args?: unknown): Promise<T>;
  stop(): Promise<void>;
}

/**
 * What `sluice sensor` and `sluice eventsource` run with, so a role child is measured as deployed:
 * bin/sluice's `sensor_flags` / `eventsource_flags` V8 flags, --expose-gc, and the allocator
 * settings it exports for every role (MALLOC_*: without them a role process starts ~20 MiB larger).
 */
const SLUICE_SCRIPT = readFileSync(new URL('../../bin/sluice', import.meta.url), 'utf8');
const isRole = (role: string | undefined) => role === 'sensor' || role === 'eventsource';
const roleFlags = (role: string | undefined): string[] =>
  isRole(role)
    ? [
        ...(new RegExp(`^${role}_flags="([^"]*)"`, 'm').exec(SLUICE_SCRIPT)?.[1] ?? '')
          .split(' ')
          .filter(Boolean),
        '--expose-gc',
      ]
    : [];
const ROLE_ENV = Object.fromEntries(
  [...SLUICE_SCRIPT.matchAll(/^export (MALLOC_\w+)="\$\{\1:-(\d+)\}"/gm)].map((m) => [
    m[1]!,
    process.env[m[1]!] ?? m[2]!,
  ]),
);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILD = join(ROOT, '.bench-build');
let built = false;

/**
 * The script a role child runs: as the image runs sluice, JavaScript built from the sources
 * (scripts/build.sh with tsconfig.bench.json into .bench-build/, once per benchmark process), so
 * its memory and CPU are those of a pod and not of Node's TypeScript type stripper (~25-30 MiB).
 * BENCH_FROM_SOURCE=1 runs the .ts sources instead. Other children run `script` as it is.
 */
function runnable(script: URL, role: string | undefined): URL {
  if (!isRole(role) || process.env.BENCH_FROM_SOURCE === '1') return script;
  if (!built) {
    execFileSync(join(ROOT, 'scripts/build.sh'), [BUILD, join(ROOT, 'tsconfig.bench.json')], {
      stdio: 'inherit',
    });
    built = true;
  }
  return pathToFileURL(join(BUILD, relative(ROOT, fileURLToPath(script)).replace(/\.ts$/, '.js')));
}

/**
 * Forks `script` (a .ts file run by the same Node) and waits for its ready message. A role child
 * (`args[0]` sensor or eventsource) runs as bin/sluice runs that command, built (see runnable). `wrap` is a command
 * prefix the child runs under (e.g. `['nsenter', '--net=…', '--']`, to run it in another network
 * namespace); it must exec Node in the same process so the pid and the IPC channel stay the child's.
 */
export async function startChild<R = unknown>(
  script: URL,
  args: string[] = [],
  readyTimeoutMs = 20_000,
  wrap: string[] = [],
): Promise<Child<R>> {
  // BENCH_FLAGS_<role> adds Node flags to one role's child, e.g. to profile it:
  // BENCH_FLAGS_eventsource="--cpu-prof --cpu-prof-dir=/tmp/prof" node bench/webhook.ts
  const extra = (process.env[`BENCH_FLAGS_${args[0]}`] ?? '').split(' ').filter(Boolean);
  const execArgv = ['--disable-warning=ExperimentalWarning', ...roleFlags(args[0]), ...extra];
  const proc = fork(fileURLToPath(runnable(script, args[0])), args, {
    ...(isRole(args[0]) ? { env: { ...process.env, ...ROLE_ENV } } : {}),
    ...(wrap.length > 0
      ? { execPath: wrap[0], execArgv: [...wrap.slice(1), process.execPath, ...execArgv] }
      : { execArgv }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 0;
  const ready = await new Promise<R>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script.pathname} not ready in ${readyTimeoutMs} ms`)),
      readyTimeoutMs,
    );
    proc.once('exit', (code) => reject(new Error(`${script.pathname} exited (${code}) before it was ready`)));
    proc.on('message', (m: unknown) => {
      const msg = m as Partial<Reply> & { ready?: R };
      if ('ready' in msg) {
        clearTimeout(timer);
        resolve(msg.ready as R);
        return;
      }
      const w = waiting.get(msg.id ?? -1);
      if (!w) return;
      waiting.delete(msg.id!);
      if (msg.ok) w.resolve(msg.result);
      else w.reject(new Error(`${script.pathname}: ${msg.error}`));
    });
  });
  proc.on('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`${script.pathname} exited (${code})`));
    waiting.clear();
  });
  return {
    proc,
    ready,
    call<T>(cmd: string, a?: unknown): Promise<T> {
      const id = next++;
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        proc.send({ id, cmd, args: a });
      });
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

type Handler = (args: never) => unknown;

/** Child side: answers commands with `handlers`, after reporting `ready`. */
export function serveParent(ready: unknown, handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error('this script runs as a child of a benchmark (no IPC channel)');
  process.on('message', (m: unknown) => {
    const { id, cmd, args } = m as { id: number; cmd: string; args: unknown };
    const h = handlers[cmd];
    Promise.resolve()
      .then(() => {
        if (!h) throw new Error(`unknown command ${cmd}`);
        return (h as (a: unknown) => unknown)(args);
      })
      .then(
        (result) => process.send?.({ id, ok: true, result }),
        (err: unknown) => process.send?.({ id, ok: false, error: (err as Error)?.message ?? String(err) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  process.send({ ready });
}
