// The sftp EventSource against OpenSSH's sshd + internal-sftp: files that appear or vanish in the
// watched directory become events (after a silent first baseline); the last listing lives in the
// bus's KV bucket, so changes made while the source was stopped are reported after it starts,
// and a poll whose events were stored but whose listing was not saved (a crash) reports them
// again with the same ids (stored once); a server crash is ridden out; an unaccepted key fails
// the start with a clear error; a listing far over the bus's max_payload (saved one key per
// file) baselines and reports each change once; a listing saved by an older build (one value)
// is taken over (issue 20 review, 3).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KV } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecretKeySelector } from '../../../src/api/k8s.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { kvKey, openKv } from '../../../src/bus/kv.ts';
import { sftpBucket } from '../../../src/bus/source-state.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { type Sshd, sshdMissing, startSshd } from '../../harness/sshd.ts';
import { sourceBed } from './fixtures.ts';

const log = createLogger({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });
type FileEvent = { name: string; op: string };

const skip = natsMissing() ?? sshdMissing();
describe.skipIf(skip)(`sftp EventSource${skipNote(skip)}`, () => {
  let sshd: Sshd;
  let conn: BusConnection;
  const secrets: Record<string, string> = {};
  const resolveSecret = async (sel: SecretKeySelector) => secrets[`${sel.name}/${sel.key}`] ?? '';
  beforeAll(async () => {
    sshd = await startSshd();
    Object.assign(secrets, {
      's/address': sshd.address,
      's/user': sshd.user,
      's/key': sshd.key,
      's/other': sshd.otherKey,
    });
    conn = await BusConnection.open({ url: natsUrl() });
  }, 30_000);
  afterAll(async () => {
    await conn?.close();
    await sshd?.stop();
  });
  const setup = (streamConfig = '') =>
    sourceBed(conn, { prefix: 'sftp', name: 'sftp-es', log, streamConfig, resolveSecret });
  const folder = () => {
    const d = join(sshd.root, uniqueName('in'));
    mkdirSync(d);
    return d;
  };
  const entry = (dir: string, key = 'key') => ({
    sftp: {
      drop: {
        eventType: 'CREATE|REMOVE',
        watchPathConfig: { directory: `${dir}/`, pathRegexp: '\\.csv$' },
        address: { name: 's', key: 'address' },
        username: { name: 's', key: 'user' },
        sshKeySecret: { name: 's', key },
        pollIntervalDuration: '300ms',
        metadata: { site: 'lab' },
      },
    },
  });
  const ops = async (s: { stored(): Promise<Array<{ data: unknown }>> }) =>
    (await s.stored()).map((e) => {
      const d = e.data as FileEvent;
      return `${d.op} ${d.name.split('/').pop()}`;
    });

  it('files that appear or vanish become events; changes while stopped are reported after a restart', async () => {
    const s = await setup();
    const dir = folder();
    writeFileSync(join(dir, 'old.csv'), 'baseline');
    let es = await s.start(entry(dir));
    try {
      await new Promise((r) => setTimeout(r, 800));
      writeFileSync(join(dir, 'a.csv'), '1');
      writeFileSync(join(dir, 'skip.txt'), 'x');
      await waitFor('create', async () => (await s.stored()).length === 1);
      rmSync(join(dir, 'old.csv'));
      await waitFor('remove', async () => (await s.stored()).length === 2);
      expect(await ops(s)).toEqual(['CREATE a.csv', 'REMOVE old.csv']);
      expect((await s.stored())[0]!.data).toMatchObject({
        name: join(dir, 'a.csv'),
        metadata: { site: 'lab' },
      });
      await es.stop();
      writeFileSync(join(dir, 'while-down.csv'), '2');
      es = await s.start(entry(dir));
      await waitFor('the change made while stopped', async () => (await s.stored()).length === 3);
      expect((await ops(s))[2]).toBe('CREATE while-down.csv');
    } finally {
      await es.stop();
    }
  }, 40_000);

  const fileKeys = async (kv: KV) => {
    const keys: string[] = [];
    for await (const k of await kv.keys(`${kvKey('drop')}.f.*`)) keys.push(k);
    return keys;
  };

  it('a change whose event was stored but whose save was lost is reported again, stored once', async () => {
    const s = await setup();
    const dir = folder();
    const kv = await openKv(conn.nc, sftpBucket(s.bus.namespace, 'sftp-es'));
    let es = await s.start(entry(dir));
    try {
      await waitFor('baseline saved', async () => (await kv.get(`${kvKey('drop')}.baseline`)) !== null);
      writeFileSync(join(dir, 'once.csv'), '1');
      await waitFor('create', async () => (await s.stored()).length === 1);
      await waitFor('saved', async () => (await fileKeys(kv)).length === 1);
      await es.stop();
      // Roll the save back, as a crash between the PubAck and the save would leave it.
      for (const k of await fileKeys(kv)) await kv.delete(k);
      es = await s.start(entry(dir));
      await waitFor('saved again', async () => (await fileKeys(kv)).length === 1);
      await new Promise((r) => setTimeout(r, 1500));
      expect(await ops(s)).toEqual(['CREATE once.csv']);
    } finally {
      await es.stop();
    }
  }, 40_000);

  it('rides out an sshd crash; an unaccepted key fails the start with a clear error', async () => {
    const s = await setup();
    const dir = folder();
    await expect(s.start(entry(dir, 'other'))).rejects.toThrow(/sftp .*authentication.*sshKeySecret/i);
    const es = await s.start(entry(dir));
    try {
      await new Promise((r) => setTimeout(r, 800));
      await sshd.server.kill();
      writeFileSync(join(dir, 'during.csv'), '1');
      await new Promise((r) => setTimeout(r, 1000));
      await sshd.server.start();
      await waitFor('the change made during the outage', async () => (await s.stored()).length === 1, {
        timeoutMs: 30_000,
      });
      expect(await ops(s)).toEqual(['CREATE during.csv']);
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('a listing far over max_payload baselines and reports each change once (one key per file)', async () => {
    const s = await setup('duplicates: 1s');
    const dir = folder();
    const pad = 'p'.repeat(230);
    const names = Array.from({ length: 4_500 }, (_, i) => `${pad}-${String(i).padStart(5, '0')}.csv`);
    for (const n of names) writeFileSync(join(dir, n), '');
    const kv = await openKv(conn.nc, sftpBucket(s.bus.namespace, 'sftp-es'));
    const es = await s.start(entry(dir));
    try {
      await waitFor(
        'baseline (>1 MiB of names) saved',
        async () => (await kv.get(`${kvKey('drop')}.baseline`)) !== null,
        {
          timeoutMs: 30_000,
        },
      );
      for (const n of names) rmSync(join(dir, n));
      writeFileSync(join(dir, 'new.csv'), '1');
      await waitFor('every change stored', async () => (await s.stored()).length >= 4_501, {
        timeoutMs: 40_000,
      });
      // Several polls later (past the 1 s duplicates window) nothing was published again.
      await new Promise((r) => setTimeout(r, 2_500));
      const ids = (await s.stored()).map((e) => e.id);
      expect(ids).toHaveLength(4_501);
      expect(new Set(ids).size).toBe(4_501);
      expect(await fileKeys(kv)).toHaveLength(1);
    } finally {
      await es.stop();
    }
  }, 90_000);

  it('a listing saved by an older build (one value) is taken over: only later changes are reported', async () => {
    const s = await setup();
    const dir = folder();
    writeFileSync(join(dir, 'kept.csv'), '1');
    const kv = await openKv(conn.nc, sftpBucket(s.bus.namespace, 'sftp-es'));
    await kv.put(
      kvKey('drop'),
      JSON.stringify({ 'kept.csv': { size: 1, modified: 1 }, 'gone.csv': { size: 1, modified: 1 } }),
    );
    const es = await s.start(entry(dir));
    try {
      await waitFor('the removal', async () => (await s.stored()).length === 1);
      expect(await ops(s)).toEqual(['REMOVE gone.csv']);
      expect(await kv.get(kvKey('drop')).then((e) => e?.operation)).not.toBe('PUT');
    } finally {
      await es.stop();
    }
  }, 30_000);
});
