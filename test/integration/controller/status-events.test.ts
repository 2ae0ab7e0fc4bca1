// Status truth, Kubernetes Events and refusing to fight another controller, against the real
// kube-apiserver and nats-server. There is no deployment controller here: the test writes the
// Deployment's status itself (as kube-controller-manager would) to move availability.
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dlqSubject } from '../../../src/bus/subjects.ts';
import { busOperations } from '../../../src/controller/bus-ops.ts';
import { Controller } from '../../../src/controller/controller.ts';
import { KubeHttp } from '../../../src/controller/kube-http.ts';
import { SimpleKubeConfig } from '../../../src/kube/config.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { SUPPORTED_TRIGGER_TYPES } from '../../../src/sensors/supported.ts';
import { installCrds } from '../../harness/crds.ts';
import { waitFor } from '../../harness/proc.ts';
import {
  kubeConfig,
  kubeconfigPath,
  kubeMissing,
  natsMissing,
  natsUrl,
  skipNote,
  uniqueName,
} from '../../harness/shared.ts';

const missing = kubeMissing() ?? natsMissing();
const G = { group: 'argoproj.io', version: 'v1alpha1' };
type Cond = { type: string; status: string; reason?: string; message?: string };
interface Ev {
  reason: string;
  type: string;
  note?: string;
  series?: { count: number };
  regarding: { kind: string; name: string };
}

