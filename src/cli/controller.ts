// `sluice controller`: the operator process.

import { type PodPolicy, podPolicyFromEnv } from '../api/pod-policy.ts';
import { busOperations } from '../controller/bus-ops.ts';
import { Controller } from '../controller/controller.ts';
import { selfRefsFromEnv } from '../controller/uninstall.ts';
import { SimpleKubeConfig } from '../kube/config.ts';
import { createLogger, setRootLogger } from '../observability/logger.ts';
import { registry } from '../observability/metrics.ts';
import { startOpsServer } from '../observability/server.ts';
import { VERSION } from '../version.ts';
import { CliError } from './errors.ts';

export interface ControllerFlags {
  kubeconfig?: string;
  namespaced?: boolean;
  managedNamespace?: string;
  leaderElect: boolean;
  leaderElectNamespace?: string;
  leaseDuration: string;
  renewDeadline: string;
  retryPeriod: string;
  metricsPort: string;
  image?: string;
  natsImage: string;
  natsReloaderImage?: string;
  workers: string;
  allowPodSettings?: string;
  logLevel?: string;
}

export async function runController(flags: ControllerFlags): Promise<void> {
  const log = createLogger({
    base: { role: 'controller' },
    ...(flags.logLevel ? { level: flags.logLevel } : {}),
  });
  setRootLogger(log);
  let podPolicy: PodPolicy;
  try {
    podPolicy = podPolicyFromEnv(process.env, flags.allowPodSettings);
  } catch (err) {
    throw new CliError('Usage', (err as Error).message);
  }
  // Not client-node's KubeConfig: importing that library alone costs ~86 MiB of resident memory.
  const kc = flags.kubeconfig ? SimpleKubeConfig.loadFile(flags.kubeconfig) : SimpleKubeConfig.loadDefault();
  const podNamespace = process.env.POD_NAMESPACE;
  const namespace =
    flags.managedNamespace ??
    (flags.namespaced
      ? (podNamespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default')
      : undefined);
  const controller = new Controller({
    kubeConfig: kc,
    registry: registry(),
    logger: log,
    bus: busOperations({ log: log.child({ component: 'bus' }), registry: registry() }),
    image: flags.image ?? process.env.SLUICE_IMAGE ?? `sluice:${VERSION}`,
    natsImage: flags.natsImage,
    ...(flags.natsReloaderImage ? { natsReloaderImage: flags.natsReloaderImage } : {}),
    workers: Number(flags.workers),
    podPolicy,
    // Its own Deployment, ClusterRoleBinding and ServiceAccount (uninstall; see controller/uninstall.ts).
    self: selfRefsFromEnv(),
    ...(namespace ? { namespace } : {}),
    // CRDs are cluster-scoped: a namespaced controller (rights from a Role) cannot watch them; one
    // with cluster-wide rights given --managed-namespace alone can, and needs to for an uninstall.
    watchCrds: !flags.namespaced,
    // A Role lives in the namespace it grants rights in: deleting the managed namespace deletes the
    // controller's rights with the objects, so it could not remove finalizers there (deleted.ts).
    finalizers: !flags.namespaced,
    leaderElection: {
      enabled: flags.leaderElect,
      namespace: flags.leaderElectNamespace ?? podNamespace ?? namespace ?? 'default',
      leaseDurationMs: Number(flags.leaseDuration) * 1000,
      renewDeadlineMs: Number(flags.renewDeadline) * 1000,
      retryPeriodMs: Number(flags.retryPeriod) * 1000,
    },
    onLostLeadership: () => {
      log.error('lost leadership; exiting so a fresh process can campaign');
      process.exit(1);
    },
  });
  const ops = await startOpsServer({
    port: Number(flags.metricsPort),
    registry: registry(),
    notReady: () => controller.notReady(),
  });
  log.info(
    {
      version: VERSION,
      metricsPort: ops.port,
      namespace: namespace ?? '(all)',
      leaderElect: flags.leaderElect,
      allowPodSettings: [...(podPolicy.allow ?? [])].join(',') || '(none)',
    },
    'starting controller',
  );
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await controller.stop();
    await ops.close();
    log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  await controller.start();
}
