// Azurite's queue service (the npm devDependency) for the azureQueueStorage tests, on a free
// loopback port with its own workspace, checking shared-key signatures of the well-known
// development account. Run with this process's Node.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { ManagedProcess } from './proc.ts';
import { PortServer } from './servers.ts';

const MAIN = new URL('../../node_modules/azurite/dist/src/queue/main.js', import.meta.url).pathname;

/** Azurite's documented development account (public, not a secret). */
export const DEV_ACCOUNT = 'devstoreaccount1';
export const DEV_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export function azuriteMissing(): string | null {
  return existsSync(MAIN) ? null : 'azurite is not installed (npm devDependency; run `make deps`)';
}

export interface Azurite {
  port: number;
  /** A connection string for `port` (default: Azurite's own), with `key` (default: the right one). */
  connectionString(opts?: { port?: number; key?: string }): string;
  server: PortServer;
  stop(): Promise<void>;
}

export async function startAzurite(): Promise<Azurite> {
  const missing = azuriteMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-azurite-'));
  const port = await freePort();
  const proc = new ManagedProcess(
    'azurite-queue',
    process.execPath,
    [
      MAIN,
      '--queueHost',
      '127.0.0.1',
      '--queuePort',
      String(port),
      '--location',
      dir,
      '--silent',
      '--skipApiVersionCheck',
      '--disableTelemetry',
    ],
    join(dir, 'azurite.log'),
  );
  const server = new PortServer(proc, port, 30_000);
  await server.start();
  return {
    port,
    connectionString: (o = {}) =>
      `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${o.key ?? DEV_KEY};QueueEndpoint=http://127.0.0.1:${o.port ?? port}/${DEV_ACCOUNT};`,
    server,
    stop: () => server.stop(),
  };
}
