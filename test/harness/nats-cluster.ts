// A secured JetStream bus on loopback made of 1 or 3 real nats-server processes, configured by the
// same generator as the managed bus (src/bus/server-config.ts): the bus account owning JetStream
// with the admin, per-role NKey users in their own account slots with subject permissions and
// service imports, routes with a password and mutual TLS, client TLS from a generated CA. Servers
// can be SIGKILLed and restarted on their store; users can be changed with a config reload
// (SIGHUP), as the reloader does in the cluster.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { createUser, fromSeed } from '@nats-io/nkeys';
import type { BusConnectOptions } from '../../src/bus/connection.ts';
import { BusConnection } from '../../src/bus/connection.ts';
import type { Permissions } from '../../src/bus/permissions.ts';
import { issueBusPki } from '../../src/bus/pki.ts';
import { type NatsUser, natsServerConfig, type StorageLimits } from '../../src/bus/server-config.ts';
import { freePort } from './ports.ts';
import { ManagedProcess, waitFor } from './proc.ts';
import { requireTool } from './tools.ts';

export interface Credential {
  seed: string;
  publicKey: string;
}

export function newCredential(): Credential {
  const kp = createUser();
  return { seed: new TextDecoder().decode(kp.getSeed()), publicKey: kp.getPublicKey() };
}

export interface ClusterServer {
  name: string;
  clientPort: number;
  clusterPort: number;
  monitorPort: number;
  url: string;
  proc: ManagedProcess;
  configFile: string;
}

export interface NatsCluster {
  servers: ClusterServer[];
  /** All client URLs, comma-separated (a BusConfig url). */
  url: string;
  ca: string;
  caFile: string;
  dir: string;
  routeUser: string;
  routePassword: string;
  admin: Credential;
  /** Connection options for a role's credential (TLS with the CA, NKey seed, inbox prefix). */
  options(seed: string, inboxPrefix?: string): BusConnectOptions & { inboxPrefix?: string };
  connect(seed: string, inboxPrefix?: string): Promise<BusConnection>;
  /**
   * Replaces the role users (the admin stays) and reloads every running server. Each takes
   * account slot `slot`, or its index in the list.
   */
  setUsers(users: Array<{ publicKey: string; permissions: Permissions; slot?: number }>): Promise<void>;
  kill(i: number): Promise<void>;
  start(i: number): Promise<void>;
  /** Index of the server leading `stream` (asked over the admin connection). */
  leaderOf(stream: string): Promise<number>;
  stop(): Promise<void>;
  logs(): string;
}

async function healthy(s: ClusterServer, allJs: boolean): Promise<void> {
  await waitFor(
    `${s.name} healthy`,
    async () => {
      if (!s.proc.running) throw new Error(`${s.name} exited:\n${s.proc.tail(30)}`);
      const q = allJs ? '' : '?js-enabled-only=true';
      const r = await fetch(`http://127.0.0.1:${s.monitorPort}/healthz${q}`).catch(() => undefined);
      return r?.ok === true;
    },
    { timeoutMs: 30_000, intervalMs: 100, onTimeout: () => s.proc.tail(40) },
  );
}

export interface ClusterOptions {
  /** Account slots declared at start (default 16; setUsers cannot go beyond them). */
  accountSlots?: number;
  /** Explicit JetStream limits of each server (default: the server's own). */
  storage?: StorageLimits;
}

