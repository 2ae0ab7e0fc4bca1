// A namespaced controller (`--namespaced`: rights from a Role in the namespace it manages, as the
// chart's `namespaced=true` renders them) on a dedicated control plane (it deletes namespaces and
// CRDs): etcd + kube-apiserver + kube-controller-manager (namespace and garbage-collector
// controllers), the chart rendered with `helm template` and applied with kubectl, and `sluice
// controller` as a process with the rendered Deployment's arguments, running as the chart's
// ServiceAccount (a TokenRequest token). Checked: it puts no finalizers on objects (and removes
// ones left there), still deletes an object's streams and KV buckets when it sees the object
// deleted, and deleting its namespace completes. Then a controller given `--managed-namespace`
// alone (cluster-wide rights) watches the CRDs: deleting them under it completes, with its objects'
// bus state, and /readyz says 503 while they are gone and ok once they are back.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type V1Deployment } from '@kubernetes/client-node';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { sensorBuckets } from '../../../src/bus/sensor-state.ts';
import { allEventSourceBuckets } from '../../../src/bus/source-state.ts';
import { dlqStreamName, eventStreamName } from '../../../src/bus/subjects.ts';
import { type ControlPlane, startControlPlane } from '../../harness/controlplane.ts';
import { CRD_NAMES, installCrds } from '../../harness/crds.ts';
import { freePort } from '../../harness/ports.ts';
import { type ManagedProcess, waitFor } from '../../harness/proc.ts';
import { run } from '../../harness/run.ts';
import { serviceAccountKubeconfig, startNamespaceControllers } from '../../harness/service-account.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { type SluiceProcess, startSluice } from '../../harness/sluice-process.ts';
import { findTool } from '../../harness/tools.ts';

const tools = ['kube-apiserver', 'etcd', 'kube-controller-manager', 'kubectl', 'helm'] as const;
const missing = tools.map((t) => findTool(t).missing).find(Boolean) ?? natsMissing();
const CHART = new URL('../../../charts/sluice', import.meta.url).pathname;
const G = { group: 'argoproj.io', version: 'v1alpha1' };
const OPS = 'ops';
/** What the issue asks of every uninstall path. */
const LIMIT_MS = 60_000;
type Kind = 'EventBus' | 'EventSource' | 'Sensor';
const plural = { EventBus: 'eventbus', EventSource: 'eventsources', Sensor: 'sensors' } as const;
interface Obj {
  metadata: { uid?: string; finalizers?: string[] };
  status?: { conditions?: Array<{ type: string; status: string }> };
}

