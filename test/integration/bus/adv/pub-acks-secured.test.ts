// Adversarial: the EventSource's PubAck reply subscription (src/bus/pub-acks.ts) on a secured bus
// (per-role accounts, accounts.ts). (1) Forged answers: another credential on the bus (a Sensor,
// an EventSource of another namespace) aims messages at the EventSource's reply subjects, directly
// or as the reply subject of its own JetStream publishes, to make the EventSource answer 2xx for
// an event that was never stored; none may ever reach it. (2) The reply subscription is taken
// away by a permission reload (a credential's permissions re-issued, an inbox prefix changed) and
// given back: publishes must be answered again, as nats.js re-made its request inbox, instead of
// every publish timing out for the rest of the process's life while its health says OK. Found
// here: the subscription's error callback read a message that is not there, and the TypeError
// closed the client's protocol reader, so nothing on that connection was answered any more.
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusConnection } from '../../../../src/bus/connection.ts';
import { KvGroupCommit } from '../../../../src/bus/kv-group.ts';
import {
  eventSourcePermissions,
  inboxPrefixFor,
  sensorPermissions,
} from '../../../../src/bus/permissions.ts';
import { PubAckInbox } from '../../../../src/bus/pub-acks.ts';
import { Publisher } from '../../../../src/bus/publisher.ts';
import { sensorBuckets } from '../../../../src/bus/sensor-state.ts';
import { type BusRef, dlqSubject, subjectFor } from '../../../../src/bus/subjects.ts';
import { type NatsCluster, newCredential } from '../../../harness/nats-cluster.ts';
import { waitFor } from '../../../harness/proc.ts';
import { natsMissing, skipNote } from '../../../harness/shared.ts';
import { enc, securedBusWithSensors } from '../fixtures.ts';

const bus: BusRef = { namespace: 'team-a', busName: 'default' };
const other: BusRef = { namespace: 'team-b', busName: 'default' };
const dep = [{ name: 'pay', eventSourceName: 'hooks', eventName: 'payments' }];

describe.skipIf(natsMissing())(`the PubAck inbox on a secured bus${skipNote(natsMissing())}`, () => {
  let cl: NatsCluster;
  let admin: BusConnection;
  const es = newCredential();
  const sensor = newCredential();
  const foreign = newCredential();
  const users = (esSubscribe?: string[]) => [
    {
      publicKey: es.publicKey,
      permissions: {
        ...eventSourcePermissions(bus, 'hooks'),
        ...(esSubscribe ? { subscribe: esSubscribe } : {}),
      },
    },
    { publicKey: sensor.publicKey, permissions: sensorPermissions(bus, 's', dep) },
    { publicKey: foreign.publicKey, permissions: eventSourcePermissions(other, 'hooks') },
  ];
  beforeAll(async () => {
    ({ cl, admin } = await securedBusWithSensors(bus, { s: dep }));
    await cl.setUsers(users());
  }, 60_000);
  afterAll(async () => {
    await admin?.close();
    await cl?.stop();
  });

  it('no other credential can put a message on the EventSource reply subjects', async () => {
    const esConn = await cl.connect(es.seed, inboxPrefixFor('eventsource', bus.namespace, 'hooks'));
    const sConn = await cl.connect(sensor.seed, inboxPrefixFor('sensor', bus.namespace, 's'));
    const fConn = await cl.connect(foreign.seed, inboxPrefixFor('eventsource', other.namespace, 'hooks'));
    try {
      const acks = new PubAckInbox(esConn.nc);
      const subject = subjectFor(bus, 'hooks', 'payments');
      await acks.publish(subject, enc('real'), { timeoutMs: 3_000 });
      // Worst case: the attacker knows the exact reply prefix (it is random per connection).
      const prefix = (acks as unknown as { replies: { prefix: string } }).replies.prefix;
      const seen: string[] = [];
      esConn.nc.subscribe(`${prefix}.>`, {
        callback: (_e, m) => {
          seen.push(m.subject);
        },
      });
      const forged = JSON.stringify({ stream: 'x', seq: 1 });
      for (const c of [sConn, fConn]) {
        for (let n = 1; n < 50; n++) c.nc.publish(`${prefix}.${n}`, forged);
        // As the reply subject of a publish it may make: JetStream's answer stays in its account.
        c.nc.publish(c === sConn ? dlqSubject(bus, 's', 'x') : subjectFor(other, 'hooks', 'e'), 'x', {
          reply: `${prefix}.1`,
        });
        await c.nc.flush();
      }
      // A real answer after them proves this subscription hears what reaches the reply subjects.
      await acks.publish(subject, enc('real'), { timeoutMs: 3_000 });
      expect(seen).toEqual([`${prefix}.1`]);
    } finally {
      await Promise.all([esConn.close(), sConn.close(), fConn.close()]);
    }
  }, 30_000);

  it("a refused publish fails only itself: the Sensor's done marks and dead letters in the same write are stored", async () => {
    const sConn = await cl.connect(sensor.seed, inboxPrefixFor('sensor', bus.namespace, 's'));
    try {
      const kv = await new Kvm(sConn.nc).open(sensorBuckets(bus.namespace, 's').processed);
      const marks = new KvGroupCommit(sConn.nc, kv);
      const dlq = new Publisher(sConn);
      const acks = PubAckInbox.of(sConn.nc);
      const started = Date.now();
      const forbidden = subjectFor(bus, 'hooks', 'payments'); // an EventSource's subject
      const [done, dead, refused, again] = await Promise.allSettled([
        Promise.all(Array.from({ length: 20 }, (_, i) => marks.put(`k${i}`, 'done'))),
        dlq.publish(dlqSubject(bus, 's', 't'), enc('dead letter'), { msgId: 'dl-1' }),
        acks.publish(forbidden, enc('forged event'), { timeoutMs: 5_000 }),
        acks.publish(forbidden, enc('forged event 2'), { timeoutMs: 5_000 }),
      ]);
      expect(done.status).toBe('fulfilled');
      expect(dead.status).toBe('fulfilled');
      for (const r of [refused, again]) {
        expect(r.status).toBe('rejected');
        expect(String((r as PromiseRejectedResult).reason)).toMatch(/permission/i);
      }
      // Refused as soon as the server said so, not at the timeout.
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(acks.pending).toBe(0);
    } finally {
      await sConn.close();
    }
  }, 30_000);

  it('a reply subscription taken away by a permission reload comes back when the permission does', async () => {
    const esConn = await cl.connect(es.seed, inboxPrefixFor('eventsource', bus.namespace, 'hooks'));
    try {
      const pub = new Publisher(esConn, { timeoutMs: 1_000 });
      const subject = subjectFor(bus, 'hooks', 'payments');
      await pub.publish(subject, enc('a'), { msgId: 'a' });
      // Permissions re-issued without the inbox: the server drops the subscription.
      await cl.setUsers(users(['_INBOX_elsewhere.>']));
      await expect(pub.publish(subject, enc('b'), { msgId: 'b' })).rejects.toMatchObject({ retryable: true });
      await cl.setUsers(users());
      // Given back: publishes are answered again (a fresh reply subscription).
      await waitFor(
        'a publish answered after the permission is back',
        async () =>
          pub.publish(subject, enc('c'), { msgId: 'c' }).then(
            () => true,
            () => false,
          ),
        { timeoutMs: 8_000, intervalMs: 200 },
      );
      expect(pub.pending).toBe(0);
    } finally {
      await esConn.close();
    }
  }, 40_000);
});
