// Shared by the harnesses of the servers the round-2 source/trigger tests run (Kafka, moto,
// azurite, nsqd, MinIO, sshd): where `make tools` put each one, why one is missing (for a skip
// title), and a process wrapper that waits for the port and can be killed and started again on
// the same data, for "server down" tests.
import { existsSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { type ManagedProcess, waitFor } from './proc.ts';
import { cacheDir, toolVersions } from './tools.ts';

/** `~/.cache/sluice/tools/<name>-<version>`, from tools/versions.env. */
export function cachedToolDir(name: string, versionKey: string): string {
  return join(cacheDir(), 'tools', `${name}-${toolVersions()[versionKey]}`);
}

/** The path of `file` inside the cached tool folder, or a skip reason naming how to get it. */
export function cachedTool(
  name: string,
  versionKey: string,
  file: string,
): { path: string; missing?: undefined } | { path?: undefined; missing: string } {
  const path = join(cachedToolDir(name, versionKey), file);
  return existsSync(path)
    ? { path }
    : { missing: `${name} ${toolVersions()[versionKey]} is not installed (run \`make tools\`)` };
}

export const portOpen = (port: number, host = '127.0.0.1') =>
  new Promise<boolean>((resolve) => {
    const s = createConnection({ host, port }, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

/** A server process on known ports: `kill()` (SIGKILL, as a crash) then `start()` again on the same data. */
export class PortServer {
  readonly proc: ManagedProcess;
  private readonly port: number;
  private readonly bootMs: number;

  constructor(proc: ManagedProcess, port: number, bootMs = 30_000) {
    this.proc = proc;
    this.port = port;
    this.bootMs = bootMs;
  }

  async start(): Promise<void> {
    this.proc.start();
    await waitFor(
      `${this.proc.name} on :${this.port}`,
      async () => {
        if (!this.proc.running) throw new Error(`${this.proc.name} exited: ${this.proc.tail()}`);
        return portOpen(this.port);
      },
      { timeoutMs: this.bootMs, intervalMs: 200, onTimeout: () => this.proc.tail() },
    );
  }

  kill(): Promise<void> {
    return this.proc.kill();
  }

  stop(): Promise<void> {
    return this.proc.stop(5_000);
  }

  log(): string {
    return existsSync(this.proc.logFile) ? readFileSync(this.proc.logFile, 'utf8') : '';
  }
}
