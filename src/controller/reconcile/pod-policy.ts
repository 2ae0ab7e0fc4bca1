// The pod policy in a reconcile: an EventBus, EventSource or Sensor whose pods would carry what
// the cluster admin has not allowed (src/api/pod-policy.ts) gets `Deployed=False` with reason
// PodSettingRefused naming each field, and nothing is applied: a Deployment or StatefulSet made
// from an earlier spec stays as it was.
import { podSettingRefusals, refusalsText } from '../../api/pod-policy.ts';
import type { ConditionInput } from '../conditions.ts';
import type { ReconcileContext, SluiceObject } from './context.ts';

export const POD_SETTING_REFUSED = 'PodSettingRefused';

/** The Deployed condition that stops `obj` from being deployed, or undefined when it may be. */
export function podPolicyBlock(ctx: ReconcileContext, obj: SluiceObject): ConditionInput | undefined {
  const refusals = podSettingRefusals(obj, ctx.options.podPolicy);
  if (!refusals.length) return undefined;
  return {
    type: 'Deployed',
    status: 'False',
    reason: POD_SETTING_REFUSED,
    message: `not deployed: ${refusalsText(refusals)}`,
  };
}
