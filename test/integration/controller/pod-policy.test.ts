// The pod policy in the controller, against the real kube-apiserver and nats-server: the Sensor of
// the adversary report (hostPath /, root, privileged, NODE_OPTIONS, another ServiceAccount) gets
// Deployed=False/PodSettingRefused and a Warning event naming each field, and no Deployment, as
// does one with an nfs volume; an
// edit that adds a privilege leaves the running Deployment unchanged; a managed EventBus asking for
// a privileged server makes nothing; an upstream manifest with volumes, env and resources deploys;
// a cluster admin's grant (--allow-pod-settings) lets the refused Sensor through. The namespace
// enforces the restricted Pod Security Standard, which the upstream manifest's pod passes.
import { existsSync, readFileSync } from 'node:fs';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { PodPolicy } from '../../../src/api/pod-policy.ts';
import { busOperations } from '../../../src/controller/bus-ops.ts';
import { Controller } from '../../../src/controller/controller.ts';
import { KubeHttp } from '../../../src/controller/kube-http.ts';
import { busNames } from '../../../src/controller/resources/eventbus.ts';
import { SimpleKubeConfig } from '../../../src/kube/config.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { HOSTILE_TEMPLATE } from '../../fixtures/hostile-template.ts';
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
const PLURAL = { EventBus: 'eventbus', Sensor: 'sensors' } as const;
type Kind = keyof typeof PLURAL;
type Cond = { type: string; status: string; reason?: string; message?: string };
const upstreamFile = new URL(
  '../../../../shared/reference/argo-events/examples/sensors/trigger-source-file.yaml',
  import.meta.url,
).pathname;

const DEPS = [{ name: 'd', eventSourceName: 'es', eventName: 'e' }];
const TRIGGERS = [{ template: { name: 't', log: {} } }];

