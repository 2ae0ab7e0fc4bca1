// Running the controller Deployment's container as a local process, standing in for a kubelet:
// its args and env (downward-API fields filled in as a kubelet would); with a token of its own
// ServiceAccount (service-account.ts) in place of the in-cluster mount, the installed RBAC is what
// it runs with. Used by e2e/install.test.ts and the uninstall tests.
import type { V1Deployment } from '@kubernetes/client-node';

/**
 * What a kubelet would run for the Deployment's first container: the image entrypoint (`sluice`)
 * with the container args, literal env values and the downward-API fields the pod spec asks for.
 * The metrics port becomes 0 (any free port) since other tests share this host. Throws on a
 * container command or an env source it has no stand-in for.
 */
export function containerRun(d: V1Deployment, podName: string) {
  const ctr = d.spec!.template.spec!.containers[0]!;
  if (ctr.command) throw new Error('the container should use the image entrypoint (sluice)');
  const env: Record<string, string> = {};
  for (const e of ctr.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = d.metadata!.namespace!;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.serviceAccountName')
      env[e.name] = d.spec!.template.spec!.serviceAccountName!;
    else throw new Error(`env ${e.name}: no stand-in for ${JSON.stringify(e.valueFrom)}`);
  }
  const args = [...(ctr.args ?? [])];
  const port = args.indexOf('--metrics-port');
  if (port < 0) throw new Error('--metrics-port is not set');
  args[port + 1] = '0';
  return { args, env, serviceAccount: d.spec!.template.spec!.serviceAccountName! };
}
