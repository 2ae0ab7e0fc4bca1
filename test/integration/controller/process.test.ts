// `sluice controller` as real processes on a dedicated control plane: two replicas with leader
// election (only the leader reconciles; the other takes over after a SIGKILL within the lease
// duration), and an API-server restart mid-run after which the controller converges again.
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlane, startControlPlane } from '../../harness/controlplane.ts';
import { installCrds } from '../../harness/crds.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { type SluiceProcess, startSluice } from '../../harness/sluice-process.ts';
import { findTool } from '../../harness/tools.ts';

const kubeTool = [findTool('kube-apiserver'), findTool('etcd')].find((t) => !t.path)?.missing;
const missing = kubeTool ?? natsMissing();
const LEASE_S = 4;

describe.skipIf(missing)(`sluice controller processes${skipNote(missing ?? null)}`, () => {
  let cp: ControlPlane;
  const ns = 'ctrl-proc';
  const procs: SluiceProcess[] = [];
  const G = { group: 'argoproj.io', version: 'v1alpha1', namespace: ns };

  const start = () =>
    startSluice([
      'controller',
      '--kubeconfig',
      cp.kubeconfigPath,
      '--managed-namespace',
      ns,
      '--leader-elect-namespace',
      ns,
      '--metrics-port',
      '0',
      '--lease-duration',
      String(LEASE_S),
      '--renew-deadline',
      '3',
      '--retry-period',
      '1',
      '--image',
      'sluice:test',
    ]).then((p) => {
      procs.push(p);
      return p;
    });
  const custom = () => cp.kubeConfig().makeApiClient(CustomObjectsApi);
  const ready = (plural: string, name: string) =>
    waitFor(
      `${plural}/${name} to get a status`,
      async () => {
        const o = (await custom()
          .getNamespacedCustomObject({ ...G, plural, name })
          .catch(() => undefined)) as
          | { status?: { conditions?: Array<{ type: string; status: string }> } }
          | undefined;
        return o?.status?.conditions?.some((c) => c.type === 'Deployed' && c.status === 'True');
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
  const leading = async (p: SluiceProcess) => (await p.metricValue('leader_election_master_status')) === 1;

  beforeAll(async () => {
    cp = await startControlPlane();
    await installCrds(cp.kubeconfigPath, cp.kubeConfig());
    await cp
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: ns } } });
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.proc.stop()));
    await cp?.stop();
  });

  it('two replicas: only the leader reconciles; a SIGKILLed leader is replaced within the lease', async () => {
    const a = await start();
    const b = await start();
    await custom().createNamespacedCustomObject({
      ...G,
      plural: 'eventbus',
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'EventBus',
        metadata: { name: 'default' },
        spec: { jetstreamExotic: { url: natsUrl() } },
      },
    });
    await custom().createNamespacedCustomObject({
      ...G,
      plural: 'sensors',
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Sensor',
        metadata: { name: 's1' },
        spec: {
          dependencies: [{ name: 'd', eventSourceName: 'e', eventName: 'x' }],
          triggers: [{ template: { name: 't', log: {} } }],
        },
      },
    });
    await ready('sensors', 's1');
    const leader = (await leading(a)) ? a : b;
    const follower = leader === a ? b : a;
    expect(await leading(follower)).toBe(false);
    expect(await leader.metricValue('sluice_controller_reconcile_total')).toBeGreaterThan(0);
    expect(await follower.metricValue('sluice_controller_reconcile_total')).toBe(0);

    const killedAt = Date.now();
    await leader.proc.kill();
    await waitFor('the follower to lead', () => leading(follower), {
      timeoutMs: (LEASE_S + 6) * 1000,
      intervalMs: 100,
    });
    const takeoverMs = Date.now() - killedAt;
    console.info(`leader takeover after SIGKILL: ${takeoverMs} ms (lease ${LEASE_S}s)`);
    // Within the lease plus a few retry periods; a loaded 2-core machine adds scheduling delay.
    expect(takeoverMs).toBeLessThan((2 * LEASE_S + 2) * 1000);
    await custom().createNamespacedCustomObject({
      ...G,
      plural: 'sensors',
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Sensor',
        metadata: { name: 's2' },
        spec: {
          dependencies: [{ name: 'd', eventSourceName: 'e', eventName: 'x' }],
          triggers: [{ template: { name: 't', log: {} } }],
        },
      },
    });
    await ready('sensors', 's2');
  });

  it('resumes and converges after the API server restarts mid-run', async () => {
    const before = procs.filter((p) => p.proc.running);
    await cp.stopApiServer();
    await new Promise((r) => setTimeout(r, 1000));
    await cp.startApiServer();
    // Standing in for the kubelet (restartPolicy: Always): a controller that lost its Lease
    // during the outage exits on purpose, and is started again.
    const alive = before.filter((p) => p.proc.running);
    if (alive.length === 0) await start();
    await custom().createNamespacedCustomObject({
      ...G,
      plural: 'sensors',
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Sensor',
        metadata: { name: 'after-restart' },
        spec: {
          dependencies: [{ name: 'd', eventSourceName: 'e', eventName: 'x' }],
          triggers: [{ template: { name: 't', log: {} } }],
        },
      },
    });
    await ready('sensors', 'after-restart');
    // Everything created before the outage is still converged.
    for (const name of ['s1', 's2']) await ready('sensors', name);
  });
});
