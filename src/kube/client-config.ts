// client-node's KubeConfig for command-line tools (`sluice dlq`, `sluice dev`), loaded the way
// kubectl finds it, with two differences from `KubeConfig.loadFromDefault`:
// - no kubeconfig at all (no --kubeconfig, no $KUBECONFIG, no ~/.kube/config, not in a pod) is a
//   KubeConfigError naming what to do, instead of a silent fallback to http://localhost:8080
//   that later fails with "HTTP protocol is not allowed when skipTLSVerify is not set";
// - a cluster whose server is plain http:// (`kubectl proxy`, a local API server) is used as
//   kubectl uses it. client-node refuses such a server unless skipTLSVerify is set, which means
//   nothing without TLS, so it is set for those clusters only;
// - a credential plugin that fails (not installed, exits non-zero, prints no ExecCredential) is a
//   KubeConfigError naming the file, user and plugin (auth-plugin.ts), as `sluice controller` names
//   them, instead of the bare spawn error ("cannot read aws: no such file").
import { existsSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { type Cluster, KubeConfig } from '@kubernetes/client-node';
import { authPluginMessage, authPluginOf, pluginFailure } from './auth-plugin.ts';
import { KubeConfigError } from './config.ts';

type RequestContext = Parameters<KubeConfig['applySecurityAuthentication']>[0];

/** client-node's KubeConfig whose credential failures say which file, user and plugin failed. */
class CliKubeConfig extends KubeConfig {
  private readonly file: string;

  constructor(file: string) {
    super();
    this.file = file;
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    try {
      await super.applySecurityAuthentication(context);
    } catch (err) {
      throw this.credentialError(err);
    }
  }

  override async applyToHTTPSOptions(opts: RequestOptions): Promise<void> {
    try {
      await super.applyToHTTPSOptions(opts);
    } catch (err) {
      throw this.credentialError(err);
    }
  }

  private credentialError(err: unknown): unknown {
    const user = this.getCurrentUser();
    const plugin = authPluginOf(user);
    if (!user || !plugin) return err;
    return new KubeConfigError(
      authPluginMessage({ file: this.file, user: user.name, plugin }, pluginFailure(err)),
      { cause: err },
    );
  }
}

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
  const kc = new CliKubeConfig(source.file ?? '(in-cluster)');
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
