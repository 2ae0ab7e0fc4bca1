// KV helpers on a real server: the processed-set is atomic across concurrent callers and forgets
// after its TTL; trigger state updates are compare-and-set.

import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { ensureKv, followKv, JsonState, openKv, ProcessedSet } from '../../../src/bus/kv.ts';
import { kvBucketName } from '../../../src/bus/subjects.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

describe.skipIf(natsMissing())(`KV helpers${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('processed-set: exactly one markIfAbsent wins per key, and keys expire with the TTL', async () => {
    const bucket = kvBucketName(uniqueName('ns'), 'my.sensor', 'processed');
    const set = await ProcessedSet.open(conn, bucket, 1500);
    const key = 'trigger http/evt.1';
    const wins = await Promise.all(Array.from({ length: 20 }, () => set.markIfAbsent(key)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    // A second handle (another replica) sees it too.
    const other = await ProcessedSet.open(conn, bucket, 1500);
    expect(await other.markIfAbsent(key)).toBe(false);
    expect(await other.has(key)).toBe(true);
    expect(await set.has('trigger http/evt.2')).toBe(false);
    await set.forget(key);
    expect(await set.markIfAbsent(key)).toBe(true);
    await waitFor('the key to expire', async () => !(await set.has(key)), { timeoutMs: 10_000 });
    expect(await set.markIfAbsent(key)).toBe(true);
  });

  it('followKv: existing values, then new ones, without a consumer; deletes skipped', async () => {
    const bucket = kvBucketName(uniqueName('ns'), 'hooks', 'webhook-ids');
    const jsm = await jetstreamManager(conn.nc);
    await ensureKv(jsm, bucket, { maxBytes: 1024 * 1024, ttl: 60_000, whenFull: 'forget-oldest' });
    expect((await jsm.streams.info(`KV_${bucket}`)).config).toMatchObject({
      allow_direct: false,
      discard: 'old',
    });
    const kv = await openKv(conn, bucket);
    await kv.put('a', '1');
    await kv.put('b', '2');
    await kv.delete('a');
    const seen: string[] = [];
    const f = followKv(conn.nc, bucket, (e) => seen.push(`${e.key}=${e.string()}`), 50);
    await f.caughtUp;
    expect(seen).toEqual(['b=2']);
    await kv.put('c', '3');
    await waitFor('the new value', async () => seen.includes('c=3'), { timeoutMs: 5000 });
    const consumers = await jsm.consumers.list(`KV_${bucket}`).next();
    expect(consumers).toEqual([]);
    f.stop();
  });

  it('trigger state: update only succeeds from the revision that was read', async () => {
    const state = new JsonState<{ matched: string[] }>(await openKv(conn, uniqueName('state')));
    expect(await state.get('t')).toBeUndefined();
    const r1 = await state.update('t', { matched: ['a'] }, 0);
    expect(r1).toBeGreaterThan(0);
    expect(await state.update('t', { matched: ['x'] }, 0)).toBeUndefined();
    const read = await state.get('t');
    expect(read).toEqual({ value: { matched: ['a'] }, revision: r1 });
    const r2 = await state.update('t', { matched: ['a', 'b'] }, r1!);
    expect(r2).toBeGreaterThan(r1!);
    expect(await state.update('t', { matched: ['stale'] }, r1!)).toBeUndefined();
    expect((await state.get('t'))?.value).toEqual({ matched: ['a', 'b'] });
    await state.delete('t');
    expect(await state.get('t')).toBeUndefined();
  });
});
