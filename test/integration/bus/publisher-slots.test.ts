// The Publisher's slots (src/bus/publisher.ts) against a real nats-server. Found attacking the
// front door: a header value with CR/LF made nats.js throw after the slot was taken and outside the
// try, so the slot was never given back; the caller filed it as "bus unavailable" and retried, and
// about 80 requests left every publish of the process waiting forever for a slot, while the health
// endpoints still said OK.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { BusError } from '../../../src/bus/errors.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { subjectFor } from '../../../src/bus/subjects.ts';
import { startNats } from '../../harness/nats.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { natsPid } from '../eventsources/front-door.ts';
import { enc, newBus, settings } from './fixtures.ts';

const reason = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (err: unknown) => err as BusError,
  );

describe.skipIf(natsMissing())(`publisher slots${skipNote(natsMissing())}`, () => {
  it('a message that can never be published is a definite refusal and gives its slot back', async () => {
    const nats = await startNats();
    const nc = await connect({ servers: nats.url });
    try {
      const bus = newBus();
      await ensureStreams(await jetstreamManager(nc), bus, settings(''));
      const pub = new Publisher(nc, { maxInFlight: 4 });
      const subject = subjectFor(bus, 'es', 'ev');
      const bad = [
        { msgId: 'evt\r\nx' },
        { msgId: 'ok', headers: { 'ce-id': 'a\nb' } },
        { msgId: 'x'.repeat(5_000) },
        { msgId: '' },
      ];
      for (let round = 0; round < 50; round++) {
        for (const opts of bad) {
          const e = await reason(pub.publish(subject, enc('m'), opts));
          expect(e).toBeInstanceOf(BusError);
          expect(e).toMatchObject({ code: 'Invalid', retryable: false });
        }
      }
      expect(pub.pending).toBe(0);
      // 200 refusals later, all 4 slots are free: valid publishes go through at once.
      const acks = await Promise.all(
        Array.from({ length: 8 }, (_, i) => pub.publish(subject, enc(`m${i}`), { msgId: `good-${i}` })),
      );
      expect(acks.map((a) => a.duplicate)).toEqual(Array(8).fill(false));
      expect(pub.pending).toBe(0);
      expect(pub.wedged()).toBeUndefined();
    } finally {
      await nc.close();
      await nats.stop();
    }
  }, 30_000);

  it('a caller queued for a slot waits at most its PubAck timeout; publishes that stop settling read as wedged', async () => {
    const nats = await startNats();
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1 });
    const pid = natsPid(nats.port);
    try {
      const bus = newBus();
      await ensureStreams(await jetstreamManager(nc), bus, settings(''));
      const pub = new Publisher(nc, { maxInFlight: 2, timeoutMs: 1_500 });
      const subject = subjectFor(bus, 'es', 'ev');
      process.kill(pid, 'SIGSTOP');
      const started = Date.now();
      const inFlight = [0, 1].map((i) => reason(pub.publish(subject, enc('a'), { msgId: `a-${i}` })));
      const queued = reason(pub.publish(subject, enc('b'), { msgId: 'b', timeoutMs: 500 }));
      expect(pub.queued).toBe(1);
      const q = await queued;
      expect(q).toMatchObject({ code: 'Timeout', retryable: true });
      expect(q?.message).toMatch(/no publish slot free within 500 ms/);
      expect(Date.now() - started).toBeLessThan(1_400);
      expect(pub.queued).toBe(0);
      // Publishes in flight and none settling: a liveness probe sees it once it lasts.
      expect(pub.wedged()).toBeUndefined();
      expect(pub.wedged(Date.now() + 60_000)).toMatch(/2 publishes in flight and none settled/);
      for (const r of await Promise.all(inFlight)) expect(r).toMatchObject({ code: 'Timeout' });
      expect(pub.pending).toBe(0);
      expect(pub.wedged(Date.now() + 60_000)).toBeUndefined();
    } finally {
      process.kill(pid, 'SIGCONT');
      await nc.close();
      await nats.stop();
    }
  }, 30_000);
});
