// Group commit of KV writes on a real server (kv-group.ts): writes of one turn share one atomic
// batch (from 32 writes on; fewer go as separate writes), each write keeps its own answer (a create on an existing key still fails, alone), the
// revisions given are the ones stored, and a bucket without atomic batches falls back to one
// write at a time. Plus the write-behind partial-match store built on the same bucket kind.
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { isOutage } from '../../../src/bus/errors.ts';
import { ensureKv, JsonState, ProcessedSet } from '../../../src/bus/kv.ts';
import { KvGroupCommit } from '../../../src/bus/kv-group.ts';
import { kvBucketName } from '../../../src/bus/subjects.ts';
import { Claims } from '../../../src/sensors/claims.ts';
import type { PartialMatch } from '../../../src/sensors/join.ts';
import { JoinStateConflict, JoinStore } from '../../../src/sensors/join-store.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

describe.skipIf(natsMissing())(`KV group commit${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  /** A bucket made the way the controller makes them (allow_atomic on). */
  const bucket = async (what: string) => {
    const name = kvBucketName(uniqueName('ns'), 'grp', what);
    const jsm = await jetstreamManager(conn.nc);
    await ensureKv(jsm, name, { maxBytes: 8 * 1024 * 1024, whenFull: 'forget-oldest' });
    return new Kvm(conn.nc).open(name);
  };

  it('one batch per turn; each write its own revision; a conflicting create fails alone', async () => {
    const kv = await bucket('a');
    // minBatch 1: the three writes of a turn below are batched too, to show a batch's answers.
    const g = new KvGroupCommit(conn.nc, kv, { minBatch: 1 });
    const revs = await Promise.all(Array.from({ length: 300 }, (_, i) => g.create(`k${i}`, `v${i}`)));
    // 300 writes asked in one turn: two batches (at most 256 each), not 300 round trips.
    expect(g.stats).toMatchObject({ batches: 2, writes: 300, fallbacks: 0 });
    for (const i of [0, 1, 150, 255, 256, 299]) {
      const e = await kv.get(`k${i}`);
      expect(e?.string()).toBe(`v${i}`);
      expect(e?.revision).toBe(revs[i]);
    }
    // k5 exists: its create fails; its neighbours in the same batch are written all the same.
    const r = await Promise.allSettled([g.create('n1', 'x'), g.create('k5', 'again'), g.put('k6', 'over')]);
    expect(r[0].status).toBe('fulfilled');
    expect(r[1].status).toBe('rejected');
    expect(String((r[1] as PromiseRejectedResult).reason)).toMatch(/wrong last sequence/);
    expect(r[2].status).toBe('fulfilled');
    expect((await kv.get('k5'))?.string()).toBe('v5');
    expect((await kv.get('k6'))?.string()).toBe('over');
    expect(g.stats.fallbacks).toBe(1);
    // A deleted key can be created again (as kv.create allows), grouped or not.
    await kv.delete('k7');
    await expect(g.create('k7', 'reborn')).resolves.toBeGreaterThan(0);
    expect(g.grouping).toBe(true);
  });

  it('a small group goes as separate writes, each its own answer; a large one is batched', async () => {
    const kv = await bucket('small');
    const g = new KvGroupCommit(conn.nc, kv);
    await g.create('x', 'old');
    const r = await Promise.allSettled([g.put('a', '1'), g.create('x', 'again'), g.create('b', '2')]);
    expect(r.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((r[1] as PromiseRejectedResult).reason)).toMatch(/wrong last sequence/);
    const revs = r.map((x) => (x.status === 'fulfilled' ? x.value : 0));
    expect((await kv.get('a'))?.revision).toBe(revs[0]);
    expect((await kv.get('b'))?.revision).toBe(revs[2]);
    expect((await kv.get('x'))?.string()).toBe('old');
    // Four turns of fewer than 32 writes: no batch at all (no ~1 ms of server-side staging each).
    expect(g.stats).toMatchObject({ batches: 0, singles: 4, fallbacks: 0 });
    await Promise.all(Array.from({ length: 40 }, (_, i) => g.put(`m${i}`, 'v')));
    expect(g.stats).toMatchObject({ batches: 1, writes: 40, singles: 4 });
    // A deleted key can be created again on this path too (as kv.create allows).
    await kv.delete('b');
    await expect(g.create('b', 'reborn')).resolves.toBeGreaterThan(0);
    expect((await kv.get('b'))?.string()).toBe('reborn');
    // No stream behind the bucket any more: the write fails as a bus outage (handed back, retried).
    await (await jetstreamManager(conn.nc)).streams.delete((await kv.status()).streamInfo.config.name);
    const gone = await g.put('c', '1').catch((e: unknown) => e);
    expect(isOutage(gone), String(gone)).toBe(true);
  });

  it('a bucket without atomic batches: every write on its own, same answers', async () => {
    const name = kvBucketName(uniqueName('ns'), 'grp', 'old');
    const kv = await new Kvm(conn.nc).create(name, { history: 1 }); // an older bucket: no allow_atomic
    const g = new KvGroupCommit(conn.nc, kv, { minBatch: 1 });
    const r = await Promise.allSettled([g.create('a', '1'), g.create('b', '2'), g.put('c', '3')]);
    expect(r.map((x) => x.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect(g.grouping).toBe(false);
    await expect(g.create('a', 'again')).rejects.toThrow(/wrong last sequence/);
    expect((await kv.get('a'))?.string()).toBe('1');
  });

  it('claims through the group: one claim per key wins, done marks land, repeats see done', async () => {
    const kv = await bucket('claims');
    const set = new ProcessedSet(kv, new KvGroupCommit(conn.nc, kv));
    const claims = new Claims(set, 'test-owner', 30_000);
    // 50 keys, each claimed twice in the same turn (a redelivery racing the first delivery).
    const keys = Array.from({ length: 50 }, (_, i) => `t/e${i}`);
    const got = await Promise.all([...keys, ...keys].map((k) => claims.claim(k)));
    for (let i = 0; i < 50; i++) {
      const states = [got[i]!.state, got[i + 50]!.state].sort();
      expect(states).toEqual(['busy', 'new']);
    }
    await Promise.all(keys.map((k) => set.markDone(k, 'ok')));
    const again = await Promise.all(keys.map((k) => claims.claim(k)));
    expect(again.every((c) => c.state === 'done')).toBe(true);
  });

  it('join store: one write per turn, acked only once stored, a foreign write is a conflict', async () => {
    const kv = await bucket('conds');
    const state = new JsonState<PartialMatch>(kv);
    const store = new JoinStore(state);
    const ev = (id: string) => ({
      specversion: '1.0' as const,
      id,
      source: 's',
      type: 't',
      subject: 'x',
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data: null,
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    const changes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.change('T', (cur) => ({
          next: { ...cur, events: { ...cur.events, [`d${i}`]: ev(`e${i}`) } },
          result: i,
        })),
      ),
    );
    await Promise.all(changes.map((c) => c.durable));
    const stored = await state.get('T');
    expect(Object.keys(stored!.value.events)).toHaveLength(20);
    // 20 changes, at most a few writes (the first one after the read, then the rest together).
    expect(stored!.revision).toBeLessThanOrEqual(3);
    // Someone else writes the key: the next change is not stored, and the store reads again.
    await state.put('T', { events: {}, inflight: {} });
    const c = await store.change('T', (cur) => ({ next: { ...cur, events: { x: ev('x') } }, result: 0 }));
    await expect(c.durable).rejects.toBeInstanceOf(JoinStateConflict);
    const fresh = await store.change('T', (cur) => ({ result: Object.keys(cur.events).length }));
    expect(fresh.result).toBe(0); // the foreign write, not the lost change
  });
});
