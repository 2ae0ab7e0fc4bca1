// A real JetStream nats-server on loopback with its own store folder; stoppable, SIGKILLable and
// restartable on the same store and port (fault tests depend on that).
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { ManagedProcess, waitFor } from './proc.ts';
import { requireTool } from './tools.ts';

export interface NatsServerOptions {
  /** Folder for the JetStream store and the log; a fresh temp folder when omitted. */
  dir?: string;
  /** Extra nats-server arguments, e.g. ['--max_payload', '2MB']. */
  args?: string[];
  /** Another nats-server binary (e.g. an older release); the tool cache's current one when omitted. */
  bin?: string;
}

export interface NatsServer {
  url: string;
  port: number;
  monitorPort: number;
  storeDir: string;
  logFile: string;
  /** Graceful stop (SIGTERM). */
  stop(): Promise<void>;
  /** SIGKILL, as in a crash. */
  kill(): Promise<void>;
  /** Starts again on the same port and store; waits until JetStream is ready. */
  start(): Promise<void>;
  restart(): Promise<void>;
  running(): boolean;
  logTail(lines?: number): string;
}

export async function startNats(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = opts.bin ?? requireTool('nats-server');
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'sluice-nats-'));
  const storeDir = join(dir, 'store');
  mkdirSync(storeDir, { recursive: true });
  const port = await freePort();
  const monitorPort = await freePort();
  const logFile = join(dir, 'nats-server.log');
  const args = [
    '--addr',
    '127.0.0.1',
    '--port',
    String(port),
    '--http_port',
    String(monitorPort),
    '--jetstream',
    '--store_dir',
    storeDir,
    '--server_name',
    `sluice-test-${port}`,
    ...(opts.args ?? []),
  ];
  const proc = new ManagedProcess('nats-server', bin, args, logFile);

  const ready = () =>
    waitFor(
      `nats-server on :${port} to report JetStream healthy`,
      async () => {
        if (!proc.running) throw new Error('nats-server exited');
        const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz?js-enabled-only=true`);
        return res.ok;
      },
      { timeoutMs: 20_000, intervalMs: 50, onTimeout: () => proc.tail() },
    );

  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorPort,
    storeDir,
    logFile,
    stop: () => proc.stop(),
    kill: () => proc.kill(),
    async start() {
      proc.start();
      await ready();
    },
    async restart() {
      await proc.stop();
      await server.start();
    },
    running: () => proc.running,
    logTail: (lines) => proc.tail(lines),
  };
  await server.start();
  return server;
}
