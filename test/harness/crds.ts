// Installs the checked-in CRDs (crds/*.yaml) into a control plane with `kubectl apply
// --server-side` (the CRDs are too large for client-side apply's last-applied annotation) and
// waits until the API server serves them.
import { ApiextensionsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { waitFor } from './proc.ts';
import { run } from './run.ts';
import { requireTool } from './tools.ts';

export const CRD_NAMES = ['eventbus.argoproj.io', 'eventsources.argoproj.io', 'sensors.argoproj.io'];
const crdDir = new URL('../../crds/', import.meta.url).pathname;

export async function installCrds(kubeconfigPath: string, kc: KubeConfig): Promise<void> {
  const kubectl = requireTool('kubectl');
  const res = await run(kubectl, [
    '--kubeconfig',
    kubeconfigPath,
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager',
    'sluice-tests',
    '-f',
    crdDir,
  ]);
  if (res.code !== 0) throw new Error(`installing CRDs failed: ${res.stderr || res.stdout}`);
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  await waitFor('sluice CRDs to be Established', async () => {
    for (const name of CRD_NAMES) {
      const crd = await ext.readCustomResourceDefinition({ name });
      if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return false;
    }
    return true;
  });
  // Discovery can trail Established; wait until kubectl resolves the short names.
  await waitFor('kubectl to discover the sluice kinds', async () => {
    const r = await run(kubectl, ['--kubeconfig', kubeconfigPath, 'get', 'eb,es,sn', '-A', '-o', 'name']);
    return r.code === 0;
  });
}
