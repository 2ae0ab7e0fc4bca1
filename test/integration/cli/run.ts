// Runs bin/sluice as a user would (a subprocess, standard input a pipe, so not a terminal) and
// checks the shape of a user error: exit status 2, one line on stderr naming the subcommand, no
// stack trace.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';

const bin = new URL('../../../bin/sluice', import.meta.url).pathname;

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
  return new Promise((resolve) => {
    const p = spawn(cmd, argv, { env: o.env ?? bareEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    p.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(o.input ?? '');
  });
}

/** Exit 2, exactly one line on stderr starting `sluice <command>: ` and matching `message`. */
export function expectUserError(r: Result, command: string, message: RegExp): void {
  const lines = r.stderr.split('\n').filter(Boolean);
  expect({ code: r.code, lines }).toEqual({ code: 2, lines: [expect.stringMatching(message)] });
  expect(lines[0]!.startsWith(`sluice${command ? ` ${command}` : ''}: `)).toBe(true);
  expect(r.stderr).not.toMatch(/\n\s+at |Error:/);
}
