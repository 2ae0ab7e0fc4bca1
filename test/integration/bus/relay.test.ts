// Reply-subject relays, the attack that made every role the bus admin (adversary report on issue
// 15, breaks 1 and 2a): NATS checks the subject a client publishes to, never the reply subject it
// names, and JetStream answers requests by publishing to that reply subject. A role that may ask
// for its own KV value, publish its own event or pull its own consumer can aim the answer at the
// JetStream API, another role's KV bucket, another source's event subject or another role's inbox.
// Each relay is tried with the least privileged credentials on a 1-server and a 3-server secured
// bus (the generated config: every role in its own account); each must change nothing.
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import type { BusConnection } from '../../../src/bus/connection.ts';
import { kvKey } from '../../../src/bus/kv.ts';
import { eventSourcePermissions, inboxPrefixFor, sensorPermissions } from '../../../src/bus/permissions.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { provisionSensorState, sensorBuckets } from '../../../src/bus/sensor-state.ts';
import { calendarBucket, provisionBuckets } from '../../../src/bus/source-state.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import {
  type BusRef,
  consumerName,
  dlqStreamName,
  eventStreamName,
  subjectFor,
} from '../../../src/bus/subjects.ts';
import { type NatsCluster, newCredential, startNatsCluster } from '../../harness/nats-cluster.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';

const bus: BusRef = { namespace: 'team-a', busName: 'default' };
const depA = [{ name: 'order', eventSourceName: 'hooks', eventName: 'orders' }];
const depB = [{ name: 'pay', eventSourceName: 'other', eventName: 'payments' }];
const enc = (s: string) => new TextEncoder().encode(s);
const stream = eventStreamName(bus);

/** What the attacker may reach, and what must still be there afterwards. */
interface Snapshot {
  events: number;
  lastSeq: number;
  aPending: number;
  streams: string[];
  consumers: string[];
  victimKey: boolean;
}

