// S5 control plane: N Sensors created at once against a real API server; time until every one
// has its Deployment and a status, and the controller's peak RSS (VmHWM).
// Usage: node bench/controlplane.ts [--count 500]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { startControlPlane } from '../test/harness/controlplane.ts';
import { installCrds } from '../test/harness/crds.ts';
import { startNats } from '../test/harness/nats.ts';
import { waitFor } from '../test/harness/proc.ts';
import { startSluice } from '../test/harness/sluice-process.ts';
import { requireTool } from '../test/harness/tools.ts';
import { machineInfo } from './machine.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '500' } } });
const N = Number(values.count);
const ns = 'bench';
const cp = await startControlPlane();
const nats = await startNats();
const kc = cp.kubeConfig();
await installCrds(cp.kubeconfigPath, kc);
await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
const custom = kc.makeApiClient(CustomObjectsApi);
const G = { group: 'argoproj.io', version: 'v1alpha1', namespace: ns };
await custom.createNamespacedCustomObject({
  ...G,
  plural: 'eventbus',
  body: {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'EventBus',
    metadata: { name: 'default' },
    spec: { jetstreamExotic: { url: nats.url } },
  },
});
const ctl = await startSluice([
  'controller',
  '--kubeconfig',
  cp.kubeconfigPath,
  '--managed-namespace',
  ns,
  '--no-leader-elect',
  '--metrics-port',
  '0',
  '--image',
  'sluice:bench',
]);
const rss = () => {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${ctl.proc.pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
};
const idleRss = rss();
const t0 = performance.now();
const creates: Promise<unknown>[] = [];
for (let i = 0; i < N; i++) {
  creates.push(
    custom.createNamespacedCustomObject({
      ...G,
      plural: 'sensors',
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Sensor',
        metadata: { name: `s-${i}` },
        spec: {
          dependencies: [{ name: 'd', eventSourceName: 'hooks', eventName: 'push' }],
          triggers: [{ template: { name: 't', log: {} } }],
        },
      },
    }),
  );
  if (creates.length >= 50) await Promise.all(creates.splice(0));
}
await Promise.all(creates);
const createdMs = performance.now() - t0;
const apps = kc.makeApiClient(AppsV1Api);
let peak = 0;
await waitFor(
  `${N} Deployments and statuses`,
  async () => {
    peak = Math.max(peak, rss());
    const deps = await apps.listNamespacedDeployment({ namespace: ns });
    if ((deps.items?.length ?? 0) < N) return false;
    const sensors = (await custom.listNamespacedCustomObject({ ...G, plural: 'sensors' })) as {
      items: Array<{ status?: { conditions?: Array<{ type: string; status: string }> } }>;
    };
    return (
      sensors.items.filter((s) =>
        s.status?.conditions?.some((c) => c.type === 'Deployed' && c.status === 'True'),
      ).length >= N
    );
  },
  { timeoutMs: 600_000, intervalMs: 500 },
);
const convergedMs = performance.now() - t0;
peak = Math.max(peak, rss());
const summary = {
  scenario: 'S5 control plane',
  sensors: N,
  createRequestsMs: Math.round(createdMs),
  allConvergedMs: Math.round(convergedMs),
  controllerIdleRssMiB: Math.round(idleRss),
  controllerPeakRssMiB: Math.round(peak),
  reconciles: await ctl.metricValue('sluice_controller_reconcile_total'),
  machine: machineInfo(requireTool('nats-server')),
};
console.log(
  `S5: ${N} Sensors converged in ${(convergedMs / 1000).toFixed(1)} s (creates took ${(createdMs / 1000).toFixed(1)} s); controller peak RSS ${summary.controllerPeakRssMiB} MiB (idle ${summary.controllerIdleRssMiB} MiB)`,
);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/controlplane.json', import.meta.url),
  `${JSON.stringify(summary, null, 2)}\n`,
);
await ctl.proc.stop();
await nats.stop();
await cp.stop();
process.exit(0);
