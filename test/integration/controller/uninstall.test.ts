// Uninstall and rollback on a dedicated control plane (it deletes CRDs, so not the shared one):
// kube-apiserver + etcd + kube-controller-manager (namespace and garbage-collector controllers),
// config/install.yaml applied with kubectl, and `sluice controller` as a process running as the
// install's ServiceAccount (a TokenRequest token), standing in for its pod. The test plays the
// kubelet's part: when the controller's Deployment is deleted or scaled to 0, the process gets
// SIGTERM. Measured: how long each uninstall path takes with objects present; checked: the bus
// streams and the Sensor's consumers are gone from NATS when the controller was alive.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { eventStreamName } from '../../../src/bus/subjects.ts';
import { HOLD_FINALIZER } from '../../../src/controller/uninstall.ts';
import { type ControlPlane, startControlPlane } from '../../harness/controlplane.ts';
import { ManagedProcess, waitFor } from '../../harness/proc.ts';
import { run } from '../../harness/run.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { type SluiceProcess, startSluice } from '../../harness/sluice-process.ts';
import { findTool } from '../../harness/tools.ts';

const tools = ['kube-apiserver', 'etcd', 'kube-controller-manager', 'kubectl'] as const;
const missing = tools.map((t) => findTool(t).missing).find(Boolean) ?? natsMissing();
const INSTALL = new URL('../../../config/install.yaml', import.meta.url).pathname;
const SYS = 'sluice-system';
const G = { group: 'argoproj.io', version: 'v1alpha1' };
/** What the issue asks of every uninstall path. */
const LIMIT_MS = 60_000;

