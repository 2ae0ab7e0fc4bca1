// sluice on a real single-node Kubernetes (test/harness/node): the images built here run as pods
// on a real kubelet with containerd and runc. Both install paths, all the way:
//   helm install → the controller pod becomes Ready → a managed EventBus runs as a StatefulSet of
//   nats-server pods on local PersistentVolumes → the EventSource and Sensor run as pods → an
//   HTTP POST through the EventSource's Service reaches the sink once → helm upgrade rolls the
//   controller → helm uninstall, then the CRDs are deleted;
//   kubectl apply --server-side -f config/install.yaml → the same → the Sensor's pod and then a
//   bus pod are killed during a stream of events, each still delivered once → kubectl delete.
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { CRD_NAMES } from '../../test/harness/crds.ts';
import { type KubeNode, nodeMissing, startNode } from '../../test/harness/node/node.ts';
import { waitFor } from '../../test/harness/proc.ts';
import { run } from '../../test/harness/run.ts';
import { skipNote, uniqueName } from '../../test/harness/shared.ts';
import { findTool } from '../../test/harness/tools.ts';
import {
  clusterIp,
  eventBus,
  expectDeliveredOnce,
  kubectlOk,
  rollout,
  type Sink,
  sendEvent,
  sinkSensor,
  startSink,
  WEBHOOK_PORT,
  waitReady,
  webhookSource,
  yamlDocs,
} from './fixtures.ts';

const root = new URL('../..', import.meta.url).pathname;
const helm = findTool('helm');
const skip = nodeMissing() ?? helm.missing ?? null;
const BUS_REPLICAS = 3;

let node: KubeNode;
let sink: Sink;

/** The nats-server image scripts/images.sh built, by the name kubelet asks containerd for. */
const natsImage = () => node.images.find((i) => i.ref.includes('/nats-server:'))!.ref;

/** Managed bus, EventSource and Sensor in `ns`, Ready, with the bus on local volumes. */
async function deployPipeline(ns: string): Promise<string> {
  await node.addLocalVolumes(BUS_REPLICAS);
  const objs = [eventBus(BUS_REPLICAS), webhookSource(), sinkSensor(sink.url)].map((o) => ({
    ...o,
    metadata: { ...(o.metadata as object), namespace: ns },
  }));
  await kubectlOk(node, ['apply', '-f', '-'], yamlDocs(objs));
  await waitReady(node, ns, 'eventbus', 'default');
  const sts = JSON.parse(
    await kubectlOk(node, [
      'get',
      'statefulset',
      '-n',
      ns,
      '-l',
      'app.kubernetes.io/name=eventbus',
      '-o',
      'json',
    ]),
  ) as {
    items: Array<{
      status: { readyReplicas?: number };
      spec: { template: { spec: { containers: Array<{ image: string }> } } };
    }>;
  };
  expect(sts.items).toHaveLength(1);
  expect(sts.items[0]!.status.readyReplicas).toBe(BUS_REPLICAS);
  expect(sts.items[0]!.spec.template.spec.containers[0]!.image).toBe(natsImage());
  // Every server has its own volume, bound to a local PersistentVolume that JetStream writes to.
  const pvcs = (
    await kubectlOk(node, ['get', 'pvc', '-n', ns, '-o', 'jsonpath={.items[*].status.phase}'])
  ).split(' ');
  expect(pvcs).toEqual(Array(BUS_REPLICAS).fill('Bound'));
  const written = readdirSync(join(node.dir, 'volumes')).filter((v) => {
    const d = join(node.dir, 'volumes', v);
    return existsSync(d) && readdirSync(d).length > 0;
  });
  expect(written.length).toBeGreaterThanOrEqual(BUS_REPLICAS);

  await rollout(node, ns, 'deployment/eventsource-webhook');
  await rollout(node, ns, 'deployment/sensor-orders');
  await waitReady(node, ns, 'eventsource', 'webhook');
  await waitReady(node, ns, 'sensor', 'orders');
  return `http://${await clusterIp(node, ns, 'webhook-eventsource-svc')}:${WEBHOOK_PORT}/orders`;
}

/** Deletes the pipeline's objects while the controller still runs (it removes their finalizers). */
async function deletePipeline(ns: string): Promise<void> {
  await kubectlOk(node, ['delete', 'sensors,eventsources,eventbus', '--all', '-n', ns, '--timeout=180s']);
}

const controllerPods = async (ns: string) =>
  (
    await kubectlOk(node, [
      'get',
      'pods',
      '-n',
      ns,
      '-l',
      'app.kubernetes.io/component=controller',
      '-o',
      'jsonpath={.items[*].metadata.name}',
    ])
  )
    .split(' ')
    .filter(Boolean);

async function expectCrdsGone(): Promise<void> {
  const r = await node.kubectl(['get', 'crd', ...CRD_NAMES, '--ignore-not-found', '-o', 'name']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout.trim()).toBe('');
}

