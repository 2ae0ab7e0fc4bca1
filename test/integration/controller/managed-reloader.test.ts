// The managed bus's config reloader as its pod runs it, with a real nats-server: the StatefulSet's
// reloader container (command and args as generated: `sluice nats-reloader` from the sluice image)
// and the server, each on the files the generated config names, moved to temp folders laid out as
// the kubelet lays out a Secret volume (files are symlinks through `..data`, which an update swaps
// atomically). A new role user and a certificate from a new CA reach the running server without a
// restart; the reloader stops at once on SIGTERM and stays small.
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, nkeyAuthenticator, type TlsOptions } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBusSpec } from '../../../src/api/eventbus.ts';
import { eventSourcePermissions } from '../../../src/bus/permissions.ts';
import { type BusPki, issueBusPki } from '../../../src/bus/pki.ts';
import { reloaderOptions } from '../../../src/controller/reconcile/eventbus.ts';
import {
  type ManagedBusOptions,
  managedBusChildren,
  managedBusDnsNames,
  managedBusUrl,
} from '../../../src/controller/resources/eventbus.ts';
import { newCredential } from '../../harness/nats-cluster.ts';
import { freePort } from '../../harness/ports.ts';
import { ManagedProcess, waitFor } from '../../harness/proc.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { requireTool } from '../../harness/tools.ts';

const root = new URL('../../..', import.meta.url).pathname;
const owner = {
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'EventBus' as const,
  name: 'default',
  namespace: 'team-a',
  uid: 'u',
};
const spec = EventBusSpec.parse({ jetstream: { replicas: 1 } });

/** Writes `files` into `dir` the way the kubelet updates a Secret volume (atomic `..data` swap). */
function projectSecret(dir: string, files: Record<string, string>, version: number): void {
  const data = `..v${version}`;
  mkdirSync(join(dir, data), { recursive: true });
  for (const [k, v] of Object.entries(files)) writeFileSync(join(dir, data, k), v);
  symlinkSync(data, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const k of Object.keys(files)) {
    try {
      symlinkSync(join('..data', k), join(dir, k));
    } catch {
      // the link through ..data exists already
    }
  }
  if (version > 1) rmSync(join(dir, `..v${version - 1}`), { recursive: true, force: true });
}