describe.skipIf(natsMissing())(`reply-subject relays change nothing${skipNote(natsMissing())}`, () => {
  for (const size of [1, 3] as const) {
    describe(`${size}-server bus`, () => {
      let cl: NatsCluster;
      let admin: BusConnection;
      const roles = {
        hooks: newCredential(),
        other: newCredential(),
        a: newCredential(),
        b: newCredential(),
      };
      const victim = kvKey('team-a/a/deliver/order=hooks:orders:1');

      beforeAll(async () => {
        cl = await startNatsCluster(size);
        admin = await cl.connect(cl.admin.seed);
        const jsm = await jetstreamManager(admin.nc);
        const cfg = parseStreamConfig('');
        if (!cfg.ok) throw new Error(cfg.errors.join());
        await ensureStreams(jsm, bus, cfg.settings, size);
        await provisionSensorState(jsm, admin.nc, { bus, sensor: 'a', dependencies: depA, replicas: size });
        await provisionSensorState(jsm, admin.nc, { bus, sensor: 'b', dependencies: depB, replicas: size });
        const cal = (s: string) => [calendarBucket(bus.namespace, s)];
        await provisionBuckets(jsm, [...cal('hooks'), ...cal('other')], size);
        await cl.setUsers([
          {
            publicKey: roles.hooks.publicKey,
            permissions: eventSourcePermissions(bus, 'hooks', cal('hooks')),
          },
          {
            publicKey: roles.other.publicKey,
            permissions: eventSourcePermissions(bus, 'other', cal('other')),
          },
          { publicKey: roles.a.publicKey, permissions: sensorPermissions(bus, 'a', depA) },
          { publicKey: roles.b.publicKey, permissions: sensorPermissions(bus, 'b', depB) },
        ]);
        // One genuine event Sensor a has not consumed yet.
        const hooks = await cl.connect(
          roles.hooks.seed,
          inboxPrefixFor('eventsource', bus.namespace, 'hooks'),
        );
        await new Publisher(hooks).publish(subjectFor(bus, 'hooks', 'orders'), enc('{"n":1}'), {
          msgId: 'h1',
        });
        await hooks.close();
      }, 90_000);
      afterAll(async () => {
        await admin?.close();
        await cl?.stop();
      });

      const snapshot = async (): Promise<Snapshot> => {
        const jsm = await jetstreamManager(admin.nc);
        const info = await jsm.streams.info(stream);
        const streams: string[] = [];
        for await (const s of jsm.streams.list()) streams.push(s.config.name);
        const consumers: string[] = [];
        for await (const c of jsm.consumers.list(stream)) consumers.push(c.name);
        const kv = await new Kvm(admin.nc).open(sensorBuckets(bus.namespace, 'a').processed);
        return {
          events: info.state.messages,
          lastSeq: info.state.last_seq,
          aPending: (await jsm.consumers.info(stream, consumerName('a', 'order'))).num_pending,
          streams: streams.sort(),
          consumers: consumers.sort(),
          victimKey: (await kv.get(victim)) !== null,
        };
      };

      /** Every target a relay could aim at: the JetStream API, another role's state, inbox, subject. */
      const targets = (inboxA: string) => [
        `$JS.API.STREAM.PURGE.${stream}`,
        `$JS.API.STREAM.DELETE.${dlqStreamName(bus)}`,
        `$JS.API.CONSUMER.DELETE.${stream}.${consumerName('a', 'order')}`,
        `$JS.API.CONSUMER.CREATE.${stream}.spy`,
        `$KV.${sensorBuckets(bus.namespace, 'a').processed}.${victim}`,
        subjectFor(bus, 'hooks', 'orders'),
        `${inboxA}.spy`,
      ];

      /** Sends every relay the role's own rights allow, then a request that returns after them. */
      const attack = async (nc: NatsConnection, own: { bucket: string; subject?: string }) => {
        const inboxA = inboxPrefixFor('sensor', bus.namespace, 'a');
        const body = JSON.stringify({ stream_name: stream, config: { deliver_subject: `${inboxA}.spy` } });
        nc.publish(`$KV.${own.bucket}.relay`, enc(body));
        for (const target of targets(inboxA)) {
          // Its own KV value (a stored-message get) answered to the target.
          nc.publish(
            `$JS.API.STREAM.MSG.GET.KV_${own.bucket}`,
            enc(JSON.stringify({ last_by_subj: `$KV.${own.bucket}.relay` })),
            {
              reply: target,
            },
          );
          // A PubAck of its own KV put or its own event, answered to the target.
          nc.publish(`$KV.${own.bucket}.x`, enc(body), { reply: target });
          if (own.subject) nc.publish(own.subject, enc(body), { reply: target });
        }
        // The adversary's primitive: a direct get of its own bucket, answered anywhere.
        nc.publish(`$JS.API.DIRECT.GET.KV_${own.bucket}.$KV.${own.bucket}.relay`, undefined, {
          reply: `$JS.API.STREAM.PURGE.${stream}`,
        });
        await nc.flush();
        // Its own stream info returns after the server has dispatched everything sent before.
        await jetstreamManager(nc, { checkAPI: false }).then((j) => j.streams.info(`KV_${own.bucket}`));
      };

      it('an EventSource and a Sensor credential relay into the API, KV, subjects and inboxes: nothing changes', async () => {
        const before = await snapshot();
        // Sensor a listens on its own inbox: a relay into it must not arrive.
        const a = await cl.connect(roles.a.seed, inboxPrefixFor('sensor', bus.namespace, 'a'));
        const intoA: string[] = [];
        a.nc.subscribe(`${inboxPrefixFor('sensor', bus.namespace, 'a')}.>`, {
          callback: (_e, m) => {
            intoA.push(m.subject);
          },
        });
        await a.nc.flush();
        const other = await cl.connect(
          roles.other.seed,
          inboxPrefixFor('eventsource', bus.namespace, 'other'),
        );
        const b = await cl.connect(roles.b.seed, inboxPrefixFor('sensor', bus.namespace, 'b'));
        try {
          await attack(other.nc, {
            bucket: calendarBucket(bus.namespace, 'other'),
            subject: subjectFor(bus, 'other', 'payments'),
          });
          await attack(b.nc, { bucket: sensorBuckets(bus.namespace, 'b').processed });
          const after = await snapshot();
          // Events the attacker published on its own subject (what it may do anyway) are the only
          // new ones; Sensor a's unconsumed event is still there, nothing was forged for it.
          expect({ ...after, events: 0, lastSeq: 0 }).toEqual({ ...before, events: 0, lastSeq: 0 });
          const jsm = await jetstreamManager(admin.nc);
          const added: string[] = [];
          for (let seq = before.lastSeq + 1; seq <= after.lastSeq; seq++) {
            const m = await jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
            if (m) added.push(m.subject);
          }
          expect(after.events).toBe(before.events + added.length);
          expect(new Set(added)).toEqual(new Set(added.length ? [subjectFor(bus, 'other', 'payments')] : []));
          expect(await jsm.streams.getMessage(stream, { seq: 1 }).then((m) => m?.string())).toBe('{"n":1}');
          expect(intoA).toEqual([]);
          process.stdout.write(
            `${size}-server relays: ${targets('inbox').length} targets x 3 paths x 2 roles; state before ${JSON.stringify(before)} after ${JSON.stringify(after)}\n`,
          );
        } finally {
          await Promise.all([a.close(), other.close(), b.close()]);
        }
      }, 60_000);
    });
  }
});
