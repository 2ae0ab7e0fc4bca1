// The nats-server `sluice dev` starts when no --nats-url is given: JetStream on loopback with its
// store under the state folder, so events survive a restart of `sluice dev`.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, createWriteStream, mkdirSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { CliError } from '../cli/errors.ts';

const executable = (p: string) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** $SLUICE_NATS_SERVER, then the `make tools` cache (newest first), then PATH. */
export function findNatsServer(): string | undefined {
  const explicit = process.env.SLUICE_NATS_SERVER;
  if (explicit) return executable(explicit) ? explicit : undefined;
  const cache = join(
    process.env.SLUICE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'sluice'),
    'tools',
  );
  try {
    const dirs = readdirSync(cache)
      .filter((d) => d.startsWith('nats-server-'))
      .sort()
      .reverse();
    for (const d of dirs) if (executable(join(cache, d, 'nats-server'))) return join(cache, d, 'nats-server');
  } catch {
    // no cache
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  }
  return undefined;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface LocalNats {
  url: string;
  binary: string;
  stop(): Promise<void>;
}

export async function startLocalNats(stateDir: string, preferredPort = 4222): Promise<LocalNats> {
  const binary = findNatsServer();
  if (!binary) {
    throw new CliError(
      'NotFound',
      'no nats-server found: run `make tools` (builds one into the cache), put nats-server 2.10+ on PATH, ' +
        'set SLUICE_NATS_SERVER, or pass --nats-url for a server you already run',
    );
  }
  const store = join(stateDir, 'nats');
  mkdirSync(store, { recursive: true });
  const port = (await portFree(preferredPort)) ? preferredPort : await freePort();
  const log = createWriteStream(join(stateDir, 'nats-server.log'), { flags: 'a' });
  const child: ChildProcess = spawn(
    binary,
    ['-a', '127.0.0.1', '-p', String(port), '--jetstream', '--store_dir', store],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const url = `nats://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`nats-server exited with ${child.exitCode}; see ${join(stateDir, 'nats-server.log')}`);
    }
    try {
      const nc = await connect({ servers: url, reconnect: false, timeout: 500 });
      await nc.close();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`nats-server did not start on ${url} within 15 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    binary,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(t);
          log.end();
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
