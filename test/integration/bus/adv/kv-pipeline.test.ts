// Adversarial: the pipelined path of the KV group commit (src/bus/kv-group.ts: a turn of fewer
// than 32 writes goes as separate publishes, answered on one reply subscription). A claim is a
// create-if-absent: two processes racing on the same keys, over live keys, deleted keys
// (tombstones) and purged ones, must get exactly one winner per key; a claim and a done mark of
// one key in one turn keep their order; writes sent to a paused server and reported failed may be
// stored, and what the Sensor does next (claim again, mark done again) must never let the effect
// run twice.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { serverCode } from '../../../../src/bus/errors.ts';
import { ensureKv, ProcessedSet } from '../../../../src/bus/kv.ts';
import { KvGroupCommit } from '../../../../src/bus/kv-group.ts';
import { kvBucketName } from '../../../../src/bus/subjects.ts';
import { Claims } from '../../../../src/sensors/claims.ts';
import { startNats } from '../../../harness/nats.ts';
import { natsMissing, skipNote, uniqueName } from '../../../harness/shared.ts';
import { cacheDir, toolVersions } from '../../../harness/tools.ts';
import { pauseNats } from './pause.ts';

/** A processed bucket made as the controller makes them (allow_atomic), opened on `nc`. */
async function bucket(nc: NatsConnection, name?: string): Promise<{ name: string; kv: KV }> {
  const n = name ?? kvBucketName(uniqueName('ns'), 'pipe', 'p');
  if (!name)
    await ensureKv(await jetstreamManager(nc), n, { maxBytes: 8 * 1024 * 1024, whenFull: 'forget-oldest' });
  return { name: n, kv: await new Kvm(nc).open(n) };
}

// The same race on the older server the README supports (its own answers to a create on a deleted
// key), when its binary is there (test/integration/sensors/old-server.test.ts says how to get it).
const oldServer =
  process.env.SLUICE_OLD_NATS_SERVER ??
  join(cacheDir(), 'tools', `nats-server-${toolVersions().OLD_NATS_SERVER_VERSION}`, 'nats-server');
const servers = [
  { server: 'current', bin: undefined },
  ...(existsSync(oldServer) ? [{ server: '2.11', bin: oldServer }] : []),
];

