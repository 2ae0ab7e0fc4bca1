// Acting as a pod would on a control plane without kubelets: a kubeconfig that authenticates as
// a ServiceAccount (a TokenRequest token, so RBAC applies as in the pod), and the
// kube-controller-manager controllers that namespace deletion and owner references need.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { ControlPlane } from './controlplane.ts';
import { ManagedProcess, waitFor } from './proc.ts';
import { findTool } from './tools.ts';

/**
 * Writes `<dir>/<namespace>-<name>.kubeconfig` for ServiceAccount `namespace/name` of the
 * cluster `kc` points at (token valid 1 h; the ServiceAccount may still be being created); `dir`
 * defaults to a new temporary folder.
 */
export async function serviceAccountKubeconfig(
  kc: KubeConfig,
  namespace: string,
  name: string,
  dir: string = mkdtempSync(join(tmpdir(), 'sluice-sa-')),
): Promise<string> {
  const token = await waitFor(`a token for ServiceAccount ${namespace}/${name}`, () =>
    kc
      .makeApiClient(CoreV1Api)
      .createNamespacedServiceAccountToken({ name, namespace, body: { spec: { expirationSeconds: 3600 } } })
      .then((t) => t.status?.token),
  );
  const cluster = kc.getCurrentCluster()!;
  const path = join(dir, `${namespace}-${name}.kubeconfig`);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'c',
          cluster: {
            server: cluster.server,
            'certificate-authority-data': cluster.caData ?? readFileSync(cluster.caFile!).toString('base64'),
          },
        },
      ],
      users: [{ name: 'sa', user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: 'c', user: 'sa', namespace } }],
      'current-context': 'sa',
    }),
  );
  return path;
}

/** kube-controller-manager with only the namespace and garbage-collector controllers, started. */
export function startNamespaceControllers(cp: ControlPlane): ManagedProcess {
  const kcm = new ManagedProcess(
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
  return kcm;
}
