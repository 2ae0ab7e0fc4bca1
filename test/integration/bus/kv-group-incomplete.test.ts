// Adversary (issue 16): one "atomic publish batch is incomplete" answer (10176) turns the group
// commit off for the life of the process.
//
// kv-group.ts lists 10176 among the codes meaning "this stream or server does not take atomic
// batches" and sets `atomic = false` for good. But 10176 is the server's answer to transient
// conditions on a stream that does take batches: a batch whose first messages were lost (a
// reconnect or a stream leader change between the first publish and the commit), or more than 50
// batches open on the stream at once (abandoned batches are dropped by the server after ~10 s).
// After one such answer every later write of the Sensor goes one round trip at a time until the
// process restarts, silently (no log line, no metric): the "cheap happy path" of DESIGN.md §4a is
// gone with nothing to show it. Expected: a transient refusal falls back for that group only, and
// the next groups are batched again (or at least it is retried after a while and reported).
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { headers } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { ensureKv } from '../../../src/bus/kv.ts';
import { KvGroupCommit } from '../../../src/bus/kv-group.ts';
import { kvBucketName } from '../../../src/bus/subjects.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

describe.skipIf(natsMissing())(`KV group commit after a transient 10176${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('batches again once the stream takes batches again', async () => {
    const name = kvBucketName(uniqueName('adv16'), 'grp', 'inc');
    await ensureKv(await jetstreamManager(conn.nc), name, {
      maxBytes: 8 * 1024 * 1024,
      whenFull: 'forget-oldest',
    });
    const kv = await new Kvm(conn.nc).open(name);
    // 50 batches left open on the stream (first message sent, commit never: what writers that
    // lost their connection mid-batch leave behind until the server drops them).
    for (let i = 0; i < 50; i++) {
      const h = headers();
      h.set('Nats-Batch-Id', `abandoned-${i}`);
      h.set('Nats-Batch-Sequence', '1');
      conn.nc.publish(`$KV.${name}.left${i}`, 'v', { headers: h });
    }
    await conn.nc.flush();
    const g = new KvGroupCommit(conn.nc, kv, { minBatch: 1 });
    // The writes themselves succeed (one at a time) ...
    await expect(Promise.all([g.put('a', '1'), g.put('b', '2')])).resolves.toHaveLength(2);
    // ... and the condition passes: a fresh group commit on the same stream batches again.
    await waitFor(
      'the server to drop the abandoned batches',
      async () => {
        const fresh = new KvGroupCommit(conn.nc, kv, { minBatch: 1 });
        await Promise.all([fresh.put('c', '1'), fresh.put('d', '2')]);
        return fresh.grouping && fresh.stats.batches === 1;
      },
      { timeoutMs: 30_000, intervalMs: 1000 },
    );
    const before = g.stats.batches;
    await Promise.all(Array.from({ length: 20 }, (_, i) => g.put(`k${i}`, 'v')));
    process.stdout.write(`adv16 10176: grouping ${g.grouping}, stats ${JSON.stringify(g.stats)}\n`);
    expect(g.grouping, 'grouping stays off after one transient 10176').toBe(true);
    expect(g.stats.batches).toBe(before + 1);
  }, 60_000);
});
