// Runs bin/sluice as a user would (a subprocess, standard input a pipe, so not a terminal) and
// checks the shape of a user error: exit status 2, one line on stderr naming the subcommand, no
// stack trace.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';

export const bin = new URL('../../../bin/sluice', import.meta.url).pathname;

/** A Sensor manifest `sluice lint` accepts (named orders, in the default namespace). */
export const SENSOR = `apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: orders}
spec:
  dependencies: [{name: d, eventSourceName: hooks, eventName: orders}]
  triggers: [{template: {name: log, log: {}}}]
`;

/** A fresh temp folder and a `write(relativePath, text)` into it that makes the folders and returns the path. */
export function scratch(prefix: string): { dir: string; write: (name: string, text: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const write = (name: string, text: string) => {
    const p = join(dir, name);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, text);
    return p;
  };
  return { dir, write };
}

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A HOME with no kubeconfig and no NATS context, and no KUBECONFIG / NATS_* variables. */
export function bareEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(KUBECONFIG|KUBERNETES_|NATS_|SLUICE_NATS_URL|XDG_CONFIG_HOME)/.test(k)) env[k] = v;
  // The Node running the tests, so the new HOME does not make scripts/node.sh install one.
  return {
    ...env,
    HOME: mkdtempSync(join(tmpdir(), 'sluice-home-')),
    SLUICE_NODE: process.execPath,
    ...extra,
  };
}

/**
 * Runs `bin/sluice args`, feeding `input` on stdin; kills it after `timeoutMs`. With `tty`, it
 * runs on a pseudo-terminal (util-linux `script`), so it can ask; everything it prints, stderr
 * included, then arrives on stdout.
 */
export function sluice(
  args: string[],
  o: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; tty?: boolean } = {},
): Promise<Result> {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const [cmd, argv] = o.tty
    ? ['script', ['-qec', [bin, ...args].map(quote).join(' '), '/dev/null']]
    : [bin, args];
  const p = spawn(cmd, argv, { env: o.env ?? bareEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  p.stdin.end(o.input ?? '');
  return outcome(p, o.timeoutMs);
}

/** Runs `command` under bash (a pipeline into "$SLUICE", which is bin/sluice), as a user types it. */
export function shell(
  command: string,
  o: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Result> {
  const p = spawn('bash', ['-c', command], { env: { ...(o.env ?? bareEnv()), SLUICE: bin } });
  p.stdin.end();
  return outcome(p, o.timeoutMs);
}

/** Everything `p` printed and its exit status; it is killed after `timeoutMs`. */
function outcome(p: ChildProcessWithoutNullStreams, timeoutMs = 60_000): Promise<Result> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    p.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Exit 2, exactly one line on stderr starting `sluice <command>: ` and matching `message`. */
export function expectUserError(r: Result, command: string, message: RegExp): void {
  const lines = r.stderr.split('\n').filter(Boolean);
  expect({ code: r.code, lines }).toEqual({ code: 2, lines: [expect.stringMatching(message)] });
  expect(lines[0]!.startsWith(`sluice${command ? ` ${command}` : ''}: `)).toBe(true);
  expect(r.stderr).not.toMatch(/\n\s+at |Error:/);
}
