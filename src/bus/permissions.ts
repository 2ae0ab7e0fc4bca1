// Least privilege on the bus: the exact NATS subjects each role may publish to and subscribe on,
// derived from the same names the bus layer uses. On a managed bus each role also has its own
// NATS account that imports exactly these subjects from the account owning JetStream (see
// accounts.ts), so what JetStream sends back to a reply subject stays in the role's account.
// Observed against nats-server 2.12 with the clients sluice uses
// (test/integration/bus/permissions.test.ts runs each role's real work under these permissions
// and checks the server logged no violation):
//
//   every role   $JS.API.INFO (the JetStream client checks the API once); replies only below its
//                own inbox prefix, so no role can read another's replies (a pull's messages arrive
//                as replies)
//   EventSource  publish to its own event subjects (sluice.<ns>.<bus>.<eventsource>.*) and use
//                its own KV buckets (a calendar's last fire, an sftp source's last listing, the
//                webhook family's unconfirmed request ids, which it follows with stored-message gets); nothing else: it cannot
//                read events, create, delete or purge streams, or make consumers at all. (A KV
//                watch would need one, and a consumer it may create could be a push consumer
//                delivering its own values to any subject of the account owning JetStream: the
//                relay the accounts exist to prevent.)
//   Sensor       per dependency consumer <c>: $JS.API.CONSUMER.INFO.<stream>.<c>,
//                $JS.API.CONSUMER.MSG.NEXT.<stream>.<c> (pull) and $JS.ACK.<stream>.<c>.> (ack,
//                nak, in-progress, term); its own KV buckets; publish its dead letters
//                (sluice-dlq.<ns>.<bus>.<sensor>.*) and read the DLQ stream's info (its depth
//                metric); on its own processed bucket's stream only, make, pull from, inspect and
//                delete the ephemeral ordered consumer that follows the bucket's keys
//                (kv-follow.ts: the create subject pins the filter to $KV.<processed>.>, which
//                the server checks against the request); it cannot pull from another Sensor's
//                consumers, read the event stream directly, or change anything else
//   controller   everything (it creates and deletes streams, consumers and buckets)
//
// A KV bucket <b> is the stream KV_<b>: $KV.<b>.> for put/create/update/delete, the stream info
// and stored-message gets for reads (sluice's buckets have no direct get: reads go to the leader,
// so a read after a write sees it).
import { createHash } from 'node:crypto';
import { dependencyConsumerSettings } from './consumer.ts';
import type { SensorDependencyRef } from './sensor-state.ts';
import { sensorBuckets, sensorConsumerSpecs } from './sensor-state.ts';
import { type BusRef, dlqStreamName, dlqSubject, eventSourceSubjects, eventStreamName } from './subjects.ts';

export interface Permissions {
  publish: string[];
  subscribe: string[];
}

export type Role = 'eventsource' | 'sensor';

/** Reply subjects of one role's connections start with this (pure, stable per object). */
export function inboxPrefixFor(role: Role, namespace: string, name: string): string {
  const h = createHash('sha256').update(`${role}\u0000${namespace}\u0000${name}`).digest('hex').slice(0, 20);
  return `_INBOX_${role === 'sensor' ? 's' : 'e'}${h}`;
}

/** What reading and writing KV bucket `bucket` needs. */
export function kvSubjects(bucket: string): string[] {
  const stream = `KV_${bucket}`;
  return [`$KV.${bucket}.>`, `$JS.API.STREAM.INFO.${stream}`, `$JS.API.STREAM.MSG.GET.${stream}`];
}

const common = (inbox: string): Permissions => ({
  publish: ['$JS.API.INFO'],
  subscribe: [`${inbox}.>`],
});

/** An EventSource: its own event subjects and KV buckets (pure). */
export function eventSourcePermissions(
  bus: BusRef,
  eventSource: string,
  buckets: readonly string[] = [],
): Permissions {
  const base = common(inboxPrefixFor('eventsource', bus.namespace, eventSource));
  return {
    publish: [...base.publish, eventSourceSubjects(bus, eventSource), ...buckets.flatMap(kvSubjects)],
    subscribe: base.subscribe,
  };
}

/**
 * Following the keys of bucket `bucket` with an ephemeral ordered consumer (kv-follow.ts): its
 * creation with the filter pinned to the bucket's subjects, its pulls, info and deletion.
 */
export function kvFollowSubjects(bucket: string): string[] {
  const stream = `KV_${bucket}`;
  return [
    `$JS.API.CONSUMER.CREATE.${stream}.*.$KV.${bucket}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.*`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.DELETE.${stream}.*`,
  ];
}

/** A Sensor: its own consumers, KV buckets and dead letters (pure). */
export function sensorPermissions(
  bus: BusRef,
  sensor: string,
  dependencies: readonly SensorDependencyRef[],
): Permissions {
  const base = common(inboxPrefixFor('sensor', bus.namespace, sensor));
  const stream = eventStreamName(bus);
  const consumers = sensorConsumerSpecs({ bus, sensor, dependencies }).map(
    (c) => dependencyConsumerSettings(c).durable,
  );
  const b = sensorBuckets(bus.namespace, sensor);
  return {
    publish: [
      ...base.publish,
      ...consumers.flatMap((c) => [
        `$JS.API.CONSUMER.INFO.${stream}.${c}`,
        `$JS.API.CONSUMER.MSG.NEXT.${stream}.${c}`,
        `$JS.ACK.${stream}.${c}.>`,
      ]),
      ...kvSubjects(b.processed),
      ...kvFollowSubjects(b.processed),
      ...kvSubjects(b.conditions),
      dlqSubject(bus, sensor, 'x').replace(/\.[^.]*$/, '.*'),
      `$JS.API.STREAM.INFO.${dlqStreamName(bus)}`,
    ],
    subscribe: base.subscribe,
  };
}
