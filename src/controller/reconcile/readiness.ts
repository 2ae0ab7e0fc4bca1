// Status truth for EventSources and Sensors: besides their own conditions, Ready needs their bus to
// be Ready and their Deployment to have rolled out the current spec with its pods available. Pure
// functions of the objects as read (the bus from the cache, the Deployment as the apply returned it).
import type { ConditionInput } from '../conditions.ts';
import type { SluiceObject } from './context.ts';

/** The parts of an apps/v1 Deployment that say whether it is available. */
export interface DeploymentLike {
  metadata?: { name?: string; generation?: number };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    availableReplicas?: number;
    updatedReplicas?: number;
  };
}

/**
 * `EventBusReady`: True when the bus's own Ready condition is True (and it has observed its current
 * spec); False with the bus's reason in the message otherwise (e.g. `EventBus "default" is not
 * ready (BusUnreachable): ...`). `bus` undefined: the bus does not exist. The same condition, as
 * `Deployed`, says why nothing is deployed while the bus has no connection details: one cause, one
 * text, so its Warning event is one series.
 */
export function busReadiness(
  bus: SluiceObject | undefined,
  busName: string,
  namespace: string,
): ConditionInput {
  if (!bus)
    return {
      type: 'EventBusReady',
      status: 'False',
      reason: 'EventBusNotFound',
      message: `EventBus "${busName}" does not exist in namespace ${namespace}; create it (or set spec.eventBusName)`,
    };
  const ready = bus.status?.conditions?.find((c) => c.type === 'Ready');
  const observed = bus.status?.observedGeneration;
  if (
    typeof observed === 'number' &&
    bus.metadata.generation !== undefined &&
    observed < bus.metadata.generation
  )
    return {
      type: 'EventBusReady',
      status: 'Unknown',
      reason: 'EventBusProgressing',
      message: `EventBus "${busName}" has not acted on its current spec yet`,
    };
  if (ready?.status === 'True')
    return { type: 'EventBusReady', status: 'True', reason: 'EventBusReady', message: '' };
  if (!ready)
    return {
      type: 'EventBusReady',
      status: 'Unknown',
      reason: 'EventBusNotReady',
      message: `EventBus "${busName}" has not reported its state yet`,
    };
  return {
    type: 'EventBusReady',
    status: ready.status === 'False' ? 'False' : 'Unknown',
    reason: 'EventBusNotReady',
    message: `EventBus "${busName}" is not ready${ready.reason ? ` (${ready.reason})` : ''}${ready.message ? `: ${ready.message}` : ''}`,
  };
}

/**
 * `Deployed` while the bus is not Ready: the same reason and text as `EventBusReady` (and the same
 * status: Unknown while the bus has not reported, so no Warning for that), or undefined when it is Ready.
 */
export function busBlocks(
  bus: SluiceObject | undefined,
  busName: string,
  namespace: string,
): ConditionInput | undefined {
  const why = busReadiness(bus, busName, namespace);
  return why.status === 'True' ? undefined : { ...why, type: 'Deployed' };
}

/**
 * The AVAILABLE column (`status.available`): available/wanted pods of the Deployment, e.g. `1/1`,
 * `0/1`, `1/0` (scaled to 0, a pod still running); `-` without a Deployment. The explanation is in
 * the `Available` condition.
 */
export function availableCell(d: DeploymentLike | undefined): string {
  return d ? `${d.status?.availableReplicas ?? 0}/${d.spec?.replicas ?? 1}` : '-';
}

/**
 * `Available`: True when the Deployment has observed its current generation (the new spec is rolled
 * out, upstream's `kubectl rollout status` rule), has at least as many available, updated pods as
 * it wants and no more pods than that (old ones pending termination, or pods of a Deployment being
 * scaled to 0, still run); a Deployment scaled to 0 is available with none.
 */
export function workloadAvailability(d: DeploymentLike | undefined): ConditionInput {
  const name = d?.metadata?.name ?? '';
  if (!d)
    return {
      type: 'Available',
      status: 'Unknown',
      reason: 'DeploymentPending',
      message: 'no Deployment yet',
    };
  const want = d.spec?.replicas ?? 1;
  const s = d.status ?? {};
  const generation = d.metadata?.generation;
  if (generation !== undefined && (s.observedGeneration ?? 0) < generation)
    return {
      type: 'Available',
      status: 'False',
      reason: 'RolloutPending',
      message: `Deployment ${name}: the current spec is not rolled out yet (observed generation ${s.observedGeneration ?? 0} of ${generation})`,
    };
  const available = s.availableReplicas ?? 0;
  if (available < want || (s.updatedReplicas ?? 0) < want)
    return {
      type: 'Available',
      status: 'False',
      reason: available < want ? 'PodsNotAvailable' : 'RolloutInProgress',
      message: `Deployment ${name}: ${available}/${want} pods available, ${s.updatedReplicas ?? 0}/${want} updated`,
    };
  if ((s.replicas ?? 0) > want)
    return {
      type: 'Available',
      status: 'False',
      reason: 'RolloutInProgress',
      message: `Deployment ${name}: ${s.replicas} pod(s) still running, ${want} wanted`,
    };
  return {
    type: 'Available',
    status: 'True',
    reason: 'Available',
    message: `${available}/${want} pods available`,
  };
}
