// The uninstall tests' bed: a dedicated control plane (they delete CRDs, so not the shared one) with
// kube-controller-manager running the namespace and garbage-collector controllers, objects with
// sluice's finalizers in a namespace, and the kubelet's part of an uninstall (SIGTERM once the
// controller's Deployment is deleted or scaled to 0).
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { eventStreamName } from '../../../src/bus/subjects.ts';
import { type ControlPlane, startControlPlane } from '../../harness/controlplane.ts';
import { waitFor } from '../../harness/proc.ts';
import { run } from '../../harness/run.ts';
import { startNamespaceControllers } from '../../harness/service-account.ts';
import { natsUrl } from '../../harness/shared.ts';
import type { SluiceProcess } from '../../harness/sluice-process.ts';
import { findTool } from '../../harness/tools.ts';

export const UNINSTALL_TOOLS = ['kube-apiserver', 'etcd', 'kube-controller-manager', 'kubectl'] as const;
const G = { group: 'argoproj.io', version: 'v1alpha1' };
/** What the issue asks of every uninstall path (ms). */
export const LIMIT_MS = 60_000;

export interface UninstallBed {
  cp: ControlPlane;
  kubectl(...args: string[]): ReturnType<typeof run>;
  /** Creates namespace `ns` with a bus, an EventSource and a Sensor, and waits for them to be deployed. */
  objects(ns: string, logs: () => string, busUrl?: string): Promise<BusState>;
  /**
   * Waits until Deployment `ns/name` is deleted, being deleted or scaled to 0, then stops `ctl` as
   * a kubelet would (SIGTERM, SIGKILL after the pod's 30 s grace period). Resolves with the time
   * from SIGTERM to its exit (ms).
   */
  killWhenDeploymentGoes(ns: string, name: string, ctl: SluiceProcess | undefined): Promise<number>;
  stop(): Promise<void>;
}

/** What the bus holds for a namespace's objects. */
export interface BusState {
  streamExists(): Promise<boolean>;
  consumers(): Promise<string[]>;
  /** KV buckets (stream names) of the namespace. */
  buckets(): Promise<string[]>;
}

/** Starts the bed (and its own connection to the shared nats-server, to inspect bus state). */
export async function startUninstallBed(): Promise<UninstallBed> {
  const nc = await connect({ servers: natsUrl() });
  const cp = await startControlPlane();
  const kcm = startNamespaceControllers(cp);
  const kubectl = (...args: string[]) =>
    run(findTool('kubectl').path!, ['--kubeconfig', cp.kubeconfigPath, ...args]);
  const custom = () => cp.kubeConfig().makeApiClient(CustomObjectsApi);
  const core = () => cp.kubeConfig().makeApiClient(CoreV1Api);
  const jsm = await jetstreamManager(nc);

  const objects = async (ns: string, logs: () => string, busUrl = natsUrl()): Promise<BusState> => {
    await core().createNamespace({ body: { metadata: { name: ns } } });
    const mk = (plural: string, kind: string, name: string, spec: unknown) =>
      custom().createNamespacedCustomObject({
        ...G,
        namespace: ns,
        plural,
        body: { apiVersion: 'argoproj.io/v1alpha1', kind, metadata: { name }, spec },
      });
    await mk('eventbus', 'EventBus', 'default', { jetstreamExotic: { url: busUrl } });
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
        { timeoutMs: 60_000, onTimeout: logs },
      );
    const stream = eventStreamName({ namespace: ns, busName: 'default' });
    return {
      streamExists: () =>
        jsm.streams.info(stream).then(
          () => true,
          () => false,
        ),
      consumers: async () => {
        const out: string[] = [];
        for await (const c of jsm.consumers.list(stream)) out.push(c.name);
        return out;
      },
      buckets: async () => {
        const out: string[] = [];
        const prefix = `KV_sluice_${ns.replaceAll('-', '-2d')}_`;
        for await (const n of jsm.streams.names()) if (n.startsWith(prefix)) out.push(n);
        return out.sort();
      },
    };
  };

  const killWhenDeploymentGoes = async (ns: string, name: string, ctl: SluiceProcess | undefined) => {
    await waitFor(
      `Deployment ${ns}/${name} to be deleted or scaled to 0`,
      async () => {
        const r = await kubectl('get', 'deployment', name, '-n', ns, '-o', 'json');
        if (r.code !== 0) return true;
        const d = JSON.parse(r.stdout) as {
          metadata: { deletionTimestamp?: string };
          spec: { replicas?: number };
        };
        return !!d.metadata.deletionTimestamp || d.spec.replicas === 0;
      },
      { timeoutMs: LIMIT_MS, intervalMs: 100 },
    );
    const t0 = Date.now();
    await ctl?.proc.stop(30_000);
    return Date.now() - t0;
  };

  return {
    cp,
    kubectl,
    objects,
    killWhenDeploymentGoes,
    stop: async () => {
      await nc.close();
      await kcm.stop();
      await cp.stop();
    },
  };
}
