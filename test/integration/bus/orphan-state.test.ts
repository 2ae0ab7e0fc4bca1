// The controller's sweep of orphaned KV buckets on a real server: only the buckets of gone
// Sensors/EventSources of the namespace asked about, and only those older than the minimum age.
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { deleteOrphanBuckets } from '../../../src/bus/orphan-state.ts';
import { sensorBuckets } from '../../../src/bus/sensor-state.ts';
import { webhookIdsBucket } from '../../../src/bus/source-state.ts';
import { kvBucketName } from '../../../src/bus/subjects.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

describe.skipIf(natsMissing())(`orphaned KV buckets${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('deletes the buckets of gone owners in one namespace, once old enough, and nothing else', async () => {
    const ns = uniqueName('sweep');
    const other = uniqueName('sweep');
    const jsm = await jetstreamManager(conn.nc);
    const live = Object.values(sensorBuckets(ns, 'live'));
    const gone = [...Object.values(sensorBuckets(ns, 'gone')), webhookIdsBucket(ns, 'old-hooks')];
    const kept = [
      ...Object.values(sensorBuckets(other, 'gone')), // another namespace
      kvBucketName(ns, 'gone', 'not-ours'), // a purpose sluice does not use
    ];
    const kvm = new Kvm(conn.nc);
    for (const b of [...live, ...gone, ...kept]) await kvm.create(b);
    const exists = async (names: string[]) => {
      const all = new Set<string>();
      for await (const n of jsm.streams.names()) all.add(n);
      return names.filter((b) => all.has(`KV_${b}`));
    };
    const owners = { sensors: ['live'], eventSources: [] };

    // Just made: a controller that has not seen their objects yet may have made them.
    expect(await deleteOrphanBuckets(jsm, ns, owners)).toEqual([]);
    const removed = await deleteOrphanBuckets(jsm, ns, owners, 0);
    expect(removed.sort()).toEqual(gone.map((b) => `KV_${b}`).sort());
    expect(await exists(gone)).toEqual([]);
    expect(await exists([...live, ...kept])).toEqual([...live, ...kept]);
    for (const b of [...live, ...kept]) await jsm.streams.delete(`KV_${b}`);
  });
});
