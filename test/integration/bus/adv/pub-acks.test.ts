// Adversarial: the shared PubAck reply subscription (src/bus/pub-acks.ts) under the faults a
// request per publish used to absorb: a server restart while publishes wait (answers must come
// back on the re-made subscription, nothing may hang), a paused server whose answers arrive after
// the publishes gave up (a late answer must never be taken for a newer publish's), a
// connection closed under waiting publishes, and publishers made again and again on one
// long-lived connection (`sluice dev` makes a new one on every restart of an EventSource or a
// Sensor): found here, each left its own reply subscription and status watcher behind for good.
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import type { BusError } from '../../../../src/bus/errors.ts';
import { ensureKv } from '../../../../src/bus/kv.ts';
import { KvGroupCommit } from '../../../../src/bus/kv-group.ts';
import { Publisher } from '../../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../../src/bus/streams.ts';
import { eventStreamName, kvBucketName, subjectFor } from '../../../../src/bus/subjects.ts';
import { startNats } from '../../../harness/nats.ts';
import { natsMissing, skipNote, uniqueName } from '../../../harness/shared.ts';
import { enc, newBus, settings } from '../fixtures.ts';
import { pauseNats } from './pause.ts';

type Outcome = { seq: number; duplicate: boolean } | BusError;
const settle = (p: Promise<{ seq: number; duplicate: boolean }>): Promise<Outcome> =>
  p.then(
    (a) => ({ seq: a.seq, duplicate: a.duplicate }),
    (err: unknown) => err as BusError,
  );

/** The Nats-Msg-Id stored at `seq` of `stream`. */
async function msgIdAt(nc: NatsConnection, stream: string, seq: number): Promise<string | undefined> {
  const m = await (await jetstreamManager(nc)).streams.getMessage(stream, { seq });
  return m?.header.get('Nats-Msg-Id');
}

