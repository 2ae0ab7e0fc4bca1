// Which trigger type a template holds (exactly one, checked by the schema), and which types this
// build can fire.
import { TRIGGER_TYPES, type TriggerTemplate } from '../api/sensor.ts';

export function triggerType(template: TriggerTemplate): string {
  const t = template as unknown as Record<string, unknown>;
  if (t.openwhisk && !t.openWhisk) return 'openWhisk';
  const found = TRIGGER_TYPES.find((k) => t[k] !== undefined && t[k] !== null);
  if (!found) throw new Error(`trigger ${template.name}: template names no trigger type`);
  return found;
}
