// publishConfirmed's answers to a full backlog: a momentarily full stream is waited on (a
// consuming Sensor frees room) and the event is stored once; a stream that stays full is refused
// with StreamFull after the short wait, never held for the whole publish deadline.
import type { PubAck } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { BusError } from '../../../src/bus/errors.ts';
import type { Publisher } from '../../../src/bus/publisher.ts';
import { publishConfirmed } from '../../../src/eventsources/confirm.ts';

function fakePublisher(fullFor: number): { publisher: Publisher; calls: () => number } {
  let calls = 0;
  const publisher = {
    publish: async (): Promise<PubAck> => {
      calls += 1;
      if (calls <= fullFor) throw new BusError('StreamFull', 'maximum messages exceeded');
      return { stream: 's', seq: calls, duplicate: false, domain: '' } as PubAck;
    },
  } as unknown as Publisher;
  return { publisher, calls: () => calls };
}

describe('publishConfirmed and a full backlog', () => {
  it('retries while the backlog is momentarily full, then stores', async () => {
    const f = fakePublisher(3);
    const ack = await publishConfirmed(
      f.publisher,
      'x',
      new Uint8Array(),
      { msgId: 'a' },
      { deadlineMs: 10_000 },
    );
    expect(ack.seq).toBe(4);
    expect(f.calls()).toBe(4);
  });
  it('refuses with StreamFull after the short wait, well inside the deadline', async () => {
    const f = fakePublisher(Number.POSITIVE_INFINITY);
    const t0 = Date.now();
    const err = await publishConfirmed(
      f.publisher,
      'x',
      new Uint8Array(),
      { msgId: 'a' },
      { deadlineMs: 10_000, fullWaitMs: 300 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BusError);
    expect((err as BusError).code).toBe('StreamFull');
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(f.calls()).toBeGreaterThan(1);
  });
  it('does not wait on a full backlog once the connection is closed', async () => {
    const f = fakePublisher(Number.POSITIVE_INFINITY);
    const err = await publishConfirmed(
      f.publisher,
      'x',
      new Uint8Array(),
      { msgId: 'a' },
      { deadlineMs: 10_000, closed: () => true },
    ).catch((e: unknown) => e);
    expect((err as BusError).code).toBe('StreamFull');
    expect(f.calls()).toBe(1);
  });
});
