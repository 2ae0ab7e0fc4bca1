// Least privilege on a real nats-server with the generated config (users with NKeys and subject
// permissions, client TLS): the EventSource and Sensor runtimes do their real work under their
// own credential without a single permission violation, and each credential is refused
// everything else: reading, consuming another Sensor's events, deleting, purging, snooping on
// replies. Outsiders without a credential, with an unknown key or without TLS get nothing.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { type AddressInfo, connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourceSpec } from '../../../src/api/eventsource.ts';
import { SensorSpec } from '../../../src/api/sensor.ts';
import { streamConfigDuplicatesMs } from '../../../src/api/stream-config.ts';
import type { BusConnection } from '../../../src/bus/connection.ts';
import { eventSourcePermissions, inboxPrefixFor, sensorPermissions } from '../../../src/bus/permissions.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { sensorBuckets } from '../../../src/bus/sensor-state.ts';
import {
  calendarBucket,
  eventSourceBucketSpecs,
  eventSourceBuckets,
  provisionBuckets,
  sftpBucket,
} from '../../../src/bus/source-state.ts';
import {
  type BusRef,
  consumerName,
  dlqStreamName,
  eventStreamName,
  subjectFor,
} from '../../../src/bus/subjects.ts';
import { runDlq } from '../../../src/cli/dlq.ts';
import { startEventSource } from '../../../src/eventsources/runtime.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { RUNNERS } from '../../../src/sensors/runners.ts';
import { startSensor } from '../../../src/sensors/runtime.ts';
import { sensorDependencyMatcher, sensorParameters } from '../../../src/sensors/wiring.ts';
import { type NatsCluster, newCredential } from '../../harness/nats-cluster.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { type Sshd, sshdMissing, startSshd } from '../../harness/sshd.ts';
import { securedBusWithSensors } from './fixtures.ts';

const log = createLogger({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });
const bus: BusRef = { namespace: 'team-a', busName: 'default' };
const depA = [{ name: 'order', eventSourceName: 'hooks', eventName: 'orders' }];
const depB = [{ name: 'pay', eventSourceName: 'hooks', eventName: 'payments' }];
const esSpec = EventSourceSpec.parse({
  webhook: { orders: { port: '0', endpoint: '/orders', method: 'POST' } },
  calendar: { tick: { interval: '1s', persistence: { catchup: { enabled: true } } } },
});

/** Resolves with the error of a refused operation (a permission violation, or no answer at all). */
async function refused(what: string, f: () => Promise<unknown>): Promise<string> {
  const r = await Promise.race([
    f().then(
      () => 'ALLOWED',
      (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e)),
    ),
    new Promise<string>((res) => setTimeout(() => res('no answer (timeout)'), 4000)),
  ]);
  expect(r, `${what} must be refused`).not.toBe('ALLOWED');
  return r;
}

/** A subscription the server refuses ends with a permissions error. */
async function subscriptionRefused(c: BusConnection, subject: string): Promise<string> {
  const sub = c.nc.subscribe(subject);
  const closed = await Promise.race([sub.closed, new Promise((r) => setTimeout(() => r('open'), 3000))]);
  expect(String(closed), `subscribe ${subject} must be refused`).toMatch(/permission/i);
  return String(closed);
}

const violations = (cl: NatsCluster) =>
  readFileSync(cl.servers[0]!.proc.logFile, 'utf8')
    .split('\n')
    .filter((l) => /(Publish|Subscription) Violation/.test(l));

/**
 * The key follower's create permission (permissions.ts kvFollowSubjects) cannot pin a consumer to
 * pull mode: the server takes a push consumer with any deliver subject in the request body. On a
 * bus with per-role accounts such a consumer delivers into the bus account; this checks that the
 * subjects that would matter there (an event subject: injecting events; the JetStream API:
 * deleting a stream) receive nothing from it. Sensor b makes both and writes to its own bucket.
 */