describe.skipIf(missing)(`uninstall and rollback${skipNote(missing ?? null)}`, () => {
  let cp: ControlPlane;
  let kcm: ManagedProcess;
  let nc: NatsConnection;
  let ctl: SluiceProcess | undefined;
  const kubectl = (...args: string[]) =>
    run(findTool('kubectl').path!, ['--kubeconfig', cp.kubeconfigPath, ...args]);
  const custom = () => cp.kubeConfig().makeApiClient(CustomObjectsApi);
  const core = () => cp.kubeConfig().makeApiClient(CoreV1Api);
  const timings: string[] = [];

  const install = async () => {
    const r = await kubectl('apply', '--server-side', '-f', INSTALL);
    expect(r.code, r.stderr).toBe(0);
    await waitFor('CRDs established', async () => {
      const r = await kubectl(
        'wait',
        '--for=condition=Established',
        '--timeout=5s',
        'crd/eventbus.argoproj.io',
        'crd/eventsources.argoproj.io',
        'crd/sensors.argoproj.io',
      );
      return r.code === 0;
    });
  };

  /** `sluice controller` as the install's ServiceAccount, with the env its Deployment sets. */
  const startController = async () => {
    const token = await waitFor('a token for the ServiceAccount', () =>
      core()
        .createNamespacedServiceAccountToken({
          name: 'sluice-controller',
          namespace: SYS,
          body: { spec: { expirationSeconds: 3600 } },
        })
        .then((t) => t.status?.token),
    );
    const saConfig = join(cp.dir, 'sa-kubeconfig');
    writeFileSync(
      saConfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'c',
            cluster: {
              server: cp.server,
              'certificate-authority-data': readFileSync(cp.pki.caCert).toString('base64'),
            },
          },
        ],
        users: [{ name: 'sa', user: { token } }],
        contexts: [{ name: 'sa', context: { cluster: 'c', user: 'sa' } }],
        'current-context': 'sa',
      }),
    );
    ctl = await startSluice(
      [
        'controller',
        '--kubeconfig',
        saConfig,
        '--no-leader-elect',
        '--metrics-port',
        '0',
        '--image',
        'sluice:test',
      ],
      {
        POD_NAMESPACE: SYS,
        SLUICE_DEPLOYMENT: 'sluice-controller',
        SLUICE_CLUSTER_ROLE: 'sluice-controller',
        SLUICE_CLUSTER_ROLE_BINDING: 'sluice-controller',
        SLUICE_SERVICE_ACCOUNT: 'sluice-controller',
      },
    );
    return ctl;
  };

  const objects = async (ns: string) => {
    await core().createNamespace({ body: { metadata: { name: ns } } });
    const mk = (plural: string, kind: string, name: string, spec: unknown) =>
      custom().createNamespacedCustomObject({
        ...G,
        namespace: ns,
        plural,
        body: { apiVersion: 'argoproj.io/v1alpha1', kind, metadata: { name }, spec },
      });
    await mk('eventbus', 'EventBus', 'default', { jetstreamExotic: { url: natsUrl() } });
    await mk('eventsources', 'EventSource', 'hooks', {
      webhook: { push: { port: '12000', endpoint: '/push', method: 'POST' } },
    });
    await mk('sensors', 'Sensor', 'sensor', {
      dependencies: [{ name: 'd', eventSourceName: 'hooks', eventName: 'push' }],
      triggers: [{ template: { name: 't', log: {} } }],
    });
    for (const [plural, name, finalizer] of [
      ['eventbus', 'default', 'sluice.argoproj.io/eventbus-streams'],
      ['eventsources', 'hooks', 'sluice.argoproj.io/eventsource-state'],
      ['sensors', 'sensor', 'sluice.argoproj.io/sensor-state'],
    ] as const)
      await waitFor(
        `${plural}/${name} with its finalizer, deployed`,
        async () => {
          const o = (await custom().getNamespacedCustomObject({ ...G, namespace: ns, plural, name })) as {
            metadata: { finalizers?: string[] };
            status?: { conditions?: Array<{ type: string; status: string }> };
          };
          return (
            o.metadata.finalizers?.includes(finalizer) &&
            o.status?.conditions?.some((c) => c.type === 'Deployed' && c.status === 'True')
          );
        },
        { timeoutMs: 60_000, onTimeout: () => ctl?.logs() ?? '' },
      );
    const jsm = await jetstreamManager(nc);
    return {
      streamExists: () =>
        jsm.streams.info(eventStreamName({ namespace: ns, busName: 'default' })).then(
          () => true,
          () => false,
        ),
      /** KV buckets of the namespace's EventSources and Sensors (KV_sluice_<ns>_...). */
      buckets: async () => {
        const out: string[] = [];
        const prefix = `KV_sluice_${ns.replaceAll('-', '-2d')}_`;
        for await (const n of jsm.streams.names()) if (n.startsWith(prefix)) out.push(n);
        return out.sort();
      },
      consumers: async () => {
        const out: string[] = [];
        for await (const c of jsm.consumers.list(eventStreamName({ namespace: ns, busName: 'default' })))
          out.push(c.name);
        return out;
      },
    };
  };

  /** The kubelet's part: SIGTERM the controller once its Deployment is gone, going or scaled to 0. */
  const killWhenDeploymentGoes = async () => {
    await waitFor(
      'the controller Deployment to be deleted or scaled to 0',
      async () => {
        const r = await kubectl('get', 'deployment', 'sluice-controller', '-n', SYS, '-o', 'json');
        if (r.code !== 0) return true;
        const d = JSON.parse(r.stdout) as {
          metadata: { deletionTimestamp?: string };
          spec: { replicas?: number };
        };
        return !!d.metadata.deletionTimestamp || d.spec.replicas === 0;
      },
      { timeoutMs: LIMIT_MS, intervalMs: 100 },
    );
    await ctl?.proc.stop();
  };

  beforeAll(async () => {
    cp = await startControlPlane();
    kcm = new ManagedProcess(
      'kube-controller-manager',
      findTool('kube-controller-manager').path!,
      [
        '--kubeconfig',
        cp.kubeconfigPath,
        '--controllers',
        'namespace,garbagecollector',
        '--leader-elect=false',
        '--secure-port',
        '0',
        '--use-service-account-credentials=false',
        '--concurrent-gc-syncs',
        '5',
        '--v',
        '1',
      ],
      join(cp.dir, 'kube-controller-manager.log'),
    );
    kcm.start();
    nc = await connect({ servers: natsUrl() });
  }, 120_000);
  afterAll(async () => {
    await ctl?.proc.stop();
    await kcm?.stop();
    await nc?.close();
    await cp?.stop();
    console.info(`uninstall timings: ${timings.join('; ')}`);
  });

  it('deleting a namespace with a bus, EventSource and Sensor in it completes; their bus state is removed', async () => {
    await install();
    await startController();
    const apps = await objects('apps-ns');
    expect(await apps.streamExists()).toBe(true);
    expect(await apps.buckets()).toHaveLength(3);
    const t0 = Date.now();
    const r = await kubectl('delete', 'namespace', 'apps-ns', '--timeout=90s');
    const ms = Date.now() - t0;
    timings.push(`namespace with objects: ${ms} ms`);
    expect(r.code, r.stderr + ctl!.logs()).toBe(0);
    expect(ms).toBeLessThan(LIMIT_MS);
    expect(await apps.streamExists()).toBe(false);
    expect(await apps.buckets()).toEqual([]);
  });

  it('kubectl delete -f install.yaml with objects present completes, cleaning streams while the controller lives', async () => {
    const apps = await objects('apps-a');
    expect(await apps.consumers()).not.toEqual([]);
    // The Sensor's processed set and partial matches, the EventSource's webhook request ids.
    expect(await apps.buckets()).toHaveLength(3);
    // The controller holds its ServiceAccount and binding while it runs.
    const sa = await core().readNamespacedServiceAccount({ name: 'sluice-controller', namespace: SYS });
    expect(sa.metadata?.finalizers).toContain(HOLD_FINALIZER);
    const t0 = Date.now();
    const deleting = kubectl('delete', '-f', INSTALL, '--timeout=90s');
    await killWhenDeploymentGoes();
    const r = await deleting;
    const ms = Date.now() - t0;
    timings.push(`kubectl delete -f install.yaml: ${ms} ms`);
    expect(r.code, `${r.stdout}${r.stderr}\n${ctl!.logs()}`).toBe(0);
    expect(ms).toBeLessThan(LIMIT_MS);
    expect((await kubectl('get', 'crd', '-o', 'name')).stdout).not.toContain('argoproj.io');
    expect(await apps.streamExists()).toBe(false);
    expect(await apps.buckets(), ctl!.logs()).toEqual([]);
    const ns = await kubectl('get', 'namespace', SYS);
    expect(ns.code).not.toBe(0);
    // The release grant the controller gave itself goes with its namespace (garbage collector).
    await waitFor(
      'the release grant to be collected',
      async () =>
        !(await kubectl('get', 'clusterroles,clusterrolebindings', '-o', 'name')).stdout.includes('-release'),
      { timeoutMs: 30_000 },
    );
    expect(ctl!.logs()).toContain('releasing the RBAC holds in order through a release grant');
    expect(ctl!.logs()).not.toContain('could not release the RBAC hold');
    await kubectl('delete', 'namespace', 'apps-a', '--wait=false');
  });

  it('a controller started without its CRDs says why in /readyz and does not log every retry', async () => {
    await kubectl('create', 'namespace', SYS);
    // Rights as installed, CRDs not: what a restarted controller sees after a half-done uninstall.
    const rbac = await kubectl(
      'apply',
      '--server-side',
      '-f',
      new URL('../../../config/rbac/controller-role.yaml', import.meta.url).pathname,
      '-f',
      new URL('../../../config/rbac/service-account.yaml', import.meta.url).pathname,
    );
    expect(rbac.code, rbac.stderr).toBe(0);
    const p = await startController();
    const body = await waitFor('readyz to name the missing CRD', async () => {
      const res = await fetch(`http://127.0.0.1:${p.metricsPort}/readyz`);
      const text = await res.text();
      return res.status !== 200 && text.includes('CustomResourceDefinition') ? text : undefined;
    });
    expect(body).toContain('/apis/argoproj.io/v1alpha1/');
    // Let it retry for a while: the warning is logged once per resource, not once per retry.
    await new Promise((r) => setTimeout(r, 6000));
    const warns = p
      .logs()
      .split('\n')
      .filter((l) => l.includes('list failed; retrying'));
    expect(warns.length).toBeLessThanOrEqual(3);
    await p.proc.stop();
    await kubectl('delete', 'namespace', SYS, '--wait=false');
    await waitFor('sluice-system gone', async () => (await kubectl('get', 'namespace', SYS)).code !== 0, {
      timeoutMs: LIMIT_MS,
    });
  });

  it('helm-style: the controller scaled to 0 takes its finalizers off, so deleting the CRDs afterwards completes', async () => {
    await install();
    await startController();
    await objects('apps-b');
    await kubectl('scale', 'deployment', 'sluice-controller', '-n', SYS, '--replicas=0');
    await killWhenDeploymentGoes();
    const left = await kubectl(
      'get',
      'eventbus,eventsources,sensors',
      '-n',
      'apps-b',
      '-o',
      'jsonpath={.items[*].metadata.finalizers}',
    );
    expect(left.stdout).not.toContain('sluice.argoproj.io');
    const t0 = Date.now();
    const r = await kubectl(
      'delete',
      'crd',
      'eventbus.argoproj.io',
      'eventsources.argoproj.io',
      'sensors.argoproj.io',
      '--timeout=90s',
    );
    const ms = Date.now() - t0;
    timings.push(`CRDs after the controller was scaled to 0: ${ms} ms`);
    expect(r.code, r.stderr).toBe(0);
    expect(ms).toBeLessThan(LIMIT_MS);
  });
});