/** Starts `size` servers (1 or 3) and waits until JetStream has a meta leader. */
export async function startNatsCluster(size: 1 | 3 = 3, o: ClusterOptions = {}): Promise<NatsCluster> {
  const bin = requireTool('nats-server');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cluster-'));
  const pki = await issueBusPki(['127.0.0.1', 'localhost']);
  const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
  writeFileSync(files.ca, pki.ca);
  writeFileSync(files.cert, pki.cert);
  writeFileSync(files.key, pki.key, { mode: 0o600 });
  const admin = newCredential();
  const routeUser = 'route';
  const routePassword = Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString('hex');
  const servers: ClusterServer[] = [];
  for (let i = 0; i < size; i++) {
    const [clientPort, clusterPort, monitorPort] = [await freePort(), await freePort(), await freePort()];
    const name = `bus-${i}`;
    const sdir = join(dir, name);
    mkdirSync(sdir, { recursive: true });
    const configFile = join(sdir, 'nats.conf');
    servers.push({
      name,
      clientPort,
      clusterPort,
      monitorPort,
      url: `nats://127.0.0.1:${clientPort}`,
      configFile,
      proc: new ManagedProcess(name, bin, ['--config', configFile], join(sdir, 'nats-server.log')),
    });
  }
  let roleUsers: NatsUser[] = [];
  const writeConfigs = () => {
    for (const s of servers) {
      writeFileSync(
        s.configFile,
        natsServerConfig({
          serverName: s.name,
          listen: `127.0.0.1:${s.clientPort}`,
          monitor: `127.0.0.1:${s.monitorPort}`,
          storeDir: join(dir, s.name, 'store'),
          maxPayload: '1MB',
          clientTls: files,
          accountSlots: o.accountSlots ?? 16,
          ...(o.storage ? { storage: o.storage } : {}),
          users: [{ nkey: admin.publicKey }, ...roleUsers],
          ...(size > 1
            ? {
                cluster: {
                  name: 'bus',
                  listen: `127.0.0.1:${s.clusterPort}`,
                  peers: servers.map((p) => `127.0.0.1:${p.clusterPort}`),
                  user: routeUser,
                  password: routePassword,
                  tls: files,
                },
              }
            : {}),
        }),
      );
    }
  };
  writeConfigs();
  for (const s of servers) s.proc.start();
  for (const s of servers) await healthy(s, false);

  const options = (seed: string, inboxPrefix?: string) => ({
    url: servers.map((s) => s.url).join(','),
    auth: { nkeySeed: seed },
    tls: { ca: pki.ca },
    connectTimeoutMs: 10_000,
    reconnectInitialMs: 100,
    reconnectMaxMs: 1000,
    ...(inboxPrefix ? { inboxPrefix } : {}),
  });
  const cluster: NatsCluster = {
    servers,
    url: servers.map((s) => s.url).join(','),
    ca: pki.ca,
    caFile: files.ca,
    dir,
    routeUser,
    routePassword,
    admin,
    options,
    connect: (seed, inboxPrefix) => BusConnection.open(options(seed, inboxPrefix)),
    async setUsers(users) {
      roleUsers = users.map((u, i) => ({ nkey: u.publicKey, permissions: u.permissions, slot: u.slot ?? i }));
      writeConfigs();
      const reloads = (s: ClusterServer) =>
        readFileSync(s.proc.logFile, 'utf8').split('Reloaded server configuration').length;
      const running = servers.filter((s) => s.proc.running && s.proc.pid);
      const before = running.map(reloads);
      for (const s of running) process.kill(s.proc.pid!, 'SIGHUP');
      // The reload happens after SIGHUP returns: wait until each server has logged it.
      for (const [i, s] of running.entries()) {
        await waitFor(`${s.name} reloaded`, async () => reloads(s) > before[i]!, {
          timeoutMs: 15_000,
          intervalMs: 25,
          onTimeout: () => s.proc.tail(20),
        });
        await healthy(s, false);
      }
    },
    kill: (i) => servers[i]!.proc.kill(),
    async start(i) {
      servers[i]!.proc.start();
      await healthy(servers[i]!, false);
    },
    async leaderOf(stream) {
      // Right after a server was killed or restarted the stream may be electing a leader: its
      // info request times out or names none. Ask again until one answers.
      let found = -1;
      await waitFor(
        `a leader for ${stream}`,
        async () => {
          const c = await BusConnection.open(options(admin.seed)).catch(() => undefined);
          if (!c) return false;
          try {
            const info = await (await jetstreamManager(c.nc)).streams.info(stream);
            found = servers.findIndex((s) => s.name === info.cluster?.leader);
            return found >= 0;
          } catch {
            return false;
          } finally {
            await c.close();
          }
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      return found;
    },
    async stop() {
      await Promise.allSettled(servers.map((s) => s.proc.stop()));
    },
    logs: () => servers.map((s) => `--- ${s.name}\n${s.proc.tail(60)}`).join('\n'),
  };
  if (size > 1)
    await waitFor(
      'JetStream meta leader',
      async () => {
        const r = await fetch(`http://127.0.0.1:${servers[0]!.monitorPort}/healthz`).catch(() => undefined);
        return r?.ok === true;
      },
      { timeoutMs: 30_000, intervalMs: 200, onTimeout: () => cluster.logs() },
    );
  return cluster;
}

/** The public key of an NKey seed. */
export const publicKeyOf = (seed: string): string => fromSeed(new TextEncoder().encode(seed)).getPublicKey();
