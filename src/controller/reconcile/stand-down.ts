// Standing down beside another controller. While Argo Events' controller runs an EventSource or a
// Sensor (its workload exists, owned by the object), sluice runs nothing for that object: a
// Deployment sluice made before the other controller's appeared is scaled to 0, not deleted. The
// object, its name, its Service and its revision history stay, and when the other controller's
// workloads go (migration finished, or a rollback undone), the next reconcile applies the
// Deployment again with its wanted replicas: server-side apply takes `spec.replicas` back.
//
// A managed EventBus's StatefulSet is not stood down this way: its JetStream store holds accepted
// events (an emptyDir one would lose them with its pods), and Argo Events names its JetStream
// StatefulSet as sluice does (`eventbus-NAME-js`), so the two cannot both exist for one bus.
import type { ConditionInput } from '../conditions.ts';
import { workloadName } from '../resources/workload.ts';
import { emitEvent, foreignReason } from './children.ts';
import type { ReconcileContext, SluiceObject } from './context.ts';
import type { DeploymentLike } from './readiness.ts';

type OwnDeployment = DeploymentLike & {
  metadata?: { name?: string; labels?: Record<string, string> };
};

/**
 * sluice's own Deployment for `obj` as the API server has it (made by sluice, controlled by `obj`),
 * or undefined; one GET, skipped when the cache of sluice's Deployments has none of that name.
 */
export async function ownDeployment(
  ctx: ReconcileContext,
  obj: SluiceObject,
): Promise<OwnDeployment | undefined> {
  const namespace = obj.metadata.namespace ?? 'default';
  const name = workloadName(obj as { kind: string; metadata: { name: string } });
  // The cache holds sluice's Deployments (metadata only): none there, nothing to read.
  const cache = ctx.caches.children?.get('Deployment');
  if (cache && !cache.get(`${namespace}/${name}`)) return undefined;
  const d = await ctx.applier.get<OwnDeployment & SluiceObject>({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
  });
  // Another controller's object of that name (Argo Events' relabelled, a user's) is not ours to scale.
  if (!d || foreignReason(d, obj) !== undefined || d.metadata.labels?.controller) return undefined;
  return d;
}

/**
 * `obj`'s `Deployed=False, ForeignController` outcome: scales sluice's own Deployment for it to 0
 * (one merge patch, a Normal `ScaledDown` event) and returns it as it now is, so `Available` and the
 * AVAILABLE column report it. The condition's message says so, in the same words on every
 * reconcile (its Warning event stays one series). Throws what the API server throws.
 */
export async function standDown(
  ctx: ReconcileContext,
  obj: SluiceObject,
  foreign: ConditionInput,
): Promise<{ condition: ConditionInput; requeueAfterMs: number; deployment?: DeploymentLike }> {
  const own = await ownDeployment(ctx, obj);
  if (!own) return { condition: foreign, requeueAfterMs: 60_000 };
  const name = own.metadata?.name ?? '';
  let deployment: DeploymentLike = own;
  if ((own.spec?.replicas ?? 1) !== 0) {
    deployment = await ctx.applier.mergePatch(
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: obj.metadata.namespace } },
      { spec: { replicas: 0 } },
    );
    emitEvent(
      ctx,
      obj,
      'Normal',
      'ScaledDown',
      'Scale',
      `scaled Deployment ${name} to 0: another controller runs this ${obj.kind}`,
    );
    ctx.log.warn(
      { object: `${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name}`, deployment: name },
      "another controller runs this object: scaled sluice's Deployment to 0 until its workloads are gone",
    );
  }
  return {
    condition: {
      ...foreign,
      message: `${foreign.message}; sluice's Deployment ${name} is scaled to 0 until they are gone`,
    },
    requeueAfterMs: 60_000,
    deployment,
  };
}