describe.skipIf(natsMissing())(`managed bus config reloader${skipNote(natsMissing())}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-reloader-'));
  const procs: ManagedProcess[] = [];
  afterAll(async () => {
    await Promise.allSettled(procs.map((p) => p.stop(2000)));
  });

  it('applies a new user and a renewed certificate to the running server; stops at once', async () => {
    const [port, monitor] = [await freePort(), await freePort()];
    const admin = newCredential();
    const role = newCredential();
    const names = managedBusDnsNames(owner);
    const pki1 = await issueBusPki(names);
    const paths = {
      '/etc/nats-config': join(dir, 'config'),
      '/etc/nats-tls': join(dir, 'tls'),
      '/var/run/nats': join(dir, 'run'),
      '/data/jetstream': join(dir, 'data'),
    };
    const local = (s: string) =>
      Object.entries(paths).reduce((acc, [from, to]) => acc.replaceAll(from, to), s);
    for (const d of Object.values(paths)) mkdirSync(d, { recursive: true });
    const opts = (users: ManagedBusOptions['users'], pki: BusPki): ManagedBusOptions => ({
      defaultImage: 'nats',
      ...reloaderOptions({ image: 'sluice:test', natsImage: 'nats' }),
      secrets: { adminSeed: admin.seed, adminPublicKey: admin.publicKey, routePassword: 'pw' },
      users,
      tls: { secretName: 'tls', generated: pki },
    });
    const render = (users: ManagedBusOptions['users'], pki: BusPki) => {
      const children = managedBusChildren(owner, spec, opts(users, pki));
      const config = local(children.configSecret.stringData!['nats-js.conf']!)
        .replace('"0.0.0.0:4222"', `"127.0.0.1:${port}"`)
        .replace('"0.0.0.0:8222"', `"127.0.0.1:${monitor}"`);
      return { config, pod: children.statefulSet.spec!.template.spec! };
    };
    const tlsFiles = (p: BusPki) => ({ 'tls.crt': p.cert, 'tls.key': p.key, 'ca.crt': p.ca });

    const first = render([], pki1);
    projectSecret(paths['/etc/nats-config'], { 'nats-js.conf': first.config }, 1);
    projectSecret(paths['/etc/nats-tls'], tlsFiles(pki1), 1);
    const [nats, reloader] = first.pod.containers;
    const server = new ManagedProcess(
      'nats-server',
      requireTool('nats-server'),
      nats!.args!.map(local),
      join(dir, 'nats-server.log'),
      { ...process.env, POD_NAME: 'eventbus-default-js-0' },
    );
    procs.push(server);
    server.start();
    // The reloader container as generated: `sluice nats-reloader` and upstream's flags.
    expect(reloader!.command).toEqual(['sluice', 'nats-reloader']);
    const sidecar = new ManagedProcess(
      'reloader',
      join(root, 'bin', reloader!.command![0]!),
      [...reloader!.command!.slice(1), ...reloader!.args!.map(local)],
      join(dir, 'reloader.log'),
    );
    procs.push(sidecar);
    sidecar.start();

    const url = `tls://127.0.0.1:${port}`;
    const tryConnect = async (seed: string, ca: string) => {
      const nc = await connect({
        servers: url,
        authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
        // Verified for the client Service's name, as pods reach the bus.
        tls: { ca, servername: managedBusUrl(owner).replace(/^nats:\/\/|:\d+$/g, '') } as TlsOptions,
        timeout: 3000,
        reconnect: false,
      });
      await nc.close();
      return true;
    };
    await waitFor('the server to take the admin', () => tryConnect(admin.seed, pki1.ca), {
      timeoutMs: 20_000,
      onTimeout: () => server.tail(),
    });
    const pid = readFileSync(join(paths['/var/run/nats'], 'nats.pid'), 'utf8').trim();
    await expect(tryConnect(role.seed, pki1.ca)).rejects.toThrow(/Authorization/i);

    // A new EventSource's user: only the config Secret changes; the server reloads it.
    const bus = { namespace: owner.namespace, busName: owner.name };
    const second = render(
      [{ publicKey: role.publicKey, permissions: eventSourcePermissions(bus, 'hooks'), slot: 0 }],
      pki1,
    );
    projectSecret(paths['/etc/nats-config'], { 'nats-js.conf': second.config }, 2);
    await waitFor('the new user to be accepted', () => tryConnect(role.seed, pki1.ca), {
      timeoutMs: 20_000,
      onTimeout: () => `${sidecar.tail()}\n${server.tail()}`,
    });

    // A certificate from another CA (e.g. the user's own Secret, or a renewal): TLS Secret changes.
    const pki2 = await issueBusPki(names);
    projectSecret(paths['/etc/nats-tls'], tlsFiles(pki2), 2);
    await waitFor('the new certificate to be served', () => tryConnect(admin.seed, pki2.ca), {
      timeoutMs: 20_000,
      onTimeout: () => `${sidecar.tail()}\n${server.tail()}`,
    });
    await expect(tryConnect(admin.seed, pki1.ca)).rejects.toThrow();

    // No restart: the same process, which logged its reloads.
    expect(readFileSync(join(paths['/var/run/nats'], 'nats.pid'), 'utf8').trim()).toBe(pid);
    expect(server.running).toBe(true);
    expect(server.tail(400).match(/Reloaded server configuration/g)?.length).toBeGreaterThanOrEqual(2);
    expect(sidecar.tail(50)).toMatch(/server signalled to reload/);

    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${sidecar.pid}/status`, 'utf8'))?.[1]);
    console.log(`reloader resident memory: ${(rss / 1024).toFixed(1)} MiB`);
    expect(rss).toBeLessThan(32 * 1024);
    const stopping = Date.now();
    await sidecar.stop(5000);
    expect(await sidecar.exited()).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(2000);
  }, 90_000);
});
