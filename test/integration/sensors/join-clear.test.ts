// Adversary (issue 16): JoinStore.clear() strands the changes waiting for a write.
//
// runtime.ts calls joins.clear() in onStartedLeading (a new leadership term reads the bus again).
// The handlers of the previous term are not stopped by then (consume() only stops pulling; it
// waits for its handlers), so a replica that loses its lease and wins it back (an API server
// hiccup past renewDeadline with no other replica ready) clears the map while some of its own
// handlers have a change waiting for its write. JoinStore.flush() drops an entry that is no longer
// in the map without settling its waiters:
//   - a change whose write was scheduled (setImmediate) when clear() ran: flush() returns at once;
//   - a change made while an earlier write was in flight: after that write, the follow-up flush
//     is skipped because the entry is no longer the map's.
// Their `durable` promise never settles: the handler neither acks nor naks, working() keeps
// extending the message's ack deadline every 10 s (so it is never redelivered while the process
// lives: the event is stuck), and stop() waits on consume()'s drain for ever (SIGTERM hangs until
// the kubelet SIGKILLs). Expected: every `durable` settles (resolved once stored, or rejected so
// the message is redelivered).
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { ensureKv, JsonState } from '../../../src/bus/kv.ts';
import { kvBucketName } from '../../../src/bus/subjects.ts';
import type { CloudEvent } from '../../../src/eventsources/envelope.ts';
import type { PartialMatch } from '../../../src/sensors/join.ts';
import { JoinStore } from '../../../src/sensors/join-store.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

describe.skipIf(natsMissing())(`JoinStore.clear() during a write${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  const store = async () => {
    const name = kvBucketName(uniqueName('adv16'), 'clr', 'c');
    await ensureKv(await jetstreamManager(conn.nc), name, { maxBytes: 4 * 1024 * 1024, whenFull: 'refuse' });
    return new JoinStore(new JsonState<PartialMatch>(await new Kvm(conn.nc).open(name)));
  };
  const ev = (id: string): CloudEvent => ({
    specversion: '1.0',
    id,
    source: 's',
    type: 't',
    subject: 'x',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data: null,
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  });
  const add = (dep: string, id: string) => (cur: PartialMatch) => ({
    next: { ...cur, events: { ...cur.events, [dep]: ev(id) } },
    result: undefined,
  });
  /** 'settled' when `p` resolves or rejects within `ms`, else 'pending'. */
  const settledWithin = (p: Promise<void>, ms: number) =>
    Promise.race([
      p.then(
        () => 'settled' as const,
        () => 'settled' as const,
      ),
      new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms).unref()),
    ]);

  it('a change whose write is scheduled when clear() runs still settles (stored or refused)', async () => {
    const s = await store();
    await (await s.change('T', add('a', 'warm'))).durable; // entry loaded and stored once
    const c = await s.change('T', add('b', 'e1')); // write scheduled for the next turn
    s.clear(); // a new leadership term begins
    expect(await settledWithin(c.durable, 3000), 'durable of a change made before clear()').toBe('settled');
  });

  it('a change made while a write is in flight, then clear(), still settles', async () => {
    const s = await store();
    await (await s.change('T', add('a', 'warm'))).durable;
    const first = await s.change('T', add('b', 'e1'));
    // Let the write of `first` start (it is scheduled with setImmediate), then change again.
    await new Promise((r) => setImmediate(r));
    const second = await s.change('T', add('c', 'e2'));
    s.clear();
    await first.durable;
    expect(await settledWithin(second.durable, 3000), 'durable of a change made during a write').toBe(
      'settled',
    );
  });
});