describe.skipIf(missing)(`status truth, events, foreign children${skipNote(missing)}`, () => {
  const ns = uniqueName('ops');
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let apps: AppsV1Api;
  let http: KubeHttp;
  let controller: Controller;

  const create = (plural: string, kind: string, name: string, spec: unknown, extra: object = {}) =>
    custom.createNamespacedCustomObject({
      ...G,
      namespace: ns,
      plural,
      body: { apiVersion: 'argoproj.io/v1alpha1', kind, metadata: { name, ...extra }, spec },
    }) as Promise<{ metadata: { uid: string } }>;
  const conds = async (plural: string, name: string) =>
    (
      (await custom.getNamespacedCustomObject({ ...G, namespace: ns, plural, name })) as {
        status?: { conditions?: Cond[] };
      }
    ).status?.conditions ?? [];
  const waitCond = (plural: string, name: string, type: string, want: Partial<Cond>) =>
    waitFor(
      `${plural}/${name} ${type}=${JSON.stringify(want)}`,
      async () => {
        const c = (await conds(plural, name)).find((x) => x.type === type);
        return c && Object.entries(want).every(([k, v]) => c[k as keyof Cond] === v) ? c : undefined;
      },
      { timeoutMs: 30_000, onTimeout: () => JSON.stringify(conds) },
    );
  const events = async (name: string) =>
    (
      await http.request<{ items: Ev[] }>('GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`)
    ).items.filter((e) => e.regarding.name === name);
  /** The server-side table `kubectl get` prints: column name → cell. */
  const table = async (plural: string, name: string) => {
    const t = await http.request<{
      columnDefinitions: Array<{ name: string }>;
      rows: Array<{ cells: unknown[] }>;
    }>('GET', `/apis/argoproj.io/v1alpha1/namespaces/${ns}/${plural}/${name}`, {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
    });
    return Object.fromEntries(t.columnDefinitions.map((c, i) => [c.name, t.rows[0]!.cells[i]]));
  };
  /** What the deployment controller writes once `pods` pods are up (0: a Deployment scaled to 0). */
  const podsAvailable = async (name: string, pods = 1) => {
    const d = await apps.readNamespacedDeployment({ name, namespace: ns });
    await http.request('PATCH', `/apis/apps/v1/namespaces/${ns}/deployments/${name}/status`, {
      body: {
        status: {
          observedGeneration: d.metadata!.generation,
          replicas: pods,
          updatedReplicas: pods,
          readyReplicas: pods,
          availableReplicas: pods,
        },
      },
      contentType: 'application/merge-patch+json',
    });
  };

  beforeAll(async () => {
    kc = kubeConfig();
    await installCrds(kubeconfigPath()!, kc);
    custom = kc.makeApiClient(CustomObjectsApi);
    apps = kc.makeApiClient(AppsV1Api);
    http = new KubeHttp(kc);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
    controller = new Controller({
      kubeConfig: SimpleKubeConfig.loadFile(kubeconfigPath()!),
      registry: newRegistry(),
      logger: createLogger({ level: 'warn' }),
      bus: busOperations({ connectTimeoutMs: 1000, monitorEveryMs: 500 }),
      image: 'sluice:test',
      natsImage: 'nats:test',
      namespace: ns,
      workers: 2,
      leaderElection: { enabled: false, namespace: ns },
    });
    await controller.start();
  });
  afterAll(async () => {
    await controller?.stop();
    await kc
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: ns })
      .catch(() => undefined);
  });

  it('Ready needs the bus Ready and the Deployment available; BUS shows the implicit default', async () => {
    await create('eventbus', 'EventBus', 'default', { jetstreamExotic: { url: natsUrl() } });
    await waitCond('eventbus', 'default', 'Ready', { status: 'True' });
    await create('sensors', 'Sensor', 'truth', {
      dependencies: [{ name: 'd', eventSourceName: 'e', eventName: 'x' }],
      triggers: [{ template: { name: 't', log: {} } }],
    });
    await waitCond('sensors', 'truth', 'Deployed', { status: 'True' });
    // Deployed, bus Ready, but no pod available: not Ready.
    // Deployed, bus Ready, but the Deployment has not even observed its spec: not Ready.
    const r = await waitCond('sensors', 'truth', 'Ready', { status: 'False', reason: 'RolloutPending' });
    expect(r.message).toContain('not rolled out yet');
    expect(await table('sensors', 'truth')).toMatchObject({
      Ready: 'False',
      Bus: 'default',
      Available: '0/1',
    });
    await podsAvailable('sensor-truth');
    await waitCond('sensors', 'truth', 'Ready', { status: 'True' });
    // The column is short; the sentence stays in the condition.
    expect(await table('sensors', 'truth')).toMatchObject({
      Ready: 'True',
      Bus: 'default',
      Available: '1/1',
    });
    expect((await conds('sensors', 'truth')).find((c) => c.type === 'Available')?.message).toBe(
      '1/1 pods available',
    );

    // A spec change the Deployment has not rolled out yet: not Ready again.
    await http.request('PATCH', `/apis/argoproj.io/v1alpha1/namespaces/${ns}/sensors/truth`, {
      body: { spec: { replicas: 2 } },
      contentType: 'application/merge-patch+json',
    });
    await waitCond('sensors', 'truth', 'Available', { status: 'False', reason: 'RolloutPending' });
    await podsAvailable('sensor-truth');
    await waitCond('sensors', 'truth', 'Available', { status: 'False', reason: 'PodsNotAvailable' });

    // The bus becomes unreachable: its users are not Ready, and say why.
    await http.request('PATCH', `/apis/argoproj.io/v1alpha1/namespaces/${ns}/eventbus/default`, {
      body: { spec: { jetstreamExotic: { url: 'nats://127.0.0.1:1' } } },
      contentType: 'application/merge-patch+json',
    });
    await waitCond('eventbus', 'default', 'StreamReady', { status: 'False', reason: 'BusUnreachable' });
    const b = await waitCond('sensors', 'truth', 'EventBusReady', { status: 'False' });
    expect(b.message).toContain('BusUnreachable');
    // Ready names the bus as the cause, and the Deployment that still runs is reported as it is.
    const ready = await waitCond('sensors', 'truth', 'Ready', {
      status: 'False',
      reason: 'EventBusNotReady',
    });
    expect(ready.message).toBe(b.message);
    expect(await table('sensors', 'truth')).toMatchObject({ Reason: 'EventBusNotReady', Available: '1/2' });
  });

  it('Kubernetes Events: children created, bus unreachable, unsupported types; repeats deduplicated', async () => {
    const created = await waitFor('Created event for the Deployment', async () =>
      (await events('truth')).find(
        (e) => e.reason === 'Created' && e.note?.includes('Deployment sensor-truth'),
      ),
    );
    expect(created.type).toBe('Normal');
    await waitFor('BusUnreachable warning on the bus', async () =>
      (await events('default')).find((e) => e.reason === 'BusUnreachable' && e.type === 'Warning'),
    );
    await create('sensors', 'Sensor', 'odd', {
      dependencies: [{ name: 'd', eventSourceName: 'e', eventName: 'x' }],
      triggers: [{ template: { name: 't', openWhisk: { host: 'whisk.example', actionName: 'a' } } }],
    });
    // (a type this build does not run; pick another when it learns this one)
    expect(SUPPORTED_TRIGGER_TYPES.has('openWhisk')).toBe(false);
    const u = await waitFor('UnsupportedTriggerType warning', async () =>
      (await events('odd')).find((e) => e.reason === 'UnsupportedTriggerType'),
    );
    expect(u.type).toBe('Warning');
    // The bus keeps failing (requeued every 15 s) and its users keep being reconciled: each reason
    // is still one Event object, however often it recurs.
    const byReason = new Map<string, number>();
    for (const e of await events('truth'))
      byReason.set(`${e.reason}|${e.note}`, (byReason.get(`${e.reason}|${e.note}`) ?? 0) + 1);
    for (const [k, n] of byReason) expect(n, k).toBe(1);
  });

  it('a missing bus is one Warning series; an unreachable managed bus is named with its own reason', async () => {
    const sensorSpec = (bus: string) => ({
      eventBusName: bus,
      dependencies: [{ name: 'd', eventSourceName: 'e', eventName: 'x' }],
      triggers: [{ template: { name: 't', log: {} } }],
    });
    await create('sensors', 'Sensor', 'nobus', sensorSpec('absent'));
    await waitCond('sensors', 'nobus', 'Ready', { status: 'False', reason: 'EventBusNotFound' });
    // Deployed and EventBusReady say it in the same words: one cause, one text.
    const text = `EventBus "absent" does not exist in namespace ${ns}; create it (or set spec.eventBusName)`;
    const all = await conds('sensors', 'nobus');
    expect(all.filter((c) => c.message === text).map((c) => c.type)).toEqual([
      'EventBusReady',
      'Deployed',
      'Ready',
    ]);
    expect(await table('sensors', 'nobus')).toMatchObject({ Bus: 'absent', Available: '-' });
    await waitFor('EventBusNotFound event', async () =>
      (await events('nobus')).find((e) => e.reason === 'EventBusNotFound'),
    );
    // Reconciled again (a new generation): still one Event object for the cause.
    await http.request('PATCH', `/apis/argoproj.io/v1alpha1/namespaces/${ns}/sensors/nobus`, {
      body: { spec: { replicas: 1 } },
      contentType: 'application/merge-patch+json',
    });
    await waitFor('generation 2 observed', async () => {
      const o = (await custom.getNamespacedCustomObject({
        ...G,
        namespace: ns,
        plural: 'sensors',
        name: 'nobus',
      })) as {
        status?: { observedGeneration?: number };
      };
      return o.status?.observedGeneration === 2;
    });
    const found = (await events('nobus')).filter((e) => e.reason === 'EventBusNotFound');
    expect(found.map((e) => e.note)).toEqual([text]);

    // A managed bus whose servers cannot be reached (no pods here): its users say BusUnreachable,
    // never "no connection details", and warn only once the bus itself has said so.
    await create('eventbus', 'EventBus', 'managed', { jetstream: { replicas: 1 } });
    await create('sensors', 'Sensor', 'onmanaged', sensorSpec('managed'));
    await waitCond('eventbus', 'managed', 'StreamReady', { status: 'False', reason: 'BusUnreachable' });
    const r = await waitCond('sensors', 'onmanaged', 'Ready', {
      status: 'False',
      reason: 'EventBusNotReady',
    });
    expect(r.message).toMatch(/^EventBus "managed" is not ready \(BusUnreachable\): cannot reach/);
    const warned = (await events('onmanaged')).filter((e) => e.type === 'Warning');
    expect(warned.filter((e) => /connection details|has no URL|not reported/.test(e.note ?? ''))).toEqual([]);
    await waitFor('EventBusNotReady warning naming BusUnreachable', async () =>
      (await events('onmanaged')).find(
        (e) => e.reason === 'EventBusNotReady' && e.note?.includes('BusUnreachable'),
      ),
    );
  });

  it("refuses to overwrite a child it does not own, and to run beside Argo Events' workload", async () => {
    // A Deployment of the name sluice would use, made by someone else.
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'sensor-taken', labels: { app: 'mine' } },
        spec: {
          selector: { matchLabels: { app: 'mine' } },
          template: {
            metadata: { labels: { app: 'mine' } },
            spec: { containers: [{ name: 'c', image: 'mine:1' }] },
          },
        },
      },
    });
    // (the default bus is unreachable since the first test)
    await create('eventbus', 'EventBus', 'ok', { jetstreamExotic: { url: natsUrl() } });
    await create('sensors', 'Sensor', 'taken', {
      eventBusName: 'ok',
      dependencies: [{ name: 'd', eventSourceName: 'e', eventName: 'x' }],
      triggers: [{ template: { name: 't', log: {} } }],
    });
    const c = await waitCond('sensors', 'taken', 'Deployed', { status: 'False', reason: 'ChildConflict' });
    expect(c.message).toContain('not made by sluice');
    const d = await apps.readNamespacedDeployment({ name: 'sensor-taken', namespace: ns });
    expect(d.spec!.template.spec!.containers[0]!.image).toBe('mine:1');
    await waitFor('ChildConflict warning', async () =>
      (await events('taken')).find((e) => e.reason === 'ChildConflict'),
    );

    // Argo Events' Deployment for an EventSource (its `controller` label, owned by the object).
    // Its bus does not exist yet, so nothing is deployed before upstream's workload is in place.
    const es = await create('eventsources', 'EventSource', 'migrating', {
      eventBusName: 'later',
      webhook: { push: { port: '12000', endpoint: '/push', method: 'POST' } },
    });
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: {
          name: 'migrating-eventsource-abcde',
          labels: { controller: 'eventsource-controller', 'eventsource-name': 'migrating' },
          ownerReferences: [
            {
              apiVersion: 'argoproj.io/v1alpha1',
              kind: 'EventSource',
              name: 'migrating',
              uid: es.metadata.uid,
              controller: true,
            },
          ],
        },
        spec: {
          selector: { matchLabels: { 'eventsource-name': 'migrating' } },
          template: {
            metadata: { labels: { 'eventsource-name': 'migrating' } },
            spec: { containers: [{ name: 'main', image: 'quay.io/argoproj/argo-events:v1.9.0' }] },
          },
        },
      },
    });
    await create('eventbus', 'EventBus', 'later', { jetstreamExotic: { url: natsUrl() } });
    await waitCond('eventbus', 'later', 'Ready', { status: 'True' });
    const f = await waitCond('eventsources', 'migrating', 'Deployed', {
      status: 'False',
      reason: 'ForeignController',
    });
    expect(f.message).toContain('migrating-eventsource-abcde');
    expect(
      await apps
        .readNamespacedDeployment({ name: 'eventsource-migrating', namespace: ns })
        .catch(() => undefined),
    ).toBeUndefined();
    // Once upstream's workload is gone, sluice runs its own.
    await apps.deleteNamespacedDeployment({ name: 'migrating-eventsource-abcde', namespace: ns });
    await waitCond('eventsources', 'migrating', 'Deployed', { status: 'True' });
  });

  it("stands down beside Argo Events' workload that appears later, and comes back when it goes", async () => {
    // (bus "ok" is Ready since the previous test)
    for (const [plural, kind, name, controllerLabel, spec] of [
      [
        'sensors',
        'Sensor',
        'late-sn',
        'sensor-controller',
        {
          eventBusName: 'ok',
          dependencies: [{ name: 'd', eventSourceName: 'e', eventName: 'x' }],
          triggers: [{ template: { name: 't', log: {} } }],
        },
      ],
      [
        'eventsources',
        'EventSource',
        'late-es',
        'eventsource-controller',
        { eventBusName: 'ok', webhook: { push: { port: '12001', endpoint: '/push', method: 'POST' } } },
      ],
    ] as const) {
      const own = `${kind.toLowerCase()}-${name}`;
      const obj = await create(plural, kind, name, spec);
      await waitCond(plural, name, 'Deployed', { status: 'True' });
      await podsAvailable(own);
      await waitCond(plural, name, 'Ready', { status: 'True' });
      // Argo Events' controller (still running) makes its own workload for the same object.
      await apps.createNamespacedDeployment({
        namespace: ns,
        body: {
          metadata: {
            name: `${name}-abcde`,
            labels: { controller: controllerLabel },
            ownerReferences: [
              { apiVersion: 'argoproj.io/v1alpha1', kind, name, uid: obj.metadata.uid, controller: true },
            ],
          },
          spec: {
            selector: { matchLabels: { upstream: name } },
            template: {
              metadata: { labels: { upstream: name } },
              spec: { containers: [{ name: 'main', image: 'quay.io/argoproj/argo-events:v1.9.0' }] },
            },
          },
        },
      });
      const f = await waitCond(plural, name, 'Deployed', { status: 'False', reason: 'ForeignController' });
      expect(f.message).toContain(`${name}-abcde`);
      expect(f.message).toContain(`Deployment ${own} is scaled to 0`);
      // sluice's own Deployment runs nothing beside it (kept, not deleted)...
      const d = await apps.readNamespacedDeployment({ name: own, namespace: ns });
      expect(d.spec!.replicas).toBe(0);
      expect((await events(name)).find((e) => e.reason === 'ScaledDown')?.type).toBe('Normal');
      // ...and is reported as it is: one pod still up until the deployment controller acts, then none.
      await waitFor(`${name} AVAILABLE 1/0`, async () => (await table(plural, name)).Available === '1/0');
      await podsAvailable(own, 0);
      await waitFor(`${name} AVAILABLE 0/0`, async () => (await table(plural, name)).Available === '0/0');
      expect(await table(plural, name)).toMatchObject({ Ready: 'False', Reason: 'ForeignController' });
      // The other controller's workload goes (rollback of the rollback): sluice scales back up by itself.
      await apps.deleteNamespacedDeployment({ name: `${name}-abcde`, namespace: ns });
      await waitCond(plural, name, 'Deployed', { status: 'True' });
      await waitFor(`${own} scaled back to 1`, async () => {
        const back = await apps.readNamespacedDeployment({ name: own, namespace: ns });
        return back.spec!.replicas === 1;
      });
    }
  });

  it("a deleted EventBus that still carries Argo Events' finalizer goes once no upstream workload is left", async () => {
    await create(
      'eventbus',
      'EventBus',
      'legacy',
      { jetstreamExotic: { url: natsUrl() } },
      { finalizers: ['eventbus-controller'] },
    );
    await waitCond('eventbus', 'legacy', 'Ready', { status: 'True' });
    await custom.deleteNamespacedCustomObject({ ...G, namespace: ns, plural: 'eventbus', name: 'legacy' });
    await waitFor('the bus gone', () =>
      custom.getNamespacedCustomObject({ ...G, namespace: ns, plural: 'eventbus', name: 'legacy' }).then(
        () => false,
        () => true,
      ),
    );
  });

  it('a dead-letter burst is a Warning event on its Sensor', async () => {
    // Sensor "taken" uses bus "ok" (reachable); records appear on its DLQ subject as a Sensor
    // dead-lettering events would write them.
    const nc = await connect({ servers: natsUrl() });
    try {
      const subject = dlqSubject({ namespace: ns, busName: 'ok' }, 'taken', 't');
      for (let i = 0; i < 3; i++) await nc.request(subject, JSON.stringify({ i }), { timeout: 5000 });
      const e = await waitFor('DeadLettered warning on the Sensor', async () =>
        (await events('taken')).find((x) => x.reason === 'DeadLettered'),
      );
      expect(e.type).toBe('Warning');
      expect(e.note).toContain('sluice dlq list');
    } finally {
      await nc.close();
    }
  });
});
