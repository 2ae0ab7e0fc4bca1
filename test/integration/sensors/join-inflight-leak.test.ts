// Adversary (issue 16): a firing whose "settled" change is not stored stays in flight for good.
//
// fire.ts runs a firing, then writes the "used" marks of its events (processed set), then removes
// the firing from the partial match's in-flight set (join-store write behind, compare-and-set).
// When that last write fails (JoinStateConflict: a previous leader still flushing, the case the
// join store's header names; or any bus error / SIGKILL in that window) the message is handed back
// as designed, but its redelivery finds its "used" mark, returns "done" at once and never removes
// the firing from `inflight`. The entry (with whole copies of its events) stays in the stored
// partial match forever: conditionsReset clears only `events`, nothing else ever deletes it. Each
// such failure grows the state, and once it passes maxStateBytes every new event of the trigger is
// dead-lettered as join-too-large: the trigger is wedged for good.
//
// Real nats-server, real buckets made as the controller makes them, the real firer and join store.
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConditions } from '../../../src/api/conditions.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { ensureKv, JsonState, ProcessedSet } from '../../../src/bus/kv.ts';
import { KvGroupCommit } from '../../../src/bus/kv-group.ts';
import { kvBucketName } from '../../../src/bus/subjects.ts';
import type { CloudEvent } from '../../../src/eventsources/envelope.ts';
import { type SensorTrigger, triggerFirer } from '../../../src/sensors/fire.ts';
import type { PartialMatch } from '../../../src/sensors/join.ts';
import { JoinStateConflict, JoinStore } from '../../../src/sensors/join-store.ts';
import type { Outcome } from '../../../src/sensors/settle.ts';
import type { EventsByDependency } from '../../../src/sensors/triggers/trigger.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { log } from './fixtures.ts';

describe.skipIf(natsMissing())(`in-flight firing leak${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  const bucket = async (what: string, whenFull: 'refuse' | 'forget-oldest') => {
    const name = kvBucketName(uniqueName('adv16'), 'leak', what);
    await ensureKv(await jetstreamManager(conn.nc), name, { maxBytes: 16 * 1024 * 1024, whenFull });
    return new Kvm(conn.nc).open(name);
  };

  const ev = (id: string, bytes: number): CloudEvent => ({
    specversion: '1.0',
    id,
    source: 'hooks',
    type: 'webhook',
    subject: 'x',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data: { pad: 'p'.repeat(bytes) },
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  });

  it('a settle write that fails is never retried by the redelivery: the firing stays in flight, then the trigger wedges', async () => {
    const processedKv = await bucket('p', 'forget-oldest');
    const conditionsKv = await bucket('c', 'refuse');
    const state = new JsonState<PartialMatch>(conditionsKv);
    const processed = new ProcessedSet(processedKv, new KvGroupCommit(conn.nc, processedKv));
    const joins = new JoinStore(state);
    const t = {
      name: 'pair',
      conditions: parseConditions('a && b'),
      dependencies: new Set(['a', 'b']),
      fingerprint: 'fp1',
    } as unknown as SensorTrigger;

    // The trigger call: while it runs, another process (the previous leader, still flushing after
    // a hand-over) writes the trigger's partial match, so this process's settle write conflicts.
    let foreignWrites = 0;
    const runs: EventsByDependency[] = [];
    const rejected: string[] = [];
    const fire = triggerFirer({
      namespace: 'ns',
      sensorName: 's',
      processed,
      joins,
      log,
      run: async (_t, events): Promise<Outcome> => {
        runs.push(events);
        if (foreignWrites-- > 0) {
          const cur = await state.get('pair');
          await state.put('pair', cur!.value);
        }
        return { kind: 'done', detail: 'ok' };
      },
      reject: async (_t, events, reason): Promise<Outcome> => {
        rejected.push(`${Object.values(events)[0]!.id}: ${reason}`);
        return { kind: 'dead-lettered', error: reason };
      },
      maxStateBytes: 64 * 1024,
    });

    // The consumer's loop, reduced: a failed handling is a redelivery of the same message.
    const deliver = async (dep: string, e: CloudEvent): Promise<Outcome> => {
      for (let delivery = 1; delivery <= 5; delivery++) {
        try {
          return await fire(t, dep, e, Date.now());
        } catch (err) {
          expect(err).toBeInstanceOf(JoinStateConflict);
        }
      }
      throw new Error(`${e.id} not handled in 5 deliveries`);
    };

    // Pair 0: the settle write conflicts once; the redelivery is acked ("done").
    foreignWrites = 1;
    await deliver('a', ev('a-0', 6 * 1024));
    await deliver('b', ev('b-0', 6 * 1024));
    expect(runs).toHaveLength(1);
    const after0 = (await state.get('pair'))!.value;
    // Every message is acked and the firing ran: nothing should be in flight any more.
    expect(
      Object.keys(after0.inflight ?? {}),
      'firing left in flight after its redelivery was acked',
    ).toEqual([]);
  });

  it('the leak wedges the trigger: after a few such failures a fresh event is dead-lettered join-too-large', async () => {
    const processedKv = await bucket('p2', 'forget-oldest');
    const conditionsKv = await bucket('c2', 'refuse');
    const state = new JsonState<PartialMatch>(conditionsKv);
    const processed = new ProcessedSet(processedKv, new KvGroupCommit(conn.nc, processedKv));
    const joins = new JoinStore(state);
    const t = {
      name: 'pair',
      conditions: parseConditions('a && b'),
      dependencies: new Set(['a', 'b']),
      fingerprint: 'fp1',
    } as unknown as SensorTrigger;
    let conflictNext = false;
    const rejected: string[] = [];
    const fire = triggerFirer({
      namespace: 'ns',
      sensorName: 's',
      processed,
      joins,
      log,
      run: async (): Promise<Outcome> => {
        if (conflictNext) {
          conflictNext = false;
          const cur = await state.get('pair');
          await state.put('pair', cur!.value);
        }
        return { kind: 'done', detail: 'ok' };
      },
      reject: async (_t, events, reason): Promise<Outcome> => {
        rejected.push(`${Object.values(events)[0]!.id}: ${reason}`);
        return { kind: 'dead-lettered', error: reason };
      },
      // maxStateBytes as the runtime sets it is the bus's max payload less 8 KiB; a smaller bound
      // (and smaller events) shows the same growth in fewer rounds.
      maxStateBytes: 64 * 1024,
    });
    const deliver = async (dep: string, e: CloudEvent): Promise<Outcome> => {
      for (let delivery = 1; ; delivery++) {
        try {
          return await fire(t, dep, e, Date.now());
        } catch (err) {
          if (!(err instanceof JoinStateConflict) || delivery >= 5) throw err;
        }
      }
    };
    for (let i = 0; i < 5; i++) {
      conflictNext = true;
      await deliver('a', ev(`a-${i}`, 6 * 1024));
      await deliver('b', ev(`b-${i}`, 6 * 1024));
    }
    const stored = (await state.get('pair'))!.value;
    const leaked = Object.keys(stored.inflight ?? {}).length;
    process.stdout.write(
      `adv16 leak: ${leaked} settled firings still in flight, state ${JSON.stringify(stored).length} bytes\n`,
    );
    // A new, innocent event: it should wait for its partner, not be dead-lettered.
    const out = await deliver('a', ev('a-fresh', 6 * 1024));
    expect(rejected, 'a fresh event dead-lettered because of leaked in-flight firings').toEqual([]);
    expect(out.kind).toBe('done');
  });
});