async function pushConsumerRelaysNothing(
  admin: BusConnection,
  c: BusConnection,
  jsm: JetStreamManager,
): Promise<void> {
  const adminJsm = await jetstreamManager(admin.nc);
  const own = sensorBuckets(bus.namespace, 'b').processed;
  const before = (await adminJsm.streams.info(eventStreamName(bus))).state.messages;
  const targets = {
    inject: subjectFor(bus, 'hooks', 'orders'),
    api: `$JS.API.STREAM.DELETE.${dlqStreamName(bus)}`,
  };
  for (const [name, deliver_subject] of Object.entries(targets))
    await jsm.consumers.add(`KV_${own}`, {
      name,
      filter_subject: `$KV.${own}.>`,
      ack_policy: 'none' as never,
      deliver_subject,
    });
  await (await new Kvm(c.nc).open(own)).put('relay-probe', '{"specversion":"1.0","id":"relayed"}');
  // An absence: wait a bounded time for anything to arrive.
  await new Promise((r) => setTimeout(r, 1500));
  expect((await adminJsm.streams.info(eventStreamName(bus))).state.messages).toBe(before);
  await expect(adminJsm.streams.info(dlqStreamName(bus))).resolves.toBeTruthy();
  for (const name of Object.keys(targets)) {
    const ci = await adminJsm.consumers.info(`KV_${own}`, name);
    expect(ci.delivered.consumer_seq, `push consumer ${name} delivered nothing`).toBe(0);
    await adminJsm.consumers.delete(`KV_${own}`, name);
  }
}

