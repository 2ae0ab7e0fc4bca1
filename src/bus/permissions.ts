// Least privilege on the bus: the exact NATS subjects each role may publish to and subscribe on,
// derived from the same names the bus layer uses. Observed against nats-server 2.12 with the
// clients sluice uses (test/integration/bus/permissions.test.ts runs each role's real work under
// these permissions and checks the server logged no violation):
//
//   every role   $JS.API.INFO (the JetStream client checks the API once); replies only below its
//                own inbox prefix, so no role can read another's replies (a pull's messages arrive
//                as replies)
//   EventSource  publish to its own event subjects (sluice.<ns>.<bus>.<eventsource>.*) and use
//                and watch its own KV buckets (a calendar's last fire, the webhook family's
//                unconfirmed request ids); nothing else: it cannot read events, create, delete or
//                purge streams, or make consumers on anything but its own buckets
//   Sensor       per dependency consumer <c>: $JS.API.CONSUMER.INFO.<stream>.<c>,
//                $JS.API.CONSUMER.MSG.NEXT.<stream>.<c> (pull) and $JS.ACK.<stream>.<c>.> (ack,
//                nak, in-progress, term); its own KV buckets; publish its dead letters
//                (sluice-dlq.<ns>.<bus>.<sensor>.*) and read the DLQ stream's info (its depth
//                metric); it cannot pull from another Sensor's consumers, read the stream
//                directly, or change anything
//   controller   everything (it creates and deletes streams, consumers and buckets)
//
// A KV bucket <b> is the stream KV_<b>: $KV.<b>.> for put/create/update/delete, the stream info
// and direct/stored message gets for reads.
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
  return [
    `$KV.${bucket}.>`,
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
  ];
}

/**
 * What watching KV bucket `bucket` needs (an ordered push consumer on its stream: create, delete
 * on reset or stop, flow-control replies); deliveries arrive on the role's inbox.
 */
export function kvWatchSubjects(bucket: string): string[] {
  const stream = `KV_${bucket}`;
  return [
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
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
    publish: [
      ...base.publish,
      eventSourceSubjects(bus, eventSource),
      // Its own buckets only (the webhook family watches its request-id bucket).
      ...buckets.flatMap((b) => [...kvSubjects(b), ...kvWatchSubjects(b)]),
    ],
    subscribe: base.subscribe,
  };
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
      ...kvSubjects(b.conditions),
      dlqSubject(bus, sensor, 'x').replace(/\.[^.]*$/, '.*'),
      `$JS.API.STREAM.INFO.${dlqStreamName(bus)}`,
    ],
    subscribe: base.subscribe,
  };
}
