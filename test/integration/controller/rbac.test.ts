// The controller works with nothing but the RBAC in config/rbac: it runs as the
// sluice-controller ServiceAccount (a real token from the TokenRequest API), reconciles every
// kind, and its log shows no "forbidden".
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installCrds } from '../../harness/crds.ts';
import { waitFor } from '../../harness/proc.ts';
import { run } from '../../harness/run.ts';
import { serviceAccountKubeconfig } from '../../harness/service-account.ts';
import {
  kubeConfig,
  kubeconfigPath,
  kubeMissing,
  natsMissing,
  natsUrl,
  skipNote,
  uniqueName,
} from '../../harness/shared.ts';
import { type SluiceProcess, startSluice } from '../../harness/sluice-process.ts';
import { findTool } from '../../harness/tools.ts';

const kubectl = findTool('kubectl');
const missing = kubeMissing() ?? natsMissing() ?? kubectl.missing ?? null;
const rbacDir = new URL('../../../config/rbac/', import.meta.url).pathname;

describe.skipIf(missing)(`controller with least-privilege RBAC${skipNote(missing)}`, () => {
  const ns = uniqueName('rbac');
  let ctl: SluiceProcess | undefined;
  const G = { group: 'argoproj.io', version: 'v1alpha1', namespace: ns };

  beforeAll(async () => {
    const kc = kubeConfig();
    await installCrds(kubeconfigPath()!, kc);
    const core = kc.makeApiClient(CoreV1Api);
    for (const name of ['sluice-system', ns]) {
      await core.createNamespace({ body: { metadata: { name } } }).catch(() => undefined);
    }
    const applied = await run(kubectl.path!, ['--kubeconfig', kubeconfigPath()!, 'apply', '-k', rbacDir]);
    expect(applied.stderr).toBe('');
    const saConfig = await serviceAccountKubeconfig(kc, 'sluice-system', 'sluice-controller');
    ctl = await startSluice([
      'controller',
      '--kubeconfig',
      saConfig,
      '--managed-namespace',
      ns,
      '--leader-elect-namespace',
      'sluice-system',
      '--metrics-port',
      '0',
      '--image',
      'sluice:test',
    ]);
  });
  afterAll(async () => {
    await ctl?.proc.stop();
    await kubeConfig()
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: ns })
      .catch(() => undefined);
  });

  it('reconciles buses, sources and sensors (incl. finalizer and pruning) without a forbidden call', async () => {
    const custom = kubeConfig().makeApiClient(CustomObjectsApi);
    const mk = (plural: string, kind: string, name: string, spec: unknown) =>
      custom.createNamespacedCustomObject({
        ...G,
        plural,
        body: { apiVersion: 'argoproj.io/v1alpha1', kind, metadata: { name }, spec },
      });
    await mk('eventbus', 'EventBus', 'default', { jetstreamExotic: { url: natsUrl() } });
    await mk('eventbus', 'EventBus', 'managed', { jetstream: { replicas: 1 } });
    await mk('eventsources', 'EventSource', 'hooks', {
      service: { ports: [{ port: 12000 }] },
      webhook: { push: { port: '12000', endpoint: '/push', method: 'POST' } },
    });
    await mk('sensors', 'Sensor', 'sensor', {
      dependencies: [{ name: 'd', eventSourceName: 'hooks', eventName: 'push' }],
      triggers: [{ template: { name: 't', log: {} } }],
    });
    const deployed = (plural: string, name: string, type = 'Deployed') =>
      waitFor(
        `${plural}/${name} ${type}`,
        async () => {
          const o = (await custom.getNamespacedCustomObject({ ...G, plural, name })) as {
            status?: { conditions?: Array<{ type: string; status: string }> };
          };
          return o.status?.conditions?.some((c) => c.type === type && c.status === 'True');
        },
        { timeoutMs: 30_000, onTimeout: () => ctl!.logs() },
      );
    await deployed('eventbus', 'default', 'Ready');
    await deployed('eventbus', 'managed');
    await deployed('eventsources', 'hooks');
    await deployed('sensors', 'sensor');
    await custom.deleteNamespacedCustomObject({ ...G, plural: 'sensors', name: 'sensor' });
    await custom.deleteNamespacedCustomObject({ ...G, plural: 'eventsources', name: 'hooks' });
    await custom.deleteNamespacedCustomObject({ ...G, plural: 'eventbus', name: 'default' });
    await waitFor('bus finalizer to complete', () =>
      custom.getNamespacedCustomObject({ ...G, plural: 'eventbus', name: 'default' }).then(
        () => false,
        () => true,
      ),
    );
    expect(ctl!.logs()).not.toMatch(/forbidden/i);
    expect(await ctl!.metricValue('leader_election_master_status')).toBe(1);
  });
});
