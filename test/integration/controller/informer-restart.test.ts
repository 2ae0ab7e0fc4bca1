// The informer against control planes of its own (so they can be restarted or tuned without
// disturbing other tests): it survives an API server restart, and a real 410 Gone makes it relist
// and report what it missed as synthetic events.
//
// How the 410 is produced for real: this API server runs with `--watch-cache=false`, so watches are
// served straight from etcd, and `--etcd-compaction-interval=1s`, so the API server compacts etcd
// history every second. The informer is cut off (TCP proxy) while objects change; once a raw watch
// from the informer's last resourceVersion is answered with 410 (history compacted), the connection
// is restored and the informer's resume attempt meets the same 410.
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Informer } from '../../../src/controller/informer.ts';
import { isGone, KubeHttp, type KubeStatus } from '../../../src/controller/kube-http.ts';
import { type ControlPlane, startControlPlane } from '../../harness/controlplane.ts';
import { waitFor } from '../../harness/proc.ts';
import { findTool } from '../../harness/tools.ts';
import { cacheMatchesList, countHooks, recordEvents } from './informer-kit.ts';
import { kubeConfigVia, startTcpProxy } from './net.ts';

const missing = [findTool('kube-apiserver'), findTool('etcd')].find((t) => !t.path)?.missing;
const note = missing ? ` [skipped: ${missing}]` : '';

const cm = (name: string, v: string): V1ConfigMap => ({ metadata: { name }, data: { v } });

/**
 * Opens a watch from `resourceVersion`: 'event' when the server says 410 as a watch ERROR event,
 * 'status' when it answers HTTP 410, false when the version is still served.
 */
async function probeGone(
  kc: KubeConfig,
  path: string,
  resourceVersion: string,
): Promise<'event' | 'status' | false> {
  const http = new KubeHttp(kc);
  const ac = new AbortController();
  let form: 'event' | false = false;
  try {
    await http.watch(
      path,
      { resourceVersion, timeoutSeconds: 1 },
      (ev) => {
        if (ev.type === 'ERROR' && (ev.object as KubeStatus).code === 410) {
          form = 'event';
          ac.abort();
        }
      },
      { signal: ac.signal },
    );
  } catch (err) {
    if (form) return form;
    if (isGone(err)) return 'status';
    throw err;
  }
  return form;
}

describe.skipIf(missing)(`informer across an API server restart${note}`, () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let core: CoreV1Api;
  const namespace = 'restart';

  beforeAll(async () => {
    cp = await startControlPlane();
    kc = cp.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('keeps working across restartApiServer() and ends equal to a fresh LIST', async () => {
    await core.createNamespacedConfigMap({ namespace, body: cm('a', '1') });
    await core.createNamespacedConfigMap({ namespace, body: cm('b', '1') });
    const counts = countHooks();
    const inf = new Informer<V1ConfigMap>({
      kubeConfig: kc,
      path: '/api/v1/configmaps',
      namespace,
      backoff: { initialMs: 100, maxMs: 1000 },
      hooks: counts.hooks,
    });
    const log = recordEvents(inf);
    inf.start();
    try {
      await inf.waitForSync(30_000);
      await cp.restartApiServer();
      await core.createNamespacedConfigMap({ namespace, body: cm('c', '1') });
      const a = await core.readNamespacedConfigMap({ name: 'a', namespace });
      await core.replaceNamespacedConfigMap({ name: 'a', namespace, body: { ...a, data: { v: '2' } } });
      await core.deleteNamespacedConfigMap({ name: 'b', namespace });

      const expected = await waitFor('cache = fresh LIST', () => cacheMatchesList(inf, core, namespace), {
        timeoutMs: 60_000,
      });
      expect(expected.map(([n]) => n)).toEqual(['a', 'c']);
      expect(inf.getByName(namespace, 'a')?.data?.v).toBe('2');
      // Every change made after the restart reached the handlers, whichever path brought it.
      const changes = log.filter((e) => e.origin !== 'initial-list').map((e) => [e.type, e.name, e.v]);
      expect(changes).toEqual(
        expect.arrayContaining([
          ['add', 'c', '1'],
          ['update', 'a', '2'],
          ['delete', 'b', '1'],
        ]),
      );
      expect(counts.restarts.length).toBeGreaterThan(0);
      console.info(
        `[informer restart] watch restarts: ${counts.restarts.join(',')}; relists: ${counts.relists.join(',')}`,
      );

      // And the watch is live again: a new change arrives as a plain watch event.
      await core.createNamespacedConfigMap({ namespace, body: cm('d', '1') });
      await waitFor('d from the watch', () => log.find((e) => e.name === 'd' && e.origin === 'watch'));
    } finally {
      await inf.stop();
    }
  });
});

describe.skipIf(missing)(`informer after 410 Gone from a compacted etcd${note}`, () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let core: CoreV1Api;
  const namespace = 'gone';

  beforeAll(async () => {
    cp = await startControlPlane({ apiServerArgs: ['--watch-cache=false', '--etcd-compaction-interval=1s'] });
    kc = cp.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('relists on 410 and reports the missed delete, add and update as synthetic events', async () => {
    for (const name of ['keep', 'change', 'drop']) {
      await core.createNamespacedConfigMap({ namespace, body: cm(name, '1') });
    }
    const proxy = await startTcpProxy(cp.server);
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
      expect(inf.size).toBe(3);

      proxy.cut();
      await waitFor('the informer to notice the cut', () => counts.restarts.includes('error'), {
        timeoutMs: 10_000,
      });
      const relistsBefore = counts.relists.length;
      const eventsBefore = log.length;
      const staleVersion = inf.lastSyncResourceVersion();

      await core.createNamespacedConfigMap({ namespace, body: cm('new', '1') });
      const change = await core.readNamespacedConfigMap({ name: 'change', namespace });
      await core.replaceNamespacedConfigMap({
        name: 'change',
        namespace,
        body: { ...change, data: { v: '2' } },
      });
      await core.deleteNamespacedConfigMap({ name: 'drop', namespace });

      // Wait (directly, not through the proxy) until the server no longer serves that version.
      const form = await waitFor(
        `resourceVersion ${staleVersion} to be compacted away`,
        () => probeGone(kc, `/api/v1/namespaces/${namespace}/configmaps`, staleVersion),
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      console.info(
        `[informer 410] the API server reported 410 as: ${form === 'event' ? 'a watch ERROR event' : 'HTTP status'}`,
      );
      expect(inf.lastSyncResourceVersion()).toBe(staleVersion);

      proxy.heal();
      await waitFor('a relist after 410', () => counts.relists.length > relistsBefore, { timeoutMs: 30_000 });
      expect(counts.relists.slice(relistsBefore)).toEqual(['gone']);
      expect(counts.restarts).toContain('gone');
      await waitFor('cache = fresh LIST', () => cacheMatchesList(inf, core, namespace), {
        timeoutMs: 30_000,
      });

      // Exactly the differences, each once, marked as coming from the relist; nothing for 'keep'.
      const synthetic = log.slice(eventsBefore).map((e) => [e.type, e.name, e.origin, e.v]);
      expect(synthetic.sort()).toEqual([
        ['add', 'new', 'relist', '1'],
        ['delete', 'drop', 'relist', '1'],
        ['update', 'change', 'relist', '2'],
      ]);

      // The watch started after the relist is live.
      await core.createNamespacedConfigMap({ namespace, body: cm('after', '1') });
      await waitFor('after from the watch', () =>
        log.find((e) => e.name === 'after' && e.origin === 'watch'),
      );
    } finally {
      await inf.stop();
      await proxy.close();
    }
  });
});