describe.skipIf(natsMissing())(`per-role credentials on the bus${skipNote(natsMissing())}`, () => {
  let cl: NatsCluster;
  let admin: BusConnection;
  const es = newCredential();
  const sa = newCredential();
  const sb = newCredential();
  // An sftp EventSource keeps its last listing in a bucket of its own (made by the controller).
  const fc = newCredential();
  let sshd: Sshd | undefined;
  const filesSpec = (dir: string) =>
    EventSourceSpec.parse({
      sftp: {
        drop: {
          eventType: 'CREATE|REMOVE',
          watchPathConfig: { directory: `${dir}/`, pathRegexp: '\\.csv$' },
          address: { name: 's', key: 'address' },
          username: { name: 's', key: 'user' },
          sshKeySecret: { name: 's', key: 'key' },
          pollIntervalDuration: '300ms',
        },
      },
    });
  const sinkHits: string[] = [];
  const sink = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      sinkHits.push(body);
      res.writeHead(body.includes('poison') ? 400 : 200).end();
    });
  });

  beforeAll(async () => {
    ({ cl, admin } = await securedBusWithSensors(bus, { a: depA, b: depB }));
    const jsm = await jetstreamManager(admin.nc);
    // As the controller does: the EventSource's buckets are made for it, and its permissions name them.
    await provisionBuckets(
      jsm,
      eventSourceBucketSpecs(bus.namespace, 'hooks', esSpec, streamConfigDuplicatesMs('')),
      1,
    );
    if (!sshdMissing()) sshd = await startSshd();
    const files = filesSpec(sshd ? join(sshd.root, 'in') : '/in');
    await provisionBuckets(
      jsm,
      eventSourceBucketSpecs(bus.namespace, 'files', files, streamConfigDuplicatesMs('')),
      1,
    );
    await cl.setUsers([
      {
        publicKey: es.publicKey,
        permissions: eventSourcePermissions(bus, 'hooks', eventSourceBuckets(bus.namespace, 'hooks', esSpec)),
      },
      {
        publicKey: fc.publicKey,
        permissions: eventSourcePermissions(bus, 'files', eventSourceBuckets(bus.namespace, 'files', files)),
      },
      { publicKey: sa.publicKey, permissions: sensorPermissions(bus, 'a', depA) },
      { publicKey: sb.publicKey, permissions: sensorPermissions(bus, 'b', depB) },
    ]);
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  }, 60_000);
  afterAll(async () => {
    sink.close();
    await sshd?.stop();
    await admin?.close();
    await cl?.stop();
  });

  it('the EventSource and Sensor runtimes work under their own credentials with no violation', async () => {
    const esConn = await cl.connect(es.seed, inboxPrefixFor('eventsource', bus.namespace, 'hooks'));
    const saConn = await cl.connect(sa.seed, inboxPrefixFor('sensor', bus.namespace, 'a'));
    const registry = newRegistry();
    // The EventSource's warnings (e.g. "cannot share unconfirmed request ids") are collected.
    const warned: string[] = [];
    const esLog = createLogger({
      level: 'warn',
      destination: new Writable({
        write(chunk, _enc, done) {
          warned.push(String(chunk));
          done();
        },
      }),
    });
    const source = await startEventSource({
      name: 'hooks',
      namespace: bus.namespace,
      spec: esSpec,
      bus,
      duplicatesWindowMs: streamConfigDuplicatesMs(''),
      publisher: new Publisher(esConn),
      nc: esConn.nc,
      registry,
      log: esLog,
      resolveSecret: async () => '',
      host: '127.0.0.1',
    });
    const sensor = await startSensor({
      name: 'a',
      namespace: bus.namespace,
      spec: SensorSpec.parse({
        dependencies: depA,
        triggers: [
          {
            template: {
              name: 'deliver',
              http: {
                url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`,
                payload: [{ src: { dependencyName: 'order', dataKey: 'body' }, dest: 'body' }],
              },
            },
            retryStrategy: { steps: 1 },
          },
        ],
      }),
      bus,
      nc: saConn.nc,
      registry,
      log,
      runners: RUNNERS,
      compileDependency: sensorDependencyMatcher,
      params: sensorParameters,
      resolveSecret: async () => '',
      resolveConfigMap: async () => '',
      ackWaitMs: 5000,
      provisioned: true,
    });
    try {
      const port = source.ports.get('0');
      for (const body of ['{"n":1}', '{"n":2}', '{"poison":true}']) {
        const r = await fetch(`http://127.0.0.1:${port}/orders`, { method: 'POST', body });
        expect(r.status).toBe(200);
      }
      await waitFor('3 deliveries', async () => sinkHits.length >= 3);
      const jsm = await jetstreamManager(admin.nc);
      // The poison event went to the DLQ under the Sensor's own credential.
      await waitFor(
        'dead letter stored',
        async () => (await jsm.streams.info(dlqStreamName(bus))).state.messages === 1,
      );
      await waitFor(
        'all acked',
        async () =>
          (await jsm.consumers.info(eventStreamName(bus), consumerName('a', 'order'))).num_ack_pending === 0,
      );
      // The calendar recorded its last fire in its own bucket.
      await waitFor('calendar fire recorded', async () => {
        const kv = await new Kvm(admin.nc).open(calendarBucket(bus.namespace, 'hooks'));
        return (await kv.get('tick')) !== null;
      });
      // The done-key index follows the Sensor's own processed bucket under its credential.
      await waitFor('done-key index ready', async () => sensor.doneIndex.ready);
      // Let the Sensor's metric poll (stream and consumer info) run once too.
      await new Promise((r) => setTimeout(r, 5500));
      expect(violations(cl)).toEqual([]);
      expect(warned).toEqual([]);
    } finally {
      await sensor.stop();
      await source.stop();
      await esConn.close();
      await saConn.close();
    }
  }, 60_000);

  it.skipIf(sshdMissing())(
    'the sftp EventSource keeps its listing in its own bucket under its credential',
    async () => {
      const dir = join(sshd!.root, 'in');
      mkdirSync(dir, { recursive: true });
      const conn = await cl.connect(fc.seed, inboxPrefixFor('eventsource', bus.namespace, 'files'));
      const secrets: Record<string, string> = { address: sshd!.address, user: sshd!.user, key: sshd!.key };
      const warned: string[] = [];
      const esLog = createLogger({
        level: 'warn',
        destination: new Writable({
          write(chunk, _enc, done) {
            warned.push(String(chunk));
            done();
          },
        }),
      });
      const before = violations(cl).length;
      const source = await startEventSource({
        name: 'files',
        namespace: bus.namespace,
        spec: filesSpec(dir),
        bus,
        publisher: new Publisher(conn),
        nc: conn.nc,
        registry: newRegistry(),
        log: esLog,
        resolveSecret: async (sel) => secrets[sel.key] ?? '',
      });
      try {
        await new Promise((r) => setTimeout(r, 800));
        writeFileSync(join(dir, 'a.csv'), '1');
        const kv = await new Kvm(admin.nc).open(sftpBucket(bus.namespace, 'files'));
        // One entry per file ("<event>.f.<digest>", see sftp/state.ts).
        await waitFor('listing saved with the new file', async () => {
          for await (const k of await kv.keys('drop.f.>')) {
            if (((await kv.get(k))?.string() ?? '').includes('a.csv')) return true;
          }
          return false;
        });
        expect(violations(cl).slice(before)).toEqual([]);
        expect(warned).toEqual([]);
      } finally {
        await source.stop();
        await conn.close();
      }
    },
    60_000,
  );

  it("an EventSource's credential cannot read, consume, delete or purge, nor publish as another source", async () => {
    const c = await cl.connect(es.seed, inboxPrefixFor('eventsource', bus.namespace, 'hooks'));
    try {
      const jsm = await jetstreamManager(c.nc, { checkAPI: false });
      const stream = eventStreamName(bus);
      const out: Record<string, string> = {
        subscribeEvents: await subscriptionRefused(c, 'sluice.>'),
        subscribeAllInboxes: await subscriptionRefused(c, '_INBOX.>'),
        directGet: await refused('direct get', () => jsm.streams.getMessage(stream, { seq: 1 })),
        pullSensorConsumer: await refused('pull', () =>
          jetstream(c.nc)
            .consumers.get(stream, consumerName('a', 'order'))
            .then((x) => x.next({ expires: 1000 })),
        ),
        createConsumer: await refused('create consumer', () =>
          jsm.consumers.add(stream, { durable_name: 'spy', ack_policy: 'none' as never }),
        ),
        deleteStream: await refused('delete', () => jsm.streams.delete(stream)),
        purgeDlq: await refused('purge', () => jsm.streams.purge(dlqStreamName(bus))),
        sensorKv: await refused('sensor KV', async () => {
          const kv = await new Kvm(c.nc).open(sensorBuckets(bus.namespace, 'a').processed);
          await kv.put('x', 'y');
        }),
        publishAsOther: await refused('publish as another EventSource', () =>
          new Publisher(c).publish(subjectFor(bus, 'other', 'orders'), new TextEncoder().encode('{}'), {
            msgId: 'forged',
          }),
        ),
      };
      process.stdout.write(`eventsource credential refused: ${JSON.stringify(out)}\n`);
      for (const [k, v] of Object.entries(out)) expect(v, k).toMatch(/Permissions Violation/);
      await expect((await jetstreamManager(admin.nc)).streams.info(stream)).resolves.toBeTruthy();
    } finally {
      await c.close();
    }
  }, 60_000);

  it("a Sensor's credential cannot read another Sensor's consumers or state, nor change the bus", async () => {
    const c = await cl.connect(sb.seed, inboxPrefixFor('sensor', bus.namespace, 'b'));
    try {
      const jsm = await jetstreamManager(c.nc, { checkAPI: false });
      const stream = eventStreamName(bus);
      const out: Record<string, string> = {
        pullOtherConsumer: await refused('pull a', () =>
          jetstream(c.nc)
            .consumers.get(stream, consumerName('a', 'order'))
            .then((x) => x.next({ expires: 1000 })),
        ),
        otherKv: await refused('read a KV', async () => {
          const kv = await new Kvm(c.nc).open(sensorBuckets(bus.namespace, 'a').processed);
          return kv.get('x');
        }),
        directGet: await refused('direct get', () => jsm.streams.getMessage(stream, { seq: 1 })),
        // Following keys is allowed on its own processed bucket only (kv-follow.ts).
        followOtherProcessed: await refused('follow a processed bucket', () => {
          const other = sensorBuckets(bus.namespace, 'a').processed;
          return jsm.consumers.add(`KV_${other}`, {
            name: 'spy',
            filter_subject: `$KV.${other}.>`,
            ack_policy: 'none' as never,
            headers_only: true,
          });
        }),
        followOtherWithOwnFilter: await refused('follow with a filter of another bucket', () =>
          jsm.consumers.add(`KV_${sensorBuckets(bus.namespace, 'b').processed}`, {
            name: 'spy',
            filter_subject: `$KV.${sensorBuckets(bus.namespace, 'a').processed}.>`,
            ack_policy: 'none' as never,
          }),
        ),
        deleteOwnConsumer: await refused('delete consumer', () =>
          jsm.consumers.delete(stream, consumerName('b', 'pay')),
        ),
        purgeDlq: await refused('purge', () => jsm.streams.purge(dlqStreamName(bus))),
        publishEvent: await refused('inject an event', () =>
          new Publisher(c).publish(subjectFor(bus, 'hooks', 'orders'), new TextEncoder().encode('{}'), {
            msgId: 'inj',
          }),
        ),
        subscribeOtherInbox: await subscriptionRefused(
          c,
          `${inboxPrefixFor('sensor', bus.namespace, 'a')}.>`,
        ),
      };
      process.stdout.write(`sensor credential refused: ${JSON.stringify(out)}\n`);
      for (const [k, v] of Object.entries(out)) expect(v, k).toMatch(/Permissions Violation/);
      await pushConsumerRelaysNothing(admin, c, jsm);
    } finally {
      await c.close();
    }
  }, 60_000);

  it('sluice dlq authenticates with --nkey and --tlsca; a Sensor credential cannot list the DLQ', async () => {
    const adminKey = join(cl.dir, 'admin.nkey');
    writeFileSync(adminKey, cl.admin.seed, { mode: 0o600 });
    const base = {
      natsUrl: cl.url,
      tlsca: cl.caFile,
      namespace: bus.namespace,
      bus: bus.busName,
      json: true,
    };
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      expect(await runDlq('list', [], { ...base, nkey: adminKey })).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    const listed = JSON.parse(lines.join('')) as Array<{ sensor: string }>;
    expect(listed.map((d) => d.sensor)).toEqual(['a']);
    const sensorKey = join(cl.dir, 'sensor.nkey');
    writeFileSync(sensorKey, sb.seed, { mode: 0o600 });
    await expect(runDlq('list', [], { ...base, nkey: sensorKey })).rejects.toThrow(/Permissions Violation/);
    // Without the CA the server is not trusted.
    await expect(
      runDlq('list', [], { ...base, tlsca: undefined, nkey: adminKey } as never),
    ).rejects.toThrow();
  }, 60_000);

  it('outsiders get nothing: no credential, an unknown key, or no TLS', async () => {
    const url = cl.servers[0]!.url;
    const noCred = await refused('connect without credentials', () =>
      connect({ servers: url, tls: { ca: cl.ca }, reconnect: false, timeout: 3000 }),
    );
    const unknown = await refused('connect with an unknown key', () =>
      cl.connect(newCredential().seed).then((c) => c.close()),
    );
    // A plaintext client (raw protocol, as a script would) is told TLS is required.
    const plain = await new Promise<string>((resolve) => {
      const sock = netConnect(cl.servers[0]!.clientPort, '127.0.0.1');
      let got = '';
      sock.on('data', (d) => {
        got += d.toString();
        if (got.includes('INFO')) sock.write('CONNECT {"verbose":false}\r\nSUB sluice.> 1\r\nPING\r\n');
        if (/-ERR|PONG/.test(got)) {
          sock.destroy();
          resolve(got);
        }
      });
      sock.on('close', () => resolve(got));
      sock.on('error', () => resolve(got));
    });
    expect(plain).toMatch(/"tls_required":true/);
    expect(plain).not.toMatch(/PONG/);
    process.stdout.write(
      `outsider refused: ${JSON.stringify({ noCred, unknown, plain: plain.split('\r\n').slice(1).join(' ') })}\n`,
    );
    expect(noCred).toMatch(/authorization|auth/i);
    expect(unknown).toMatch(/authorization|auth/i);
  });
});
