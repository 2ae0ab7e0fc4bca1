// The triggers of a Sensor spec, prepared for the runtime: each with its parsed conditions (all
// dependencies ANDed when it names none), the dependencies those conditions use, the fingerprint
// its partial matches are recorded under, its dlqTrigger and its conditionsReset schedule.
import { type ConditionNode, conditionNames, parseConditions } from '../api/conditions.ts';
import type { SensorSpec } from '../api/sensor.ts';
import type { SensorTrigger } from './fire.ts';
import { specFingerprint } from './join.ts';
import type { triggerPreparer } from './prepare.ts';
import { resetSchedule } from './resets.ts';

/** The triggers of `spec`, prepared, with their conditions, fingerprint and reset schedule. */
export function sensorTriggers(
  spec: SensorSpec,
  prepare: ReturnType<typeof triggerPreparer>['prepare'],
  clearEvents: (trigger: string) => Promise<void>,
): SensorTrigger[] {
  const depNames = (spec.dependencies ?? []).map((d) => d.name);
  return (spec.triggers ?? []).map((t, i) => {
    const base = prepare(t, `trigger-${i}`);
    const conditions = t.template?.conditions
      ? parseConditions(t.template.conditions)
      : (depNames.reduceRight<ConditionNode | undefined>(
          (acc, n) =>
            acc ? { kind: 'and', left: { kind: 'name', name: n }, right: acc } : { kind: 'name', name: n },
          undefined,
        ) ?? { kind: 'name', name: '' });
    const dependencies = conditionNames(conditions);
    const resets = resetSchedule(t, () => clearEvents(base.name));
    return {
      ...base,
      ...(t.dlqTrigger ? { dlq: prepare(t.dlqTrigger, `${base.name}-dlq`) } : {}),
      conditions,
      dependencies,
      fingerprint: specFingerprint(t, spec.dependencies ?? [], dependencies),
      ...(resets ? { resets } : {}),
    };
  });
}
