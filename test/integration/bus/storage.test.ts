// Storage exhaustion (adversary report on issue 15, break 4): nothing bounded the KV buckets or
// the dead letters, and the server sized its store from the disk, so one Sensor could fill its own
// processed set until every other source's publish failed. Now every stream and bucket has a byte
// limit the server reserves, inside explicit JetStream limits (busLimits of a managed bus): a role
// filling everything it may write to stays inside its own reservations, and other sources keep
// publishing. A bucket that does not fit the store is refused up front, not over-committed.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBusSpec } from '../../../src/api/eventbus.ts';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import type { BusConnection } from '../../../src/bus/connection.ts';
import { eventSourcePermissions, inboxPrefixFor, sensorPermissions } from '../../../src/bus/permissions.ts';
import { busLimits } from '../../../src/bus/placement.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { provisionSensorState, sensorBuckets } from '../../../src/bus/sensor-state.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { type BusRef, dlqSubject, subjectFor } from '../../../src/bus/subjects.ts';
import { type NatsCluster, newCredential, startNatsCluster } from '../../harness/nats-cluster.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';

const bus: BusRef = { namespace: 'team-a', busName: 'default' };
const depA = [{ name: 'order', eventSourceName: 'hooks', eventName: 'orders' }];
const depB = [{ name: 'pay', eventSourceName: 'other', eventName: 'payments' }];
// A managed bus on a 96Mi volume: a 72MiB store, so the test fills it in seconds.
const spec = EventBusSpec.parse({ jetstream: { replicas: 1, persistence: { volumeSize: '96Mi' } } });
const parsed = parseStreamConfig('kvMaxBytes: 4MB');
if (!parsed.ok) throw new Error(parsed.errors.join());
const limits = busLimits(spec, parsed.settings);
const MiB = 1024 ** 2;

describe.skipIf(natsMissing())(`one role cannot take the bus's storage${skipNote(natsMissing())}`, () => {
  let cl: NatsCluster;
  let admin: BusConnection;
  const es = newCredential();
  const sb = newCredential();

  beforeAll(async () => {
    cl = await startNatsCluster(1, { storage: limits.store! });
    admin = await cl.connect(cl.admin.seed);
    const jsm = await jetstreamManager(admin.nc);
    await ensureStreams(jsm, bus, parsed.settings, 1, limits);
    for (const [sensor, dependencies] of [
      ['a', depA],
      ['b', depB],
    ] as const)
      await provisionSensorState(jsm, admin.nc, { bus, sensor, dependencies, kvMaxBytes: limits.kvMaxBytes });
    await cl.setUsers([
      { publicKey: es.publicKey, permissions: eventSourcePermissions(bus, 'hooks') },
      { publicKey: sb.publicKey, permissions: sensorPermissions(bus, 'b', depB) },
    ]);
  }, 60_000);
  afterAll(async () => {
    await admin?.close();
    await cl?.stop();
  });

  it('a Sensor filling its buckets and the dead letters leaves room for every other source', async () => {
    const b = await cl.connect(sb.seed, inboxPrefixFor('sensor', bus.namespace, 'b'));
    const hooks = await cl.connect(es.seed, inboxPrefixFor('eventsource', bus.namespace, 'hooks'));
    try {
      const big = new Uint8Array(1000 * 1024).fill(65);
      const flood = async (subject: (i: number) => string, n: number) => {
        let stored = 0;
        let refused = '';
        for (let i = 0; i < n; i++) {
          try {
            await jetstream(b.nc).publish(subject(i), big);
            stored++;
          } catch (err) {
            refused ||= (err as Error).message;
          }
        }
        return { stored, refused };
      };
      const own = sensorBuckets(bus.namespace, 'b');
      // 3x the store, into everything Sensor b may write to.
      const processed = await flood((i) => `$KV.${own.processed}.junk${i}`, 80);
      const conditions = await flood((i) => `$KV.${own.conditions}.junk${i}`, 40);
      const dead = await flood((i) => dlqSubject(bus, 'b', `t${i}`), 80);
      const jsm = await jetstreamManager(admin.nc);
      const used = (await jsm.getAccountInfo()).storage;
      const bytes = async (s: string) => (await jsm.streams.info(s)).state.bytes;
      const processedBytes = await bytes(`KV_${own.processed}`);
      // The processed set forgets its oldest keys; partial matches and dead letters refuse.
      expect(processed.refused).toBe('');
      expect(processedBytes).toBeLessThanOrEqual(limits.kvMaxBytes);
      expect(conditions.refused).toMatch(/maximum bytes exceeded/);
      expect(await bytes(`KV_${own.conditions}`)).toBeLessThanOrEqual(limits.kvMaxBytes);
      expect(dead.refused).toMatch(/maximum bytes exceeded/);
      // Another source's events (and Sensor a's state) still go in, up to the event stream's own budget.
      const pub = new Publisher(hooks);
      const payload = new Uint8Array(100 * 1024).fill(66);
      for (let i = 0; i < 50; i++)
        expect(
          (await pub.publish(subjectFor(bus, 'hooks', 'orders'), payload, { msgId: `h${i}` })).duplicate,
        ).toBe(false);
      const kvA = await new Kvm(admin.nc).open(sensorBuckets(bus.namespace, 'a').processed);
      await kvA.create('still-writable', 'done');
      process.stdout.write(
        `storage: store ${limits.store!.fileBytes / MiB}MiB; Sensor b stored processed ${processed.stored}/80 (bucket ${(processedBytes / MiB).toFixed(1)}MiB), conditions ${conditions.stored}/40, dead letters ${dead.stored}/80; account uses ${(used / MiB).toFixed(1)}MiB; then 50 x 100KiB events of another source all stored\n`,
      );
    } finally {
      await Promise.all([b.close(), hooks.close()]);
    }
  }, 120_000);

  it('a bucket that does not fit the store is refused when it is made, not over-committed', async () => {
    const jsm = await jetstreamManager(admin.nc);
    await expect(
      provisionSensorState(jsm, admin.nc, {
        bus,
        sensor: 'greedy',
        dependencies: depA,
        kvMaxBytes: limits.store!.fileBytes,
      }),
    ).rejects.toThrow(/insufficient storage/);
  });
});
