// Adversarial: the shared PubAck reply subscription (src/bus/pub-acks.ts) under the faults a
// request per publish used to absorb: a server restart while publishes wait (answers must come
// back on the re-made subscription, nothing may hang), a paused server whose answers arrive after
// the publishes gave up (a late answer must never be taken for a newer publish's), and a
// connection closed under waiting publishes.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import type { BusError } from '../../../../src/bus/errors.ts';
import { Publisher } from '../../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../../src/bus/streams.ts';
import { eventStreamName, subjectFor } from '../../../../src/bus/subjects.ts';
import { startNats } from '../../../harness/nats.ts';
import { natsMissing, skipNote } from '../../../harness/shared.ts';
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
