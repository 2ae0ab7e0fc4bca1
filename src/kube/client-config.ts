// client-node's KubeConfig for command-line tools (`sluice dlq`, `sluice dev`), loaded the way
// kubectl finds it, with two differences from `KubeConfig.loadFromDefault`:
// - no kubeconfig at all (no --kubeconfig, no $KUBECONFIG, no ~/.kube/config, not in a pod) is a
//   KubeConfigError naming what to do, instead of a silent fallback to http://localhost:8080
//   that later fails with "HTTP protocol is not allowed when skipTLSVerify is not set";
// - a cluster whose server is plain http:// (`kubectl proxy`, a local API server) is used as
//   kubectl uses it. client-node refuses such a server unless skipTLSVerify is set, which means
//   nothing without TLS, so it is set for those clusters only.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { type Cluster, KubeConfig } from '@kubernetes/client-node';
import { KubeConfigError } from './config.ts';

/** Where the kubeconfig comes from, or undefined when there is none. */
export function kubeConfigSource(
  path?: string,
  env: NodeJS.ProcessEnv = process.env,
): { file?: string; inCluster?: true } | undefined {
  if (path) return { file: path };
  const fromEnv = env.KUBECONFIG?.split(delimiter).find(Boolean);
  if (fromEnv) return { file: fromEnv };
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return { file: home };
  if (env.KUBERNETES_SERVICE_HOST) return { inCluster: true };
  return undefined;
}

/**
 * Loads the kubeconfig `path` (else $KUBECONFIG, ~/.kube/config, the in-cluster service account).
 * Throws KubeConfigError when there is none or it cannot be read; `hint` ends the message (what
 * else the user can do, e.g. "or give the Sensor with -f").
 */
export function loadClientKubeConfig(path?: string, hint = ''): KubeConfig {
  const source = kubeConfigSource(path);
  if (!source) {
    throw new KubeConfigError(
      `no kubeconfig: pass --kubeconfig, set KUBECONFIG or create ~/.kube/config${hint ? `, ${hint}` : ''}`,
    );
  }
  const kc = new KubeConfig();
  try {
    // Without --kubeconfig, as kubectl: every file of $KUBECONFIG merged, or ~/.kube/config, or
    // the pod's service account (all known to exist here, so there is no localhost fallback).
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new KubeConfigError(
      `cannot read kubeconfig ${source.file ?? '(in-cluster)'}: ${e.code ?? e.message}`,
    );
  }
  if (!kc.getCurrentCluster()) {
    throw new KubeConfigError(
      `kubeconfig ${source.file}: current context "${kc.getCurrentContext()}" has no cluster`,
    );
  }
  const plain = (c: Cluster) => c.server.startsWith('http:') && !c.skipTLSVerify;
  if (kc.clusters.some(plain)) {
    kc.loadFromOptions({
      clusters: kc.clusters.map((c) => (plain(c) ? { ...c, skipTLSVerify: true } : c)),
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.getCurrentContext(),
    });
  }
  return kc;
}
