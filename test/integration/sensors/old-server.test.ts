// Adversary (issue 16): the Sensor's grouped bus writes on a nats-server older than 2.12.
//
// sluice talks to servers it does not run: `jetstreamExotic` buses and `sluice dev --nats-url`
// (README: "nats-server 2.10+"). A 2.10/2.11 server knows nothing of atomic batches: it ignores
// `allow_atomic` in the bucket config (2.11 logs "unknown field") and the Nats-Batch-* headers, so
// kv-group.ts's "batch" is stored message by message (non-atomically, the un-acknowledged ones
// with no answer at all) and the commit gets a plain PubAck without `count`. kv-group.ts then
// throws BatchRefused(0, "the server stored ? of n writes"), which is neither a conflict nor
// "atomic unavailable": every write of the group is failed although all were stored, and
// grouping stays on, so it happens again for every turn with two or more writes. For the Sensor:
// claims fail then come back "busy" (held by a claim no one holds) until their lease ends, done
// marks fail though stored, "used" marks fail though stored (see join-inflight-leak.test.ts), every
// such event is handed back at least once. And ensureKv "updates" allow_atomic on every call
// (the controller rewrites each Sensor's buckets on every reconcile).
//
// Needs a nats-server 2.11 binary: $SLUICE_OLD_NATS_SERVER, or the tool cache's
// nats-server-v2.11.17/nats-server (`GOBIN=~/.cache/sluice/tools/nats-server-v2.11.17 go install
// github.com/nats-io/nats-server/v2@v2.11.17`). Skipped, saying so, without one.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { ensureKv, ProcessedSet } from '../../../src/bus/kv.ts';
import { KvGroupCommit } from '../../../src/bus/kv-group.ts';
import { kvBucketName } from '../../../src/bus/subjects.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { Claims } from '../../../src/sensors/claims.ts';
import { freePort } from '../../harness/ports.ts';
import { ManagedProcess, waitFor } from '../../harness/proc.ts';
import { skipNote, uniqueName } from '../../harness/shared.ts';
import { cacheDir, toolVersions } from '../../harness/tools.ts';
import { newBus, runSensor, startSink } from './fixtures.ts';

const oldServer =
  process.env.SLUICE_OLD_NATS_SERVER ??
  join(cacheDir(), 'tools', `nats-server-${toolVersions().OLD_NATS_SERVER_VERSION}`, 'nats-server');
const missing = existsSync(oldServer) ? null : `no nats-server 2.11 at ${oldServer}`;

describe.skipIf(missing)(`grouped writes on nats-server 2.11${skipNote(missing)}`, () => {
  let proc: ManagedProcess;
  let url: string;
  let conn: BusConnection;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-nats211-'));
    const port = await freePort();
    const http = await freePort();
    url = `nats://127.0.0.1:${port}`;
    proc = new ManagedProcess(
      'nats-server-2.11',
      oldServer,
      ['-a', '127.0.0.1', '-p', String(port), '-m', String(http), '-js', '-sd', join(dir, 'store')],
      join(dir, 'nats-server.log'),
    );
    proc.start();
    await waitFor('nats-server 2.11 healthy', async () => {
      const r = await fetch(`http://127.0.0.1:${http}/healthz?js-enabled-only=true`).catch(() => undefined);
      return r?.ok === true;
    });
    conn = await BusConnection.open({ url });
  });
  afterAll(async () => {
    await conn?.close();
    await proc?.stop();
  });

  it('claims and done marks of one turn: stored, and each caller told so', async () => {
    const name = kvBucketName(uniqueName('adv16'), 'old', 'p');
    const jsm = await jetstreamManager(conn.nc);
    await ensureKv(jsm, name, { maxBytes: 8 * 1024 * 1024, whenFull: 'forget-oldest' });
    // A second ensure of the same bucket finds nothing to change.
    const again = await ensureKv(jsm, name, { maxBytes: 8 * 1024 * 1024, whenFull: 'forget-oldest' });
    const kv = await new Kvm(conn.nc).open(name);
    // As runtime.ts builds them, batching even three writes (a Sensor batches from 32 writes a turn).
    const processed = new ProcessedSet(kv, new KvGroupCommit(conn.nc, kv, { minBatch: 1 }));
    const claims = new Claims(processed, 'sensor-0', 30_000);
    const got = await Promise.allSettled(['e1', 'e2', 'e3'].map((k) => claims.claim(k)));
    const answers = got.map((g) => (g.status === 'fulfilled' ? g.value.state : String(g.reason)));
    const stored = await Promise.all(['e1', 'e2', 'e3'].map(async (k) => (await kv.get(k))?.string()));
    process.stdout.write(
      `adv16 2.11: ensure again → ${again.action} (${again.fields.join(',')}); claims → ${JSON.stringify(answers)}; stored → ${JSON.stringify(stored)}\n`,
    );
    expect(answers).toEqual(['new', 'new', 'new']);
    expect(again.action).toBe('unchanged');
  });

  it('a Sensor on a 2.11 bus handles a burst without handing events back', async () => {
    const b = await newBus(url);
    const sink = await startSink();
    const lines: string[] = [];
    const log = createLogger({
      level: 'warn',
      destination: new Writable({
        write(chunk, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    });
    const s = await runSensor(
      b,
      'burst',
      {
        dependencies: [{ name: 'a', eventSourceName: 'hooks', eventName: 'orders' }],
        triggers: [{ template: { name: 'call', http: { url: `${sink.url}/x` } } }],
      },
      { log },
    );
    try {
      await Promise.all(Array.from({ length: 30 }, (_, i) => b.emit('hooks', 'orders', { i })));
      await waitFor('30 calls', () => new Set(sink.requests.map((r) => r.key)).size >= 30, {
        timeoutMs: 60_000,
      });
      const failed = lines.filter((l) => l.includes('event handling failed'));
      process.stdout.write(
        `adv16 2.11 burst: ${sink.requests.length} calls for 30 events, ${failed.length} handling failures, e.g. ${failed[0]?.slice(0, 300) ?? '-'}\n`,
      );
      expect(failed).toEqual([]);
    } finally {
      await s.stop();
      await sink.close();
      await b.conn.close();
    }
  }, 90_000);
});
