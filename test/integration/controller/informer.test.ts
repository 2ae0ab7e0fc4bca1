// The informer against the shared real API server: the initial LIST, add/update/delete from the
// watch, label selection, late handlers, and resuming from the last resourceVersion after the
// connection drops (no relist needed while the server still has that version).
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Informer } from '../../../src/controller/informer.ts';
import { waitFor } from '../../harness/proc.ts';
import { kubeConfig, kubeMissing, skipNote, uniqueName } from '../../harness/shared.ts';
import { cacheMatchesList, countHooks, recordEvents } from './informer-kit.ts';
import { kubeConfigVia, startTcpProxy } from './net.ts';

describe.skipIf(kubeMissing())(`informer on the shared API server${skipNote(kubeMissing())}`, () => {
  let kc: KubeConfig;
  let core: CoreV1Api;

  beforeAll(() => {
    kc = kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
  });

  async function withNamespace(): Promise<string> {
    const namespace = uniqueName('inf');
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    cleanups.push(() => core.deleteNamespace({ name: namespace }).then(() => undefined));
    return namespace;
  }
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  const cm = (name: string, v: string, labels?: Record<string, string>): V1ConfigMap => ({
    metadata: { name, labels },
    data: { v },
  });

  it('lists, then sees add, update and delete of ConfigMaps from the watch', async () => {
    const namespace = await withNamespace();
    await core.createNamespacedConfigMap({ namespace, body: cm('a', '1') });
    await core.createNamespacedConfigMap({ namespace, body: cm('b', '1') });
    const counts = countHooks();
    const inf = new Informer<V1ConfigMap>({
      kubeConfig: kc,
      path: '/api/v1/configmaps',
      namespace,
      hooks: counts.hooks,
    });
    const log = recordEvents(inf);
    inf.start();
    try {
      await inf.waitForSync(30_000);
      expect(inf.hasSynced()).toBe(true);
      expect(log.map((e) => [e.type, e.name, e.origin]).sort()).toEqual([
        ['add', 'a', 'initial-list'],
        ['add', 'b', 'initial-list'],
      ]);
      // LIST items come without kind/apiVersion; the cache fills them in.
      expect(inf.get(`${namespace}/a`)).toMatchObject({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        data: { v: '1' },
      });
      log.length = 0;

      await core.createNamespacedConfigMap({ namespace, body: cm('c', '1') });
      const a = await core.readNamespacedConfigMap({ name: 'a', namespace });
      await core.replaceNamespacedConfigMap({ name: 'a', namespace, body: { ...a, data: { v: '2' } } });
      await core.deleteNamespacedConfigMap({ name: 'b', namespace });
      await waitFor('three watch events', () => log.length >= 3);
      expect(log).toEqual([
        { type: 'add', name: 'c', origin: 'watch', v: '1' },
        { type: 'update', name: 'a', origin: 'watch', v: '2' },
        { type: 'delete', name: 'b', origin: 'watch', v: '1' },
      ]);
      expect(inf.keys().sort()).toEqual([`${namespace}/a`, `${namespace}/c`]);
      expect(inf.getByName(namespace, 'a')?.data?.v).toBe('2');
      expect(await waitFor('cache = fresh LIST', () => cacheMatchesList(inf, core, namespace))).toHaveLength(
        2,
      );
      expect(counts.relists).toEqual(['initial']);
    } finally {
      await inf.stop();
    }
  });

  it('keeps only objects matching the label selector and replays the cache to a late handler', async () => {
    const namespace = await withNamespace();
    await core.createNamespacedConfigMap({ namespace, body: cm('yes-1', '1', { pick: 'yes' }) });
    await core.createNamespacedConfigMap({ namespace, body: cm('no-1', '1', { pick: 'no' }) });
    const inf = new Informer<V1ConfigMap>({
      kubeConfig: kc,
      path: '/api/v1/configmaps',
      namespace,
      labelSelector: 'pick=yes',
      pageSize: 1, // forces continue-token paging for the initial LIST
    });
    inf.start();
    try {
      await core.createNamespacedConfigMap({ namespace, body: cm('yes-2', '1', { pick: 'yes' }) });
      await inf.waitForSync(30_000);
      await waitFor('both labelled objects', () => inf.size === 2);
      const log = recordEvents(inf);
      expect(log.map((e) => [e.type, e.name, e.origin]).sort()).toEqual([
        ['add', 'yes-1', 'replay'],
        ['add', 'yes-2', 'replay'],
      ]);
      await core.createNamespacedConfigMap({ namespace, body: cm('no-2', '1', { pick: 'no' }) });
      await core.createNamespacedConfigMap({ namespace, body: cm('yes-3', '1', { pick: 'yes' }) });
      await waitFor('yes-3', () => inf.getByName(namespace, 'yes-3'));
      expect(inf.keys().sort()).toEqual(['yes-1', 'yes-2', 'yes-3'].map((n) => `${namespace}/${n}`));
      expect(log.filter((e) => e.origin === 'watch').map((e) => e.name)).toEqual(['yes-3']);
    } finally {
      await inf.stop();
    }
  });

  it('resumes from the last resourceVersion after its connection drops, without relisting', async () => {
    const namespace = await withNamespace();
    const proxy = await startTcpProxy(kc.getCurrentCluster()!.server);
    const counts = countHooks();
    const inf = new Informer<V1ConfigMap>({
      kubeConfig: kubeConfigVia(kc, proxy.server),
      path: '/api/v1/configmaps',
      namespace,
      backoff: { initialMs: 100, maxMs: 400 },
      hooks: counts.hooks,
    });
    const log = recordEvents(inf);
    inf.start();
    try {
      await inf.waitForSync(30_000);
      await core.createNamespacedConfigMap({ namespace, body: cm('before', '1') });
      await waitFor('before', () => inf.size === 1);
      const rvBefore = inf.lastSyncResourceVersion();

      proxy.cut();
      // Changes while the informer cannot see the server.
      await core.createNamespacedConfigMap({ namespace, body: cm('during', '1') });
      const before = await core.readNamespacedConfigMap({ name: 'before', namespace });
      await core.replaceNamespacedConfigMap({
        name: 'before',
        namespace,
        body: { ...before, data: { v: '2' } },
      });
      await waitFor('the informer to notice the cut', () => counts.restarts.includes('error'), {
        timeoutMs: 10_000,
      });
      expect(inf.lastSyncResourceVersion()).toBe(rvBefore);
      proxy.heal();

      await waitFor('cache = fresh LIST', () => cacheMatchesList(inf, core, namespace), {
        timeoutMs: 30_000,
      });
      // Delivered by the resumed watch as ordinary events; no second LIST happened.
      expect(log.filter((e) => e.origin !== 'initial-list')).toEqual([
        { type: 'add', name: 'before', origin: 'watch', v: '1' },
        { type: 'add', name: 'during', origin: 'watch', v: '1' },
        { type: 'update', name: 'before', origin: 'watch', v: '2' },
      ]);
      expect(counts.relists).toEqual(['initial']);
      expect(counts.restarts).not.toContain('gone');
    } finally {
      await inf.stop();
      await proxy.close();
    }
  });

  it('stop() ends the watch promptly and rejects pending waitForSync', async () => {
    const inf = new Informer<V1ConfigMap>({
      kubeConfig: kubeConfigVia(kc, 'https://127.0.0.1:1'), // nothing listens: stays unsynced
      path: '/api/v1/configmaps',
      backoff: { initialMs: 50, maxMs: 100 },
    });
    inf.start();
    const pending = inf.waitForSync();
    const t0 = Date.now();
    await inf.stop();
    await expect(pending).rejects.toThrow(/stopped before sync/);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(inf.hasSynced()).toBe(false);
  });
});
