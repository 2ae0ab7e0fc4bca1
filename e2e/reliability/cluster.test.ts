// The secured 3-server bus under faults, with real processes end to end: three nats-server
// processes on loopback configured by the managed bus's generator (routes with a password and
// mutual TLS, client TLS, per-role NKey users), streams and KV at R3, `sluice eventsource` and
// `sluice sensor` each with its own credential. Under load through webhook → bus → Sensor → HTTP
// sink: SIGKILL one server and restart it, then SIGKILL the stream leader and restart it;
// accepted = delivered once + dead-lettered, with 0 duplicate effects. And the route attack of
// ../shared/cases/faults/nats-route: a server without the route credential, or with the password
// but a certificate from another CA, cannot join the cluster, read events or inject them.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventSourcePermissions, inboxPrefixFor, sensorPermissions } from '../../src/bus/permissions.ts';
import { issueBusPki } from '../../src/bus/pki.ts';
import { natsServerConfig } from '../../src/bus/server-config.ts';
import { webhookIdsBucket } from '../../src/bus/source-state.ts';
import { eventStreamName, subjectFor } from '../../src/bus/subjects.ts';
import { type NatsCluster, newCredential, startNatsCluster } from '../../test/harness/nats-cluster.ts';
import { freePort } from '../../test/harness/ports.ts';
import { ManagedProcess, waitFor } from '../../test/harness/proc.ts';
import { natsMissing, skipNote, uniqueName } from '../../test/harness/shared.ts';
import { requireTool } from '../../test/harness/tools.ts';
import { report, startIdempotentSink, startPipeline } from './pipeline.ts';

