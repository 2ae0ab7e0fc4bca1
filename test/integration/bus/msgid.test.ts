// Message-id pre-emption (adversary report on issue 15, break 2b): JetStream deduplicates per
// stream, so an EventSource that publishes a message id first makes another source's event with
// that id a "duplicate" that is never stored. Every id a source sends is keyed by its own
// credential: another credential cannot produce it, while the same source re-sending the same
// event (the webhook's retry after an ambiguous failure), from a new connection too, is still
// stored once. Also Sensors' dead letters, which go through the same publisher.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusConnection } from '../../../src/bus/connection.ts';
import { eventSourcePermissions, inboxPrefixFor, sensorPermissions } from '../../../src/bus/permissions.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import {
  type BusRef,
  dlqStreamName,
  dlqSubject,
  eventStreamName,
  subjectFor,
} from '../../../src/bus/subjects.ts';
import { type NatsCluster, newCredential } from '../../harness/nats-cluster.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { securedBusWithSensors } from './fixtures.ts';

const bus: BusRef = { namespace: 'team-a', busName: 'default' };
const enc = (s: string) => new TextEncoder().encode(s);

describe.skipIf(natsMissing())(
  `one source cannot pre-empt another's message ids${skipNote(natsMissing())}`,
  () => {
    let cl: NatsCluster;
    let admin: BusConnection;
    const hooks = newCredential();
    const other = newCredential();
    const sa = newCredential();
    const sb = newCredential();
    const depA = [{ name: 'order', eventSourceName: 'hooks', eventName: 'orders' }];
    const depB = [{ name: 'pay', eventSourceName: 'other', eventName: 'payments' }];

    beforeAll(async () => {
      ({ cl, admin } = await securedBusWithSensors(bus, { a: depA, b: depB }));
      await cl.setUsers([
        { publicKey: hooks.publicKey, permissions: eventSourcePermissions(bus, 'hooks') },
        { publicKey: other.publicKey, permissions: eventSourcePermissions(bus, 'other') },
        { publicKey: sa.publicKey, permissions: sensorPermissions(bus, 'a', depA) },
        { publicKey: sb.publicKey, permissions: sensorPermissions(bus, 'b', depB) },
      ]);
    }, 60_000);
    afterAll(async () => {
      await admin?.close();
      await cl?.stop();
    });

    it('ids published first by another EventSource do not suppress the real event; a retry is still stored once', async () => {
      const att = await cl.connect(hooks.seed, inboxPrefixFor('eventsource', bus.namespace, 'hooks'));
      const victim = await cl.connect(other.seed, inboxPrefixFor('eventsource', bus.namespace, 'other'));
      try {
        const eventId = `other/payments/delivery-${Date.now()}`; // what the runtime passes for event "delivery-…"
        const own = new Publisher(att);
        // Everything the attacker can compute: the raw id, and the id keyed by its own credential.
        const attempts = [eventId, own.messageId(eventId), eventId.split('/').pop()!];
        for (const msgID of attempts)
          expect(
            (
              await jetstream(att.nc).publish(subjectFor(bus, 'hooks', 'orders'), enc('{"pre-empt":1}'), {
                msgID,
              })
            ).duplicate,
          ).toBe(false);
        const pub = new Publisher(victim);
        const first = await pub.publish(subjectFor(bus, 'other', 'payments'), enc('{"real":1}'), {
          msgId: eventId,
        });
        expect(first.duplicate).toBe(false);
        // The same source sending the same event again (a retry; also from a new connection) is a duplicate.
        expect(
          (await pub.publish(subjectFor(bus, 'other', 'payments'), enc('{"real":1}'), { msgId: eventId }))
            .duplicate,
        ).toBe(true);
        const again = await cl.connect(other.seed, inboxPrefixFor('eventsource', bus.namespace, 'other'));
        const retry = await new Publisher(again).publish(
          subjectFor(bus, 'other', 'payments'),
          enc('{"real":1}'),
          {
            msgId: eventId,
          },
        );
        await again.close();
        expect(retry).toMatchObject({ duplicate: true, seq: first.seq });
        const stored = await (await jetstreamManager(admin.nc)).streams.getMessage(eventStreamName(bus), {
          seq: first.seq,
        });
        expect(stored?.string()).toBe('{"real":1}');
        process.stdout.write(
          `msg-id pre-emption: ${attempts.length} attempts by another source, real event stored at seq ${first.seq}, retry duplicate\n`,
        );
      } finally {
        await Promise.all([att.close(), victim.close()]);
      }
    }, 60_000);

    it("a Sensor cannot pre-empt another Sensor's dead letter", async () => {
      const att = await cl.connect(sb.seed, inboxPrefixFor('sensor', bus.namespace, 'b'));
      const victim = await cl.connect(sa.seed, inboxPrefixFor('sensor', bus.namespace, 'a'));
      try {
        const id = `dlq/${'k'.repeat(64)}`; // the Sensor runtime's dead-letter id: dlq/<idempotency key>
        await jetstream(att.nc).publish(dlqSubject(bus, 'b', 'x'), enc('{}'), { msgID: id });
        const dead = await new Publisher(victim).publish(dlqSubject(bus, 'a', 'deliver'), enc('{"dead":1}'), {
          msgId: id,
        });
        expect(dead.duplicate).toBe(false);
        expect(dead.stream).toBe(dlqStreamName(bus));
      } finally {
        await Promise.all([att.close(), victim.close()]);
      }
    }, 30_000);
  },
);