describe.skipIf(missing)(`namespaced controller: no finalizers${skipNote(missing ?? null)}`, () => {
  let cp: ControlPlane;
  let kcm: ManagedProcess;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let ctl: SluiceProcess | undefined;
  const timings: string[] = [];
  const kubectl = (...args: string[]) =>
    run(findTool('kubectl').path!, ['--kubeconfig', cp.kubeconfigPath, ...args]);
  const custom = () => cp.kubeConfig().makeApiClient(CustomObjectsApi);
  const core = () => cp.kubeConfig().makeApiClient(CoreV1Api);
  const logs = () => ctl?.logs() ?? '';

  const create = (ns: string, kind: Kind, name: string, spec: unknown, finalizers?: string[]) =>
    custom().createNamespacedCustomObject({
      ...G,
      namespace: ns,
      plural: plural[kind],
      body: { apiVersion: 'argoproj.io/v1alpha1', kind, metadata: { name, finalizers }, spec },
    });
  const get = (ns: string, kind: Kind, name: string): Promise<Obj | undefined> =>
    custom()
      .getNamespacedCustomObject({ ...G, namespace: ns, plural: plural[kind], name })
      .then((o) => o as Obj)
      .catch(() => undefined);
  const remove = (ns: string, kind: Kind, name: string) =>
    custom().deleteNamespacedCustomObject({ ...G, namespace: ns, plural: plural[kind], name });
  const deployed = (ns: string, kind: Kind, name: string, uid?: string) =>
    waitFor(
      `${kind} ${ns}/${name} deployed`,
      async () => {
        const o = await get(ns, kind, name);
        const ok = o?.status?.conditions?.some(
          (c) => c.type === (kind === 'EventBus' ? 'StreamReady' : 'Deployed') && c.status === 'True',
        );
        return ok && (uid === undefined || o?.metadata.uid !== uid) ? o : undefined;
      },
      { timeoutMs: 60_000, onTimeout: logs },
    );
  const streams = async () => {
    const out: string[] = [];
    for await (const n of jsm.streams.names()) out.push(n);
    return out;
  };
  const has = async (...names: string[]) => {
    const all = new Set(await streams());
    return names.filter((n) => all.has(n));
  };
  const kv = (names: string[]) => names.map((b) => `KV_${b}`);
  const state = (ns: string) => ({
    streams: [
      eventStreamName({ namespace: ns, busName: 'default' }),
      dlqStreamName({ namespace: ns, busName: 'default' }),
    ],
    sensor: (name: string) => kv(Object.values(sensorBuckets(ns, name))),
    source: (name: string) => kv(allEventSourceBuckets(ns, name)),
  });
  const objects = async (ns: string, sensors: string[]) => {
    await create(ns, 'EventBus', 'default', { jetstreamExotic: { url: natsUrl() } });
    await create(ns, 'EventSource', 'hooks', {
      webhook: { push: { port: '12000', endpoint: '/push', method: 'POST' } },
    });
    for (const s of sensors)
      await create(ns, 'Sensor', s, {
        dependencies: [{ name: 'd', eventSourceName: 'hooks', eventName: 'push' }],
        triggers: [{ template: { name: 't', log: {} } }],
      });
    await deployed(ns, 'EventBus', 'default');
    await deployed(ns, 'EventSource', 'hooks');
    for (const s of sensors) await deployed(ns, 'Sensor', s);
  };

  beforeAll(async () => {
    cp = await startControlPlane();
    kcm = startNamespaceControllers(cp);
    nc = await connect({ servers: natsUrl() });
    jsm = await jetstreamManager(nc);
  }, 120_000);
  afterAll(async () => {
    await ctl?.proc.stop();
    await kcm?.stop();
    await nc?.close();
    await cp?.stop();
    console.info(`namespaced controller timings: ${timings.join('; ')}`);
  });

  /** `helm template --set namespaced=true` applied, and its controller started as its Deployment would. */
  const installNamespaced = async () => {
    await core().createNamespace({ body: { metadata: { name: OPS } } });
    const home = join(cp.dir, 'helm');
    const rendered = await run(
      findTool('helm').path!,
      ['template', 'rel', CHART, '--namespace', OPS, '--set', 'namespaced=true'],
      { env: { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home } },
    );
    expect(rendered.code, rendered.stderr).toBe(0);
    const file = join(cp.dir, 'namespaced.yaml');
    writeFileSync(file, rendered.stdout);
    const applied = await kubectl('apply', '--server-side', '-f', file);
    expect(applied.code, applied.stderr).toBe(0);
    await installCrds(cp.kubeconfigPath, cp.kubeConfig());
    const deployment = parseAllDocuments(rendered.stdout)
      .map((d) => d.toJSON() as { kind?: string })
      .find((d) => d?.kind === 'Deployment') as V1Deployment;
    const args = deployment.spec!.template.spec!.containers[0]!.args!;
    expect(args).toContain('--namespaced');
    const port = args.indexOf('--metrics-port');
    ctl = await startSluice(
      [
        ...args.slice(0, port + 1),
        '0',
        ...args.slice(port + 2),
        '--kubeconfig',
        await serviceAccountKubeconfig(cp.kubeConfig(), OPS, 'rel-sluice-controller', cp.dir),
        '--image',
        'sluice:test',
      ],
      { POD_NAMESPACE: OPS, POD_NAME: 'rel-sluice-controller-0' },
    );
  };

  it('puts no finalizers on objects, and still deletes their bus state when they are deleted', async () => {
    await installNamespaced();
    const st = state(OPS);
    // A Sensor a cluster-wide controller finalized before: the namespaced one takes that off.
    await create(
      OPS,
      'Sensor',
      'legacy',
      {
        dependencies: [{ name: 'd', eventSourceName: 'hooks', eventName: 'push' }],
        triggers: [{ template: { name: 't', log: {} } }],
      },
      ['sluice.argoproj.io/sensor-state'],
    );
    await objects(OPS, ['s']);
    await deployed(OPS, 'Sensor', 'legacy');
    for (const [kind, name] of [
      ['EventBus', 'default'],
      ['EventSource', 'hooks'],
      ['Sensor', 's'],
      ['Sensor', 'legacy'],
    ] as const)
      await waitFor(`${kind}/${name} without sluice finalizers`, async () => {
        const f = (await get(OPS, kind, name))?.metadata.finalizers ?? [];
        return !f.some((x) => x.startsWith('sluice.argoproj.io/'));
      });
    expect(await has(...st.streams, ...st.sensor('s'), ...st.sensor('legacy'))).toHaveLength(6);
    expect(await has(...st.source('hooks'))).toHaveLength(1); // the webhook's request ids

    // Deleted and re-created at once: the old state goes, the new Sensor's stays (starts clean).
    const old = await get(OPS, 'Sensor', 's');
    const processed = sensorBuckets(OPS, 's').processed;
    await (await new Kvm(nc).open(processed)).put('seen', 'done');
    await remove(OPS, 'Sensor', 's');
    await waitFor('Sensor s gone', async () => (await get(OPS, 'Sensor', 's')) === undefined);
    await create(OPS, 'Sensor', 's', {
      dependencies: [{ name: 'd', eventSourceName: 'hooks', eventName: 'push' }],
      triggers: [{ template: { name: 't', log: {} } }],
    });
    await deployed(OPS, 'Sensor', 's', old?.metadata.uid);
    const cleaned = (line: string) =>
      line.includes('"object":"Sensor/ops/s"') && line.includes('removed bus state of a deleted object');
    await waitFor('the old Sensor s cleaned', () => logs().split('\n').some(cleaned), { onTimeout: logs });
    expect(await has(...st.sensor('s'))).toHaveLength(2);
    expect(await (await new Kvm(nc).open(processed)).get('seen')).toBeNull();

    await remove(OPS, 'EventSource', 'hooks');
    await waitFor(
      'EventSource hooks: its bucket deleted',
      async () => (await has(...st.source('hooks'))).length === 0,
      {
        onTimeout: logs,
      },
    );
    // The bus deleted while Sensors use it keeps its streams; they go with its last user.
    await remove(OPS, 'EventBus', 'default');
    await waitFor('EventBus deleted', async () => (await get(OPS, 'EventBus', 'default')) === undefined);
    await waitFor(
      'the controller to see the bus in use',
      () => logs().includes('EventBus deleted while in use'),
      {
        onTimeout: logs,
      },
    );
    expect(await has(...st.streams)).toHaveLength(2);
    await remove(OPS, 'Sensor', 's');
    await remove(OPS, 'Sensor', 'legacy');
    await waitFor(
      "the Sensors' buckets and the bus streams deleted",
      async () => (await has(...st.streams, ...st.sensor('s'), ...st.sensor('legacy'))).length === 0,
      { onTimeout: logs },
    );
  });

  it('deleting its namespace with a bus, EventSource and Sensor in it completes', async () => {
    const st = state(OPS);
    await objects(OPS, ['s']);
    expect(await has(...st.streams, ...st.sensor('s'), ...st.source('hooks'))).toHaveLength(5);
    const t0 = Date.now();
    const r = await kubectl('delete', 'namespace', OPS, '--timeout=90s');
    const ms = Date.now() - t0;
    timings.push(`namespace ${OPS} with objects: ${ms} ms`);
    const ns = await kubectl('get', 'namespace', OPS, '-o', 'jsonpath={.status.conditions}');
    expect(r.code, `${r.stderr}\n${ns.stdout}`).toBe(0);
    expect(ms).toBeLessThan(LIMIT_MS);
    // Its watch saw the deletions before its rights went: the state is cleaned too.
    let left: string[] = [];
    await waitFor(
      'the bus state deleted',
      async () => {
        left = await has(...st.streams, ...st.sensor('s'), ...st.source('hooks'));
        return left.length === 0;
      },
      { timeoutMs: 30_000, onTimeout: () => `left: ${left.join()}\n${logs()}` },
    );
    await ctl?.proc.stop();
  });

  it('--managed-namespace alone (cluster-wide rights) watches the CRDs: deleting them completes and /readyz follows them', async () => {
    const ns = 'apps';
    await installCrds(cp.kubeconfigPath, cp.kubeConfig());
    await core().createNamespace({ body: { metadata: { name: ns } } });
    ctl = await startSluice(
      [
        'controller',
        '--kubeconfig',
        cp.kubeconfigPath,
        '--managed-namespace',
        ns,
        '--no-leader-elect',
        '--metrics-port',
        '0',
        '--image',
        'sluice:test',
      ],
      { POD_NAMESPACE: 'sluice-system' },
    );
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${ctl!.metricsPort}/readyz`);
      return { status: res.status, text: await res.text() };
    };
    await objects(ns, ['s']);
    expect((await get(ns, 'Sensor', 's'))?.metadata.finalizers).toContain('sluice.argoproj.io/sensor-state');
    // A Sensor whose bus cannot be reached: outside an uninstall its finalizer retries for minutes;
    // seeing the CRDs go, the controller makes one bounded attempt and lets it go.
    await create(ns, 'EventBus', 'unreachable', {
      jetstreamExotic: { url: `nats://127.0.0.1:${await freePort()}` },
    });
    await create(ns, 'Sensor', 'stuck', {
      eventBusName: 'unreachable',
      dependencies: [{ name: 'd', eventSourceName: 'hooks', eventName: 'push' }],
      triggers: [{ template: { name: 't', log: {} } }],
    });
    await waitFor('Sensor stuck with its finalizer', async () =>
      (await get(ns, 'Sensor', 'stuck'))?.metadata.finalizers?.includes('sluice.argoproj.io/sensor-state'),
    );
    const st = state(ns);
    expect(await has(...st.streams, ...st.sensor('s'), ...st.source('hooks'))).toHaveLength(5);
    expect((await readyz()).status).toBe(200);

    const t0 = Date.now();
    const r = await kubectl('delete', 'crd', ...CRD_NAMES, `--timeout=${LIMIT_MS / 1000}s`);
    timings.push(`CRDs under a --managed-namespace controller: ${Date.now() - t0} ms`);
    expect(r.code, r.stderr + logs()).toBe(0);
    expect(await has(...st.streams, ...st.sensor('s'), ...st.source('hooks'))).toEqual([]);
    const down = await waitFor('readyz 503 naming the missing CRD', async () => {
      const z = await readyz();
      return z.status === 503 && z.text.includes('CustomResourceDefinition') ? z.text : undefined;
    });
    expect(down).toContain('/apis/argoproj.io/v1alpha1/');

    const t1 = Date.now();
    await installCrds(cp.kubeconfigPath, cp.kubeConfig());
    await waitFor('readyz ok again', async () => (await readyz()).status === 200, { timeoutMs: 30_000 });
    timings.push(`/readyz ok ${Date.now() - t1} ms after the CRDs were applied again`);
    await create(ns, 'EventBus', 'default', { jetstreamExotic: { url: natsUrl() } });
    await deployed(ns, 'EventBus', 'default');
  });
});
