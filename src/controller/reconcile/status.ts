// Writes status only when it changed, so a reconcile that finds nothing new makes no API call
// (and cannot feed a hot loop through its own watch events).

import { type ConditionInput, mergeConditions, sameConditions } from '../conditions.ts';
import { isConflict } from '../kube-http.ts';
import { stableJson } from '../resources/common.ts';
import type { ReconcileContext, SluiceObject } from './context.ts';

export async function writeStatus(
  ctx: ReconcileContext,
  obj: SluiceObject,
  conditions: ConditionInput[],
  extra: Record<string, unknown> = {},
): Promise<void> {
  const current = obj.status?.conditions;
  const merged = mergeConditions(current, conditions, obj.metadata.generation, ctx.now());
  const extraSame = Object.entries(extra).every(([k, v]) => stableJson(obj.status?.[k]) === stableJson(v));
  const generationSame = obj.status?.observedGeneration === obj.metadata.generation;
  if (sameConditions(current, merged) && extraSame && generationSame) return;
  try {
    await ctx.applier.patchStatus(obj, {
      ...extra,
      conditions: merged,
      observedGeneration: obj.metadata.generation,
    });
  } catch (err) {
    // The object changed under us; its watch event brings us back with the new version.
    if (!isConflict(err)) throw err;
  }
}
