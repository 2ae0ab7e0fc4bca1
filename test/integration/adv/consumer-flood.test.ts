// Adversarial: the done-key follower's create permission (permissions.ts kvFollowSubjects,
// `$JS.API.CONSUMER.CREATE.KV_<processed>.*.$KV.<processed>.>`) pins the stream and the filter,
// not the kind or the number of consumers: a Sensor credential could make durable consumers on
// its processed bucket without end, each outliving its connection (server memory, a store
// directory each, a Raft group each on a replicated bus). The bucket's stream caps its consumers;
// the real follower still works under the cap, and gives its consumer back when it stops.
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusConnection } from '../../../src/bus/connection.ts';
import { followKvKeys } from '../../../src/bus/kv-follow.ts';
import { inboxPrefixFor, sensorPermissions } from '../../../src/bus/permissions.ts';
import { sensorBuckets } from '../../../src/bus/sensor-state.ts';
import type { BusRef } from '../../../src/bus/subjects.ts';
import { type NatsCluster, newCredential } from '../../harness/nats-cluster.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { securedBusWithSensors } from '../bus/fixtures.ts';

const bus: BusRef = { namespace: 'team-a', busName: 'default' };
const depB = [{ name: 'pay', eventSourceName: 'hooks', eventName: 'payments' }];
/** Durable consumers the probe tries to make (bounded: the point is "more than any follower needs"). */
const TRIES = 200;

describe.skipIf(natsMissing())(
  `a Sensor credential's consumers on its processed bucket${skipNote(natsMissing())}`,
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

    it('are bounded, and the follower still works and gives its consumer back', async () => {
      const own = sensorBuckets(bus.namespace, 'b').processed;
      const adminJsm = await jetstreamManager(admin.nc);
      const count = async () => (await adminJsm.streams.info(`KV_${own}`)).state.consumer_count;
      const c = await cl.connect(sb.seed, inboxPrefixFor('sensor', bus.namespace, 'b'));
      try {
        // The real follower first: it works, and its consumer goes when it stops.
        const f = followKvKeys(c.nc, own, () => {});
        await f.caughtUp;
        await waitFor('the follower has its consumer', async () => (await count()) === 1, {
          timeoutMs: 10_000,
          intervalMs: 50,
        });
        f.stop();
        await waitFor('the stopped follower deleted its consumer', async () => (await count()) === 0, {
          timeoutMs: 10_000,
          intervalMs: 50,
        });
        const jsm = await jetstreamManager(c.nc, { checkAPI: false });
        let made = 0;
        let refusal = '';
        for (let i = 0; i < TRIES; i++) {
          try {
            await jsm.consumers.add(`KV_${own}`, {
              durable_name: `d${i}`,
              filter_subject: `$KV.${own}.>`,
              ack_policy: 'explicit' as never,
            });
            made++;
          } catch (e) {
            refusal = (e as Error).message;
            break;
          }
        }
        process.stdout.write(`durable consumers made: ${made} of ${TRIES} tried; refusal: ${refusal}\n`);
        expect(made).toBeLessThan(TRIES);
        expect(refusal).toMatch(/maximum consumers/);
      } finally {
        await c.close();
      }
    }, 60_000);
  },
);
