// The nats-server config the controller generates for a managed 3-server bus (NKey users with
// permissions, routes with a password and mutual TLS, client TLS, the user's settings) is one the
// real nats-server accepts: checked with `nats-server -t` on the generated text, with the
// certificate files where the pod mounts them moved to a temp folder.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventBusSpec } from '../../../src/api/eventbus.ts';
import { eventSourcePermissions, sensorPermissions } from '../../../src/bus/permissions.ts';
import { issueBusPki } from '../../../src/bus/pki.ts';
import { managedBusConfig, managedBusDnsNames } from '../../../src/controller/resources/eventbus.ts';
import { newCredential } from '../../harness/nats-cluster.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { requireTool } from '../../harness/tools.ts';

describe.skipIf(natsMissing())(`managed bus config${skipNote(natsMissing())}`, () => {
  it('is accepted by nats-server as generated', async () => {
    const owner = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'EventBus' as const,
      name: 'default',
      namespace: 'team-a',
      uid: 'u',
    };
    const dir = mkdtempSync(join(tmpdir(), 'sluice-conf-'));
    const pki = await issueBusPki(managedBusDnsNames(owner));
    for (const [f, v] of [
      ['tls.crt', pki.cert],
      ['tls.key', pki.key],
      ['ca.crt', pki.ca],
    ] as const)
      writeFileSync(join(dir, f), v);
    const bus = { namespace: 'team-a', busName: 'default' };
    const admin = newCredential();
    const text = managedBusConfig(
      owner,
      EventBusSpec.parse({ jetstream: { replicas: 3, settings: 'max_connections: 100', maxPayload: '2MB' } }),
      {
        defaultImage: 'nats',
        reloaderImage: 'reloader',
        secrets: { adminSeed: admin.seed, adminPublicKey: admin.publicKey, routePassword: 'p@ss"word' },
        users: [
          {
            publicKey: newCredential().publicKey,
            permissions: eventSourcePermissions(bus, 'hooks', ['b1']),
            slot: 0,
          },
          {
            publicKey: newCredential().publicKey,
            permissions: sensorPermissions(bus, 's.with dots', [
              { name: 'd', eventSourceName: 'hooks', eventName: 'e' },
            ]),
            slot: 5,
          },
        ],
        tls: { secretName: 'tls' },
      },
    )
      .replaceAll('/etc/nats-tls', dir)
      .replace('/data/jetstream/store', join(dir, 'store'))
      .replace('/var/run/nats/nats.pid', join(dir, 'pid'));
    const file = join(dir, 'nats.conf');
    writeFileSync(file, text);
    const out = execFileSync(requireTool('nats-server'), ['-c', file, '-t'], {
      env: { ...process.env, POD_NAME: 'bus-0' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(`${out}`).toBeDefined();
  });
});