describe.skipIf(natsMissing())(`secured 3-server bus${skipNote(natsMissing())}`, () => {
  let cl: NatsCluster;
  // nats-server logs "Publish Violation" / "Subscription Violation" (restarted servers append).
  const violations = () =>
    cl.servers.flatMap((s) =>
      readFileSync(s.proc.logFile, 'utf8')
        .split('\n')
        .filter((l) => /Violation/.test(l)),
    );
  beforeAll(async () => {
    cl = await startNatsCluster(3);
  }, 90_000);
  afterAll(async () => {
    await cl?.stop();
  });

  it('SIGKILL a server and restart it, then SIGKILL the stream leader, under load: nothing lost, nothing repeated', async () => {
    const namespace = uniqueName('r3');
    const busRef = { namespace, busName: 'default' };
    const deps = [{ name: 'order', eventSourceName: 'hooks', eventName: 'orders' }];
    const es = newCredential();
    const sn = newCredential();
    await cl.setUsers([
      {
        publicKey: es.publicKey,
        permissions: eventSourcePermissions(busRef, 'hooks', [webhookIdsBucket(namespace, 'hooks')]),
      },
      { publicKey: sn.publicKey, permissions: sensorPermissions(busRef, 'orders', deps) },
    ]);
    const sink = await startIdempotentSink();
    const p = await startPipeline({
      sink,
      namespace,
      trigger: { retryStrategy: { steps: 5, duration: '200ms', factor: 2 } },
      bus: {
        url: cl.url,
        connect: async () => (await cl.connect(cl.admin.seed)).nc,
        replicas: 3,
        roles: {
          EventSource: {
            env: { SLUICE_BUS_CREDENTIAL: es.seed },
            bus: { tls: { ca: cl.ca }, inboxPrefix: inboxPrefixFor('eventsource', namespace, 'hooks') },
          },
          Sensor: {
            env: { SLUICE_BUS_CREDENTIAL: sn.seed },
            bus: {
              tls: { ca: cl.ca },
              inboxPrefix: inboxPrefixFor('sensor', namespace, 'orders'),
              provisioned: true,
            },
          },
        },
      },
    });
    try {
      const stream = eventStreamName(busRef);
      const info = await (await jetstreamManager(p.nc)).streams.info(stream);
      expect(info.config.num_replicas).toBe(3);
      const ids = Array.from({ length: 3000 }, (_, i) => `r3-${i}`);
      const sending = p.send(ids, 4, 150_000);
      const faults: string[] = [];
      await waitFor('a fifth accepted', async () => p.accepted.size >= 600, { timeoutMs: 60_000 });
      const leader = await cl.leaderOf(stream);
      const follower = (leader + 1) % 3;
      await cl.kill(follower);
      faults.push(`SIGKILL ${cl.servers[follower]!.name} (follower) at ${p.accepted.size} accepted`);
      await new Promise((r) => setTimeout(r, 2000));
      await cl.start(follower);
      await waitFor('half accepted', async () => p.accepted.size >= 1500, { timeoutMs: 90_000 });
      const leader2 = await cl.leaderOf(stream);
      await cl.kill(leader2);
      faults.push(`SIGKILL ${cl.servers[leader2]!.name} (stream leader) at ${p.accepted.size} accepted`);
      await new Promise((r) => setTimeout(r, 3000));
      await cl.start(leader2);
      await sending;
      const v = await p.verdict(120_000);
      report('3-server bus, follower then leader SIGKILLed', { ...v, faults });
      expect(v.accepted).toBe(ids.length);
      expect(v.deliveredOnce + v.deadLettered).toBe(v.accepted);
      expect(v.deliveredAndDead).toBe(0);
      expect(v.duplicateEffects).toBe(0);
      expect(v.duplicateDeadLetters).toBe(0);
      expect(v.unaccountedOutputs).toBe(0);
      // The real `sluice eventsource` and `sluice sensor` did all of it inside their permissions.
      expect(violations()).toEqual([]);
    } finally {
      await p.stop();
      await sink.close();
    }
  }, 300_000);

  it('two of three servers SIGKILLed: no quorum, so nothing is accepted (503), and everything sent is accepted and delivered once after they return', async () => {
    const namespace = uniqueName('r3q');
    const busRef = { namespace, busName: 'default' };
    const deps = [{ name: 'order', eventSourceName: 'hooks', eventName: 'orders' }];
    const es = newCredential();
    const sn = newCredential();
    await cl.setUsers([
      {
        publicKey: es.publicKey,
        permissions: eventSourcePermissions(busRef, 'hooks', [webhookIdsBucket(namespace, 'hooks')]),
      },
      { publicKey: sn.publicKey, permissions: sensorPermissions(busRef, 'orders', deps) },
    ]);
    const sink = await startIdempotentSink();
    const p = await startPipeline({
      sink,
      namespace,
      bus: {
        url: cl.url,
        connect: async () => (await cl.connect(cl.admin.seed)).nc,
        replicas: 3,
        roles: {
          EventSource: {
            env: { SLUICE_BUS_CREDENTIAL: es.seed },
            bus: { tls: { ca: cl.ca }, inboxPrefix: inboxPrefixFor('eventsource', namespace, 'hooks') },
          },
          Sensor: {
            env: { SLUICE_BUS_CREDENTIAL: sn.seed },
            bus: {
              tls: { ca: cl.ca },
              inboxPrefix: inboxPrefixFor('sensor', namespace, 'orders'),
              provisioned: true,
            },
          },
        },
      },
    });
    try {
      await p.send(['before-0', 'before-1'], 1, 30_000);
      const leader = await cl.leaderOf(eventStreamName(busRef));
      const down = [leader, (leader + 1) % 3];
      for (const i of down) await cl.kill(i);
      // Without a quorum nothing is stored, so nothing may be answered 2xx.
      const during = await p.post('during-quorum-loss');
      expect(during.status).toBe(503);
      const sending = p.send(
        Array.from({ length: 50 }, (_, i) => `q-${i}`),
        4,
        90_000,
      );
      await new Promise((r) => setTimeout(r, 3000));
      for (const i of down) await cl.start(i);
      await sending;
      const v = await p.verdict(120_000);
      report('3-server bus, 2 of 3 servers SIGKILLed', { ...v, during: during.status });
      expect(v.accepted).toBe(52);
      expect(v.deliveredOnce + v.deadLettered).toBe(v.accepted);
      // An effect that happened while the bus could not record it is not dead-lettered as failed.
      expect(v.deliveredAndDead).toBe(0);
      expect(v.duplicateEffects).toBe(0);
      expect(v.unaccountedOutputs).toBe(0);
    } finally {
      await p.stop();
      await sink.close();
    }
  }, 300_000);

  it('a route peer without the credential, or with it but a foreign certificate, cannot join, read or inject', async () => {
    const bin = requireTool('nats-server');
    const namespace = uniqueName('route');
    const subject = subjectFor({ namespace, busName: 'default' }, 'hooks', 'orders');
    const foreign = await issueBusPki(['127.0.0.1']);
    const results: Record<string, unknown> = {};
    for (const variant of ['no credential, no TLS', 'route password, foreign CA'] as const) {
      const dir = join(cl.dir, `rogue-${variant.includes('password') ? 'b' : 'a'}`);
      mkdirSync(dir, { recursive: true });
      const [clientPort, clusterPort, monitorPort] = [await freePort(), await freePort(), await freePort()];
      for (const [f, v] of [
        ['ca.crt', foreign.ca],
        ['tls.crt', foreign.cert],
        ['tls.key', foreign.key],
      ] as const)
        writeFileSync(join(dir, f), v);
      const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
      const target = `127.0.0.1:${cl.servers[0]!.clusterPort}`;
      const conf = variant.includes('password')
        ? natsServerConfig({
            serverName: 'rogue-b',
            listen: `127.0.0.1:${clientPort}`,
            monitor: `127.0.0.1:${monitorPort}`,
            storeDir: join(dir, 'store'),
            maxPayload: '1MB',
            users: [],
            cluster: {
              name: 'bus',
              listen: `127.0.0.1:${clusterPort}`,
              peers: [target],
              user: cl.routeUser,
              password: cl.routePassword,
              tls: files,
            },
          }).replace(/authorization \{\n {2}users: \[\n {2}\]\n\}\n/, '')
        : [
            `port: ${clientPort}`,
            `http: "127.0.0.1:${monitorPort}"`,
            'server_name: rogue-a',
            `cluster { name: bus, listen: "127.0.0.1:${clusterPort}", routes: [ "nats://${target}" ] }`,
            '',
          ].join('\n');
      writeFileSync(join(dir, 'rogue.conf'), conf);
      const rogue = new ManagedProcess('rogue', bin, ['--config', join(dir, 'rogue.conf')], join(dir, 'log'));
      rogue.start();
      try {
        await waitFor(
          'rogue up',
          async () =>
            (await fetch(`http://127.0.0.1:${monitorPort}/varz`).catch(() => undefined))?.ok === true,
        );
        // Give it time to try the route a few times.
        await new Promise((r) => setTimeout(r, 2500));
        const routez = (await (await fetch(`http://127.0.0.1:${monitorPort}/routez`)).json()) as {
          num_routes: number;
        };
        const spy = await connect({ servers: `nats://127.0.0.1:${clientPort}` });
        const got: string[] = [];
        spy.subscribe('sluice.>', {
          callback: (_e, m) => {
            got.push(m.string());
          },
        });
        await spy.flush();
        const legit = await cl.connect(cl.admin.seed);
        const seen: string[] = [];
        legit.nc.subscribe(subject, {
          callback: (_e, m) => {
            seen.push(m.string());
          },
        });
        await legit.nc.flush();
        legit.nc.publish(subject, '{"card":"4111-1111"}');
        spy.publish(subject, '{"injected":true}');
        await legit.nc.flush();
        await spy.flush();
        await new Promise((r) => setTimeout(r, 1000));
        await spy.close();
        await legit.close();
        const legitRoutes = (await (
          await fetch(`http://127.0.0.1:${cl.servers[0]!.monitorPort}/routez`)
        ).json()) as {
          routes: Array<{ remote_name?: string }>;
        };
        results[variant] = {
          rogueRoutes: routez.num_routes,
          busPeers: legitRoutes.routes.map((r) => r.remote_name),
          spyReceivedFromBus: got.filter((m) => !m.includes('injected')).length,
          injectedSeenOnBus: seen.filter((s) => s.includes('injected')).length,
        };
        expect(routez.num_routes).toBe(0);
        expect(legitRoutes.routes.some((r) => r.remote_name?.startsWith('rogue'))).toBe(false);
        // The spy sees only its own injection (local echo), never an event of the bus.
        expect(got.filter((m) => !m.includes('injected'))).toEqual([]);
        expect(seen.filter((s) => s.includes('injected'))).toEqual([]);
        expect(seen).toEqual(['{"card":"4111-1111"}']);
      } finally {
        await rogue.stop();
      }
    }
    report('route peer attack', results);
  }, 120_000);
});