describe.skipIf(natsMissing())(`pipelined KV writes${skipNote(natsMissing())}`, () => {
  it.each(servers)(
    '$server: two processes racing creates over new, deleted and purged keys: exactly one winner per key',
    async ({ bin }) => {
      const nats = await startNats(bin ? { bin } : {});
      const [a, b] = await Promise.all([connect({ servers: nats.url }), connect({ servers: nats.url })]);
      try {
        const { name, kv } = await bucket(a);
        const kvB = (await bucket(b, name)).kv;
        for (let round = 0; round < 3; round++) {
          const ga = new KvGroupCommit(a, kv);
          const gb = new KvGroupCommit(b, kvB);
          const ks = Array.from({ length: 30 }, (_, i) => `r${round}.k${i}`);
          // k10..k19 were written then deleted (a forgotten claim), k20..k29 purged; the other way
          // round in odd rounds.
          for (const k of ks.slice(10)) await kv.put(k, 'old');
          for (const k of ks.slice(10, 20)) await (round % 2 ? kv.purge(k) : kv.delete(k));
          for (const k of ks.slice(20)) await (round % 2 ? kv.delete(k) : kv.purge(k));
          // Both turns leave together: 30 creates each, fewer than 32, so all pipelined.
          const [ra, rb] = await Promise.all([
            Promise.allSettled(ks.map((k) => ga.create(k, `A:${k}`))),
            Promise.allSettled(ks.map((k) => gb.create(k, `B:${k}`))),
          ]);
          expect(ga.stats.batches + gb.stats.batches).toBe(0);
          for (const [i, k] of ks.entries()) {
            const wins = [ra[i]!, rb[i]!].filter((r) => r.status === 'fulfilled');
            expect(wins, k).toHaveLength(1);
            const loser = [ra[i]!, rb[i]!].find((r) => r.status === 'rejected') as PromiseRejectedResult;
            expect([10071, 10164]).toContain(serverCode(loser.reason));
            const e = await kv.get(k);
            const winner = ra[i]!.status === 'fulfilled' ? 'A' : 'B';
            expect(e?.string()).toBe(`${winner}:${k}`);
            expect(e?.revision).toBe((wins[0] as PromiseFulfilledResult<number>).value);
          }
        }
      } finally {
        await Promise.all([a.close(), b.close()]);
        await nats.stop();
      }
    },
    30_000,
  );

  it("claims of two Sensor processes on the same keys: one 'new' each, and a claim and done mark in one turn keep their order", async () => {
    const nats = await startNats();
    const [a, b] = await Promise.all([connect({ servers: nats.url }), connect({ servers: nats.url })]);
    try {
      const { name, kv } = await bucket(a);
      const kvB = (await bucket(b, name)).kv;
      const ca = new Claims(new ProcessedSet(kv, new KvGroupCommit(a, kv)), 'proc-a');
      const cb = new Claims(new ProcessedSet(kvB, new KvGroupCommit(b, kvB)), 'proc-b');
      const keys = Array.from({ length: 15 }, (_, i) => `t/e${i}`);
      // Half of them were claimed and forgotten before (a failed call), so their keys are tombstones.
      for (const k of keys.slice(0, 8)) await ca.processed.markDone(k, 'x');
      for (const k of keys.slice(0, 8)) await ca.processed.forget(k);
      const got = await Promise.all([...keys.map((k) => ca.claim(k)), ...keys.map((k) => cb.claim(k))]);
      for (let i = 0; i < keys.length; i++)
        expect([got[i]!.state, got[i + keys.length]!.state].sort(), keys[i]).toEqual(['busy', 'new']);
      // A write and the next one for the same key in one turn reach the server in order.
      const g = new KvGroupCommit(a, kv);
      const [c, d] = await Promise.all([g.create('same', 'pending:me:1'), g.put('same', 'done')]);
      expect(d).toBeGreaterThan(c);
      expect((await kv.get('same'))?.string()).toBe('done');
      const [p, q] = await Promise.allSettled([g.put('same2', 'done'), g.create('same2', 'pending')]);
      expect(p.status).toBe('fulfilled');
      expect(q.status).toBe('rejected');
      expect((await kv.get('same2'))?.string()).toBe('done');
    } finally {
      await Promise.all([a.close(), b.close()]);
      await nats.stop();
    }
  }, 30_000);

  it('writes sent to a paused server and reported failed: a repeat claim never runs the effect twice', async () => {
    const nats = await startNats();
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1 });
    try {
      const { kv } = await bucket(nc);
      const set = new ProcessedSet(kv, new KvGroupCommit(nc, kv, { timeoutMs: 300 }));
      const claims = new Claims(set, 'proc', 30_000);
      await set.markDone('warm', 'ok');
      const resume = await pauseNats(nats.port);
      let claimed: PromiseSettledResult<unknown>[];
      let marked: PromiseSettledResult<unknown>[];
      try {
        // A turn of claims and a turn of done marks, all on a server that does not answer.
        claimed = await Promise.allSettled(['c1', 'c2', 'c3'].map((k) => claims.claim(k)));
        marked = await Promise.allSettled(['d1', 'd2'].map((k) => set.markDone(k, 'ok')));
      } finally {
        resume();
      }
      expect(claimed.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(marked.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      // The Sensor's next step after a failed claim: the message comes back and claims again. The
      // claim that was stored after all is held (busy until its lease ends), never a second "new".
      const again = await Promise.all(['c1', 'c2', 'c3'].map((k) => claims.claim(k)));
      expect(again.map((c) => c.state)).toEqual(['busy', 'busy', 'busy']);
      // After a failed done mark: marking again lands, and the key reads done.
      await Promise.all(['d1', 'd2'].map((k) => set.markDone(k, 'ok')));
      const done = await Promise.all(['d1', 'd2'].map((k) => claims.claim(k)));
      expect(done.map((c) => c.state)).toEqual(['done', 'done']);
    } finally {
      await nc.close();
      await nats.stop();
    }
  }, 30_000);
});