describe.skipIf(skip)(`sluice on a real node (kubelet, containerd, runc)${skipNote(skip)}`, () => {
  beforeAll(async () => {
    const started = Date.now();
    node = await startNode({ dir: join(root, 'test-results', 'node') });
    sink = await startSink(node.net.hostIp);
    console.log(`node ready in ${Date.now() - started} ms (${node.kubeconfigPath})`);
  });
  afterAll(async () => {
    await sink?.close();
    const started = Date.now();
    await node?.stop();
    console.log(`node stopped and cleaned up in ${Date.now() - started} ms`);
  });

  it('helm install → controller pod Ready → managed bus on volumes → EventSource/Sensor pods → POST via Service delivered once → helm upgrade rolls → uninstall, CRDs deleted', async () => {
    const started = Date.now();
    const ns = 'sluice-helm';
    const release = 'sl';
    const home = mkdtempSync(join(tmpdir(), 'sluice-helm-'));
    const env = { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home };
    const helmRun = async (args: string[]) => {
      const r = await run(helm.path!, ['--kubeconfig', node.kubeconfigPath, ...args], { env });
      expect(r.code, `helm ${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    const chart = join(root, 'charts/sluice');
    await helmRun([
      'install',
      release,
      chart,
      '-n',
      ns,
      '--create-namespace',
      '--set',
      `natsImage=${natsImage()}`,
    ]);
    const deployment = `deployment/${release}-sluice-controller`;
    await rollout(node, ns, deployment);
    const before = await controllerPods(ns);
    expect(before).toHaveLength(1);

    const url = await deployPipeline(ns);
    await sendEvent(url, 'helm-1');
    await expectDeliveredOnce(sink, ['helm-1']);

    // A changed value rolls the controller; the new pod takes over and events still flow.
    await helmRun(['upgrade', release, chart, '-n', ns, '--reuse-values', '--set', 'logLevel=debug']);
    await rollout(node, ns, deployment);
    // The old pod is gone (not just Terminating) and one new pod runs.
    const after = await waitFor('the old controller pod to be gone', async () => {
      const pods = await controllerPods(ns);
      return pods.length === 1 && pods[0] !== before[0] ? pods : undefined;
    });
    expect(after).toHaveLength(1);
    const args = await kubectlOk(node, [
      'get',
      deployment,
      '-n',
      ns,
      '-o',
      'jsonpath={.spec.template.spec.containers[0].args}',
    ]);
    expect(args).toContain('debug');
    await sendEvent(url, 'helm-2');
    await expectDeliveredOnce(sink, ['helm-1', 'helm-2']);

    await deletePipeline(ns);
    await helmRun(['uninstall', release, '-n', ns, '--wait', '--timeout', '3m']);
    // The garbage collector removes the Deployment's pods after the Deployment.
    await waitFor('the controller pod to be gone', async () => (await controllerPods(ns)).length === 0, {
      timeoutMs: 120_000,
      intervalMs: 500,
    });
    // Helm keeps CRDs; deleting them completes (no object is left holding a finalizer).
    await kubectlOk(node, ['delete', 'crd', ...CRD_NAMES, '--timeout=120s']);
    await expectCrdsGone();
    await kubectlOk(node, ['delete', 'namespace', ns, '--timeout=180s']);
    console.log(`helm path on the node: ${Date.now() - started} ms`);
  });

  it('kubectl apply --server-side -f config/install.yaml → the same pipeline; Sensor pod and a bus pod killed during a stream of events: each delivered once → kubectl delete', async () => {
    const started = Date.now();
    // As a user with no registry would: the controller gets the nats-server image built here.
    const docs = parseAllDocuments(readFileSync(join(root, 'config/install.yaml'), 'utf8'))
      .map((d) => d.toJS() as Record<string, unknown> | null)
      .filter((o): o is Record<string, unknown> => o !== null);
    const controller = docs.find((o) => o.kind === 'Deployment') as {
      spec: { template: { spec: { containers: Array<{ args: string[] }> } } };
    };
    controller.spec.template.spec.containers[0]!.args.push('--nats-image', natsImage());
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-install-')), 'install.yaml');
    writeFileSync(file, docs.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'));
    await kubectlOk(node, ['apply', '--server-side', '-f', file]);
    await rollout(node, 'sluice-system', 'deployment/sluice-controller');

    const ns = uniqueName('orders');
    await kubectlOk(node, ['create', 'namespace', ns]);
    const url = await deployPipeline(ns);
    await sendEvent(url, 'apply-1');
    await expectDeliveredOnce(sink, ['apply-1']);

    // A stream of events; the Sensor's pod is killed after 30 of them, a bus pod after 80.
    const ids = Array.from({ length: 120 }, (_, i) => `stream-${i}`);
    const kills: Record<number, string[]> = {
      30: ['pod', '-n', ns, '-l', 'app.kubernetes.io/name=sensor'],
      80: ['pod', '-n', ns, 'eventbus-default-js-1'],
    };
    const killed: string[] = [];
    let retries = 0;
    for (const [i, id] of ids.entries()) {
      const kill = kills[i];
      if (kill) {
        const r = await kubectlOk(node, ['delete', ...kill, '--grace-period=0', '--force', '--wait=false']);
        killed.push(r.trim());
      }
      retries += (await sendEvent(url, id)) - 1;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(killed).toHaveLength(2);
    await expectDeliveredOnce(sink, ['apply-1', ...ids], 300_000);
    console.log(`stream: ${ids.length} events, ${retries} sender retries, killed: ${killed.join('; ')}`);
    await rollout(node, ns, 'deployment/sensor-orders');
    await rollout(node, ns, 'statefulset/eventbus-default-js');

    await deletePipeline(ns);
    // Uninstall: CRDs, RBAC, the controller and its namespace; everything completes.
    await kubectlOk(node, ['delete', '-f', file, '--timeout=180s']);
    await expectCrdsGone();
    await kubectlOk(node, ['delete', 'namespace', ns, '--timeout=180s']);
    console.log(`install.yaml path on the node: ${Date.now() - started} ms`);
  });
});
