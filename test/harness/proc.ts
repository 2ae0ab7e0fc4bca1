// A child process the harness owns: output goes to a log file, it can be stopped gracefully or
// SIGKILLed, and every live one is killed if the test process exits.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export class ManagedProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<number | null> = Promise.resolve(null);

  readonly name: string;
  readonly command: string;
  readonly args: string[];
  readonly logFile: string;
  readonly env: NodeJS.ProcessEnv;

  constructor(
    name: string,
    command: string,
    args: string[],
    logFile: string,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.name = name;
    this.command = command;
    this.args = args;
    this.logFile = logFile;
    this.env = env;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    const fd = openSync(this.logFile, 'a');
    writeSync(fd, `\n=== ${new Date().toISOString()} start: ${this.command} ${this.args.join(' ')}\n`);
    const child = spawn(this.command, this.args, { stdio: ['ignore', fd, fd], env: this.env });
    closeSync(fd);
    live.add(child);
    this.child = child;
    this.exit = new Promise((resolve) => {
      child.once('exit', (code) => {
        live.delete(child);
        resolve(code);
      });
      child.once('error', (err) => {
        live.delete(child);
        const efd = openSync(this.logFile, 'a');
        writeSync(efd, `spawn error: ${err.message}\n`);
        closeSync(efd);
        resolve(null);
      });
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.child || !this.running) return;
    const child = this.child;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exit;
    clearTimeout(timer);
  }

  /** SIGKILL: no chance to flush or clean up, as in a crash. */
  async kill(): Promise<void> {
    if (!this.child || !this.running) return;
    this.child.kill('SIGKILL');
    await this.exit;
  }

  /** Resolves with the exit code once the process has ended. */
  exited(): Promise<number | null> {
    return this.exit;
  }

  tail(lines = 40): string {
    if (!existsSync(this.logFile)) return '';
    return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
  }
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number; onTimeout?: () => string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      const extra = opts.onTimeout ? `\n${opts.onTimeout()}` : '';
      throw new Error(`timed out waiting for ${what}${detail}${extra}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
