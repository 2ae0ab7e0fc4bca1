// A managed bus's pods start beside the EventSources and Sensors that use it, and a new role's
// credential reaches the servers only when the kubelet refreshes their config Secret. On the real
// node the runtimes exited on the first failed connect and went into a growing crash-loop
// back-off. Here, with `sluice sensor` / `sluice eventsource` run from the container spec the
// controller generates and a secured nats-server (TLS, NKey users): a runtime whose bus is down,
// then up without its credential, stays alive and unready (/readyz says why) and runs as soon as
// the server knows it; one stopped while waiting exits 0 at once.
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import { inboxPrefixFor, sensorPermissions } from '../../../src/bus/permissions.ts';
import { provisionSensorState } from '../../../src/bus/sensor-state.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import type { BusRef } from '../../../src/bus/subjects.ts';
import { deploymentFor, ENV_BUS_CREDENTIAL } from '../../../src/controller/resources/workload.ts';
import { type NatsCluster, newCredential, startNatsCluster } from '../../harness/nats-cluster.ts';
import { freePort } from '../../harness/ports.ts';
import { ManagedProcess, waitFor } from '../../harness/proc.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';

const bin = new URL('../../../bin/sluice', import.meta.url).pathname;
const bus: BusRef = { namespace: 'team-l', busName: 'default' };
const deps = [{ name: 'order', eventSourceName: 'hooks', eventName: 'orders' }];

/** `sluice <role>` as its pod runs it, with its credential and a fixed metrics port. */
async function startRole(
  cl: NatsCluster,
  kind: 'Sensor' | 'EventSource',
  seed: string,
  dir: string,
): Promise<{ proc: ManagedProcess; port: number; readyz(): Promise<{ status: number; text: string }> }> {
  const name = kind === 'Sensor' ? 'orders' : 'hooks';
  const obj = {
    apiVersion: 'argoproj.io/v1alpha1',
    kind,
    metadata: { name, namespace: bus.namespace, uid: `u-${name}` },
    spec:
      kind === 'Sensor'
        ? { dependencies: deps, triggers: [{ template: { name: 'log', log: {} } }] }
        : { webhook: { orders: { port: String(await freePort()), endpoint: '/o', method: 'POST' } } },
  };
  const d = deploymentFor({ ...obj, ...obj.metadata }, obj, {
    image: 'sluice:test',
    bus: {
      ...bus,
      url: cl.url,
      tls: { ca: cl.ca },
      inboxPrefix: inboxPrefixFor(kind === 'Sensor' ? 'sensor' : 'eventsource', bus.namespace, name),
      provisioned: true,
    },
  });
  const ctr = d.spec!.template.spec!.containers[0]!;
  const port = await freePort();
  const env = Object.fromEntries(
    ctr.env!.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
  );
  const proc = new ManagedProcess(
    `sluice ${kind}`,
    bin,
    ctr.args!.map((a) => (a === '7777' ? String(port) : a)),
    `${dir}/${name}.log`,
    {
      ...process.env,
      ...env,
      [ENV_BUS_CREDENTIAL]: seed,
      POD_NAME: `${name}-0`,
      POD_NAMESPACE: bus.namespace,
    },
  );
  proc.start();
  const readyz = async () => {
    const r = await fetch(`http://127.0.0.1:${port}/readyz`);
    return { status: r.status, text: await r.text() };
  };
  return { proc, port, readyz };
}

describe.skipIf(natsMissing())(`runtimes started before their bus${skipNote(natsMissing())}`, () => {
  let cl: NatsCluster;
  const sensor = newCredential();
  const source = newCredential();
  beforeAll(async () => {
    cl = await startNatsCluster(1);
    const admin = await cl.connect(cl.admin.seed);
    const cfg = parseStreamConfig('');
    if (!cfg.ok) throw new Error(cfg.errors.join());
    await ensureStreams(await jetstreamManager(admin.nc), bus, cfg.settings, 1);
    await provisionSensorState(await jetstreamManager(admin.nc), admin.nc, {
      bus,
      sensor: 'orders',
      dependencies: deps,
    });
    await admin.close();
  }, 60_000);
  afterAll(async () => {
    await cl?.stop();
  });

  it('waits alive and unready while the bus is down and while its credential is unknown, then runs', async () => {
    await cl.kill(0);
    const s = await startRole(cl, 'Sensor', sensor.seed, cl.dir);
    try {
      const waiting = await waitFor(
        'the Sensor to report that it waits for the bus',
        async () => {
          if (!s.proc.running) throw new Error(`exited: ${s.proc.tail()}`);
          const r = await s.readyz().catch(() => undefined);
          return r?.text.includes('waiting for the bus') ? r : undefined;
        },
        { timeoutMs: 20_000, onTimeout: () => s.proc.tail() },
      );
      expect(waiting.status).toBe(503);
      expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(200);

      // The server is back, but has not loaded this Sensor's user yet.
      await cl.start(0);
      await waitFor(
        'the Sensor to be refused by the server',
        async () => {
          if (!s.proc.running) throw new Error(`exited: ${s.proc.tail()}`);
          return /Authorization/i.test((await s.readyz()).text);
        },
        { timeoutMs: 30_000, onTimeout: () => s.proc.tail() },
      );

      await cl.setUsers([
        { publicKey: sensor.publicKey, permissions: sensorPermissions(bus, 'orders', deps) },
      ]);
      await waitFor('the Sensor to be ready', async () => (await s.readyz()).status === 200, {
        timeoutMs: 30_000,
        onTimeout: () => s.proc.tail(),
      });
      expect(s.proc.tail(200)).toMatch(/sensor running/);
      expect(s.proc.tail(200)).toMatch(/bus not reachable yet; retrying/);
      expect(s.proc.tail(200)).not.toMatch(new RegExp(sensor.seed));
    } finally {
      await s.proc.stop(10_000);
    }
    expect(await s.proc.exited()).toBe(0);
  }, 120_000);

  it('exits 0 at once when stopped while it waits', async () => {
    // An EventSource whose credential the server does not know: it waits.
    const e = await startRole(cl, 'EventSource', source.seed, cl.dir);
    await waitFor('the EventSource to wait for the bus', async () => {
      if (!e.proc.running) throw new Error(`exited: ${e.proc.tail()}`);
      return (await e.readyz().catch(() => undefined))?.text.includes('waiting for the bus');
    });
    const t = Date.now();
    await e.proc.stop(10_000);
    expect(await e.proc.exited()).toBe(0);
    expect(Date.now() - t).toBeLessThan(3_000);
  }, 60_000);
});