describe.skipIf(natsMissing())(`PubAck inbox under faults${skipNote(natsMissing())}`, () => {
  it('a server restart while publishes wait: each settles, answers match their own message, later ones are answered', async () => {
    const nats = await startNats();
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      const bus = newBus();
      await ensureStreams(await jetstreamManager(nc), bus, settings(''));
      const stream = eventStreamName(bus);
      const pub = new Publisher(nc, { timeoutMs: 4_000 });
      const subject = subjectFor(bus, 'es', 'ev');
      await pub.publish(subject, enc('warm'), { msgId: 'warm' }); // the reply subscription exists
      await nats.stop();
      // Sent while disconnected: buffered by the client, flushed after the reconnect.
      const during = Array.from({ length: 20 }, (_, i) =>
        settle(pub.publish(subject, enc(`d${i}`), { msgId: `d${i}` })),
      );
      await nats.start();
      const outcomes = await Promise.all(during);
      // Nothing hangs: each settled within its timeout. A stored answer names its own message.
      for (const [i, o] of outcomes.entries()) {
        if (o instanceof Error) expect(o.retryable).toBe(true);
        else expect(await msgIdAt(nc, stream, o.seq)).toBe(pub.messageId(`d${i}`));
      }
      // The subscription is back: a fresh publish is answered, and retrying every one of the 20
      // with its id stores each exactly once.
      const again = await Promise.all(
        Array.from({ length: 20 }, (_, i) => pub.publish(subject, enc(`d${i}`), { msgId: `d${i}` })),
      );
      for (const [i, a] of again.entries())
        expect(await msgIdAt(nc, stream, a.seq)).toBe(pub.messageId(`d${i}`));
      const info = await (await jetstreamManager(nc)).streams.info(stream);
      expect(info.state.messages).toBe(21);
      expect(pub.pending).toBe(0);
    } finally {
      await nc.close();
      await nats.stop();
    }
  }, 40_000);

  it('answers arriving after their publishes timed out are never matched to newer publishes', async () => {
    const nats = await startNats();
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1 });
    try {
      const bus = newBus();
      await ensureStreams(await jetstreamManager(nc), bus, settings(''));
      const stream = eventStreamName(bus);
      const pub = new Publisher(nc, { timeoutMs: 300 });
      const subject = subjectFor(bus, 'es', 'ev');
      await pub.publish(subject, enc('warm'), { msgId: 'warm' });
      const resume = await pauseNats(nats.port);
      let late: Outcome[];
      try {
        late = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            settle(pub.publish(subject, enc(`l${i}`), { msgId: `l${i}` })),
          ),
        );
      } finally {
        resume();
      }
      for (const o of late) expect(o).toMatchObject({ code: 'Timeout' });
      expect(pub.pending).toBe(0);
      // Published right after the server resumes, while the 10 late answers are on their way.
      const fresh = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          pub.publish(subject, enc(`f${i}`), { msgId: `f${i}`, timeoutMs: 3_000 }),
        ),
      );
      for (const [i, a] of fresh.entries()) {
        expect(a.duplicate).toBe(false);
        expect(await msgIdAt(nc, stream, a.seq)).toBe(pub.messageId(`f${i}`));
      }
      // The timed-out ones were stored after all: a retry with the same id says "duplicate".
      const retried = await Promise.all(
        Array.from({ length: 10 }, (_, i) => pub.publish(subject, enc(`l${i}`), { msgId: `l${i}` })),
      );
      expect(retried.every((a) => a.duplicate)).toBe(true);
    } finally {
      await nc.close();
      await nats.stop();
    }
  }, 30_000);

  it('publishers made again and again on one connection share one reply subscription', async () => {
    const nats = await startNats();
    const nc = await connect({ servers: nats.url, name: 'reused' });
    try {
      const bus = newBus();
      await ensureStreams(await jetstreamManager(nc), bus, settings(''));
      const subject = subjectFor(bus, 'es', 'ev');
      const subs = async () => {
        const z = (await (await fetch(`http://127.0.0.1:${nats.monitorPort}/connz?subs=1`)).json()) as {
          connections: Array<{ name?: string; subscriptions: number }>;
        };
        const c = z.connections.find((x) => x.name === 'reused');
        if (!c) throw new Error(`no connection named "reused" in ${JSON.stringify(z).slice(0, 500)}`);
        return c.subscriptions;
      };
      await new Publisher(nc).publish(subject, enc('first'), { msgId: 'first' });
      const base = await subs();
      // 100 restarts, each with its own publisher and KV group commit (a Sensor's done marks).
      const { kv } = await (async () => {
        const name = kvBucketName(uniqueName('ns'), 'reuse', 'p');
        await ensureKv(await jetstreamManager(nc), name, {
          maxBytes: 1024 * 1024,
          whenFull: 'forget-oldest',
        });
        return { kv: await new Kvm(nc).open(name) };
      })();
      for (let i = 0; i < 100; i++) {
        await new Publisher(nc).publish(subject, enc(`r${i}`), { msgId: `r${i}` });
        await new KvGroupCommit(nc, kv).put(`k${i}`, 'done');
      }
      // The JetStream client's own request inbox and this connection's one reply subscription.
      expect(base).toBeLessThanOrEqual(2);
      expect(await subs()).toBe(base);
    } finally {
      await nc.close();
      await nats.stop();
    }
  }, 30_000);

  it('a connection closed under waiting publishes settles them (no hang) and refuses new ones at once', async () => {
    const nats = await startNats();
    const nc = await connect({ servers: nats.url });
    try {
      const bus = newBus();
      await ensureStreams(await jetstreamManager(nc), bus, settings(''));
      const pub = new Publisher(nc, { timeoutMs: 1_500 });
      const subject = subjectFor(bus, 'es', 'ev');
      await pub.publish(subject, enc('warm'), { msgId: 'warm' });
      const resume = await pauseNats(nats.port);
      const waiting = Array.from({ length: 50 }, (_, i) =>
        settle(pub.publish(subject, enc(`c${i}`), { msgId: `c${i}` })),
      );
      const closed = nc.close();
      resume();
      await closed;
      const started = Date.now();
      const outcomes = await Promise.all(waiting);
      expect(Date.now() - started).toBeLessThan(3_000);
      for (const o of outcomes) if (o instanceof Error) expect(o.retryable).toBe(true);
      expect(pub.pending).toBe(0);
      await expect(pub.publish(subject, enc('x'), { msgId: 'x' })).rejects.toMatchObject({
        code: 'BusUnavailable',
      });
    } finally {
      await nats.stop();
    }
  }, 30_000);
});