describe.skipIf(missing)(`pod policy in the controller${skipNote(missing)}`, () => {
  const ns = uniqueName('podpol');
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let apps: AppsV1Api;
  let http: KubeHttp;
  let controller: Controller | undefined;

  const start = async (podPolicy: PodPolicy) => {
    await controller?.stop();
    controller = new Controller({
      kubeConfig: SimpleKubeConfig.loadFile(kubeconfigPath()!),
      registry: newRegistry(),
      logger: createLogger({ level: 'warn' }),
      bus: busOperations({ connectTimeoutMs: 2000 }),
      image: 'sluice:test',
      natsImage: 'nats:test',
      namespace: ns,
      workers: 2,
      leaderElection: { enabled: false, namespace: ns },
      // This namespace plays the controller's own, with its ServiceAccount "sluice-controller".
      podPolicy: { controllerServiceAccount: { namespace: ns, name: 'sluice-controller' }, ...podPolicy },
    });
    await controller.start();
  };
  const create = (kind: Kind, name: string, spec: unknown) =>
    custom.createNamespacedCustomObject({
      ...G,
      namespace: ns,
      plural: PLURAL[kind],
      body: { apiVersion: 'argoproj.io/v1alpha1', kind, metadata: { name }, spec },
    });
  const patchSpec = (kind: Kind, name: string, spec: unknown) =>
    http.request('PATCH', `/apis/argoproj.io/v1alpha1/namespaces/${ns}/${PLURAL[kind]}/${name}`, {
      body: { spec },
      contentType: 'application/merge-patch+json',
    });
  const conds = async (kind: Kind, name: string) =>
    (
      (await custom.getNamespacedCustomObject({ ...G, namespace: ns, plural: PLURAL[kind], name })) as {
        status?: { conditions?: Cond[] };
      }
    ).status?.conditions ?? [];
  const waitCond = (kind: Kind, name: string, type: string, want: Partial<Cond>) =>
    waitFor(
      `${kind}/${name} ${type}=${JSON.stringify(want)}`,
      async () => {
        const c = (await conds(kind, name)).find((x) => x.type === type);
        return c && Object.entries(want).every(([k, v]) => c[k as keyof Cond] === v) ? c : undefined;
      },
      { timeoutMs: 30_000 },
    );
  const deployment = (name: string) =>
    apps.readNamespacedDeployment({ name, namespace: ns }).catch(() => undefined);
  const warning = (name: string, reason: string) =>
    waitFor(`a Warning ${reason} on ${name}`, async () =>
      (
        await http.request<{
          items: Array<{ reason: string; type: string; note?: string; regarding: { name: string } }>;
        }>('GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`)
      ).items.find((e) => e.regarding.name === name && e.reason === reason && e.type === 'Warning'),
    );

  beforeAll(async () => {
    kc = kubeConfig();
    await installCrds(kubeconfigPath()!, kc);
    custom = kc.makeApiClient(CustomObjectsApi);
    apps = kc.makeApiClient(AppsV1Api);
    http = new KubeHttp(kc);
    // Pod Security Admission enforces "restricted" here: the runtime pods must pass it as made.
    await kc.makeApiClient(CoreV1Api).createNamespace({
      body: { metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
    });
    await start({});
    await create('EventBus', 'default', { jetstreamExotic: { url: natsUrl() } });
    await waitCond('EventBus', 'default', 'Ready', { status: 'True' });
  });
  afterAll(async () => {
    await controller?.stop();
    await kc
      ?.makeApiClient(CoreV1Api)
      .deleteNamespace({ name: ns })
      .catch(() => undefined);
  });

  it("refuses the adversary's Sensor: a condition and a Warning naming each field, no Deployment", async () => {
    await create('Sensor', 'evil', { template: HOSTILE_TEMPLATE, dependencies: DEPS, triggers: TRIGGERS });
    const c = await waitCond('Sensor', 'evil', 'Deployed', { status: 'False', reason: 'PodSettingRefused' });
    for (const field of [
      'spec.template.securityContext.runAsUser',
      'spec.template.volumes[0].hostPath',
      'spec.template.container.securityContext.privileged',
      'spec.template.container.env[0].name: not allowed: NODE_OPTIONS',
    ])
      expect(c.message).toContain(field);
    expect(c.message).toContain('--allow-pod-settings=hostPath');
    expect((await conds('Sensor', 'evil')).find((x) => x.type === 'Ready')?.status).toBe('False');
    expect((await warning('evil', 'PodSettingRefused')).note).toContain('spec.template.volumes[0].hostPath');
    expect(await deployment('sensor-evil')).toBeUndefined();
  });

  it('refuses a Sensor with an nfs volume (a node-side mount), naming the volumes grant', async () => {
    await create('Sensor', 'nfs', {
      template: {
        volumes: [{ name: 'data', nfs: { server: '10.0.0.99', path: '/' } }],
        container: { volumeMounts: [{ name: 'data', mountPath: '/data' }] },
      },
      dependencies: DEPS,
      triggers: TRIGGERS,
    });
    const c = await waitCond('Sensor', 'nfs', 'Deployed', { status: 'False', reason: 'PodSettingRefused' });
    expect(c.message).toContain('spec.template.volumes[0].nfs: not allowed: volume type nfs');
    expect(c.message).toContain('--allow-pod-settings=volumes');
    expect(await deployment('sensor-nfs')).toBeUndefined();
  });

  it("refuses the controller's own ServiceAccount in its namespace, with nothing else asked", async () => {
    await create('Sensor', 'borrow', {
      template: { serviceAccountName: 'sluice-controller' },
      dependencies: DEPS,
      triggers: TRIGGERS,
    });
    const c = await waitCond('Sensor', 'borrow', 'Deployed', { reason: 'PodSettingRefused' });
    expect(c.message).toContain(
      'spec.template.serviceAccountName: not allowed: "sluice-controller" is the sluice controller\'s own ServiceAccount',
    );
    expect(await deployment('sensor-borrow')).toBeUndefined();
  });

  it('an edit that adds a privilege leaves the running Deployment as it was', async () => {
    await create('Sensor', 'edited', {
      template: { container: { env: [{ name: 'DEBUG_LOG', value: 'true' }] } },
      dependencies: DEPS,
      triggers: TRIGGERS,
    });
    await waitCond('Sensor', 'edited', 'Deployed', { status: 'True' });
    const before = (await deployment('sensor-edited'))!;
    await patchSpec('Sensor', 'edited', {
      template: { container: { env: [{ name: 'LD_PRELOAD', value: '/tmp/x.so' }] } },
    });
    const c = await waitCond('Sensor', 'edited', 'Deployed', { reason: 'PodSettingRefused' });
    expect(c.message).toContain('spec.template.container.env[0].name: not allowed: LD_PRELOAD');
    const after = (await deployment('sensor-edited'))!;
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.spec?.template.spec?.containers[0]?.env?.map((e) => e.name)).toContain('DEBUG_LOG');
    expect(after.spec?.template.spec?.containers[0]?.env?.map((e) => e.name)).not.toContain('LD_PRELOAD');
  });

  it('a managed EventBus asking for a privileged server makes no children', async () => {
    await create('EventBus', 'priv', {
      jetstream: { version: '2.12', containerTemplate: { securityContext: { privileged: true } } },
    });
    const c = await waitCond('EventBus', 'priv', 'Deployed', { reason: 'PodSettingRefused' });
    expect(c.message).toContain('spec.jetstream.containerTemplate.securityContext.privileged');
    await warning('priv', 'PodSettingRefused');
    const children = await http.request<{ items: unknown[] }>('GET', `/api/v1/namespaces/${ns}/secrets`, {
      query: { labelSelector: 'sluice.argoproj.io/owner-name=priv' },
    });
    expect(children.items).toEqual([]);
    await expect(
      apps.readNamespacedStatefulSet({ name: busNames('priv').statefulSet, namespace: ns }),
    ).rejects.toThrow();
  });

  it.skipIf(!existsSync(upstreamFile))(
    'an upstream manifest with volumes, a mount, its ServiceAccount, env and resources deploys as written',
    async () => {
      const doc = parse(readFileSync(upstreamFile, 'utf8')) as {
        spec: { template: { container: Record<string, unknown> } } & Record<string, unknown>;
      };
      // Upstream's own e2e Sensors set DEBUG_LOG; resources and a prefixed envFrom are ordinary too.
      Object.assign(doc.spec.template.container, {
        env: [{ name: 'DEBUG_LOG', value: 'true' }],
        envFrom: [{ prefix: 'APP_', configMapRef: { name: 'app-config' } }],
        resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
        securityContext: { runAsUser: 1000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
      });
      await create('Sensor', 'upstream', doc.spec);
      await waitCond('Sensor', 'upstream', 'Deployed', { status: 'True' });
      const pod = (await deployment('sensor-upstream'))!.spec!.template.spec!;
      const main = pod.containers[0]!;
      expect(pod.serviceAccountName).toBe('operate-workflow-sa');
      expect(pod.volumes).toContainEqual(
        expect.objectContaining({ name: 'workflow-file', configMap: expect.anything() }),
      );
      expect(main.volumeMounts).toContainEqual(
        expect.objectContaining({ name: 'workflow-file', mountPath: '/workflows/hello_world.yaml' }),
      );
      expect(main.env).toContainEqual({ name: 'DEBUG_LOG', value: 'true' });
      expect(main.envFrom).toEqual([{ prefix: 'APP_', configMapRef: { name: 'app-config' } }]);
      expect(main.resources?.limits).toEqual({ memory: '128Mi' });
      expect(main.securityContext?.runAsUser).toBe(1000);
      // The pod the ReplicaSet would make passes the restricted Pod Security Standard (server dry run).
      const core = kc.makeApiClient(CoreV1Api);
      await core.createNamespacedServiceAccount({
        namespace: ns,
        body: { metadata: { name: 'operate-workflow-sa' } },
      });
      await core.createNamespacedPod({
        namespace: ns,
        dryRun: 'All',
        body: { metadata: { name: 'restricted-check' }, spec: pod },
      });
    },
  );

  it("a cluster admin's grant lets the refused Sensor through; its own ServiceAccount stays refused", async () => {
    await start({ allow: ['privileged', 'hostPath', 'volumes', 'root', 'runtime'] });
    await waitCond('Sensor', 'evil', 'Deployed', { status: 'True' });
    const pod = (await deployment('sensor-evil'))!.spec!.template.spec!;
    expect(pod.containers[0]?.securityContext?.privileged).toBe(true);
    expect(pod.volumes).toContainEqual(
      expect.objectContaining({ hostPath: expect.objectContaining({ path: '/' }) }),
    );
    await waitCond('Sensor', 'nfs', 'Deployed', { status: 'True' });
    expect((await deployment('sensor-nfs'))!.spec!.template.spec!.volumes).toContainEqual({
      name: 'data',
      nfs: { server: '10.0.0.99', path: '/' },
    });
    // A resync of every object on start: the one that asks for the controller's identity is refused again.
    const c = await waitCond('Sensor', 'borrow', 'Deployed', { reason: 'PodSettingRefused' });
    expect(c.message).toContain('serviceAccountName');
    expect(await deployment('sensor-borrow')).toBeUndefined();
  });
});
