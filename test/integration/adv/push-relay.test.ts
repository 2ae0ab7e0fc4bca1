// Adversarial: the done-key follower's create permission (permissions.ts kvFollowSubjects) lets a
// Sensor credential make a *push* consumer on its own processed bucket, delivering into the bus
// account (SLUICE) to any subject it names, with values it writes itself. The one standing
// subscription there is the controller's JetStream API audit feed ($JS.EVENT.ADVISORY.API, drops.ts),
// which counts purges and deletions into sluice_bus_events_dropped_total and logs who did them. A
// relayed KV value shaped like an audit advisory must not count; a real purge still must.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusConnection } from '../../../src/bus/connection.ts';
import { type Drop, dropLimits, watchDrops } from '../../../src/bus/drops.ts';
import { inboxPrefixFor, sensorPermissions } from '../../../src/bus/permissions.ts';
import { sensorBuckets } from '../../../src/bus/sensor-state.ts';
import { type BusRef, eventStreamName, subjectFor } from '../../../src/bus/subjects.ts';
import { type NatsCluster, newCredential } from '../../harness/nats-cluster.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { securedBusWithSensors } from '../bus/fixtures.ts';

const bus: BusRef = { namespace: 'team-a', busName: 'default' };
const depB = [{ name: 'pay', eventSourceName: 'hooks', eventName: 'payments' }];

describe.skipIf(natsMissing())(
  `a Sensor's push consumer cannot forge the audit feed${skipNote(natsMissing())}`,
  () => {
    let cl: NatsCluster;
    let admin: BusConnection;
    const sb = newCredential();
    beforeAll(async () => {
      ({ cl, admin } = await securedBusWithSensors(bus, { b: depB }));
      await cl.setUsers([{ publicKey: sb.publicKey, permissions: sensorPermissions(bus, 'b', depB) }]);
    }, 60_000);
    afterAll(async () => {
      await admin?.close();
      await cl?.stop();
    });

    it('a forged api_audit advisory relayed from the processed bucket is not counted; a real purge is', async () => {
      const drops: Drop[] = [];
      const stream = eventStreamName(bus);
      const stop = watchDrops(
        () => jetstreamManager(admin.nc),
        stream,
        dropLimits({ retention: 'interest', discard: 'new', maxMsgs: -1, maxBytes: -1, maxAge: 0 }),
        (d) => drops.push(d),
        60_000,
        { nc: async () => admin.nc, ignoreClient: 'sluice-controller' },
      );
      const c = await cl.connect(sb.seed, inboxPrefixFor('sensor', bus.namespace, 'b'));
      try {
        const adminJsm = await jetstreamManager(admin.nc);
        const jsm = await jetstreamManager(c.nc, { checkAPI: false });
        const own = sensorBuckets(bus.namespace, 'b').processed;
        await jsm.consumers.add(`KV_${own}`, {
          name: 'relay',
          filter_subject: `$KV.${own}.>`,
          ack_policy: 'none' as never,
          deliver_subject: '$JS.EVENT.ADVISORY.API',
        });
        const forged = {
          type: 'io.nats.jetstream.advisory.v1.api_audit',
          subject: `$JS.API.STREAM.PURGE.${stream}`,
          response: JSON.stringify({ success: true, purged: 123456 }),
          client: { user: 'admin', name: 'kubectl-operator' },
        };
        await (await new Kvm(c.nc).open(own)).put('probe', JSON.stringify(forged));
        await waitFor(
          'the relay delivered the forged advisory',
          async () => (await adminJsm.consumers.info(`KV_${own}`, 'relay')).delivered.consumer_seq >= 1,
          { timeoutMs: 10_000, intervalMs: 50 },
        );
        // A real purge of one stored event, from a connection other than the controller's.
        await jetstream(admin.nc).publish(subjectFor(bus, 'hooks', 'payments'), '{}');
        await adminJsm.streams.purge(stream);
        await waitFor('the real purge is counted', async () => drops.length > 0, {
          timeoutMs: 10_000,
          intervalMs: 50,
        });
        await new Promise((r) => setTimeout(r, 300));
        process.stdout.write(`drops counted: ${JSON.stringify(drops)}\n`);
        expect(drops.map((d) => [d.reason, d.dropped])).toEqual([['purged', 1]]);
      } finally {
        stop();
        await c.close();
      }
    }, 30_000);
  },
);
