// `sluice lint` warnings for source and trigger types the schema accepts (every upstream type) but
// this build does not run: the same sets the controller uses for its SourcesSupported /
// TriggersSupported conditions, so a type that gains an adapter or runner is known to lint too.
import { SOURCE_TYPES } from '../api/eventsource.ts';
import { TRIGGER_TYPES } from '../api/sensor.ts';
import type { LoadedObject } from '../api/validate.ts';
import { SUPPORTED_SOURCE_TYPES } from '../eventsources/supported.ts';
import { SUPPORTED_TRIGGER_TYPES } from '../sensors/supported.ts';

const isSet = (v: unknown): boolean => typeof v === 'object' && v !== null && Object.keys(v).length > 0;

/** One warning per EventSource / Sensor that uses a type this build accepts but does not run. */
export function supportWarnings(o: LoadedObject): string[] {
  const spec = (o.value as { spec?: Record<string, unknown> } | undefined)?.spec;
  if (!spec) return [];
  let used: string[] = [];
  let supported: ReadonlySet<string> = SUPPORTED_SOURCE_TYPES;
  let what = 'source';
  if (o.kind === 'EventSource') used = SOURCE_TYPES.filter((t) => isSet(spec[t]));
  else if (o.kind === 'Sensor') {
    const triggers = (spec.triggers ?? []) as Array<{ template?: Record<string, unknown> }>;
    used = triggers.flatMap((t) => TRIGGER_TYPES.filter((k) => t.template?.[k] !== undefined));
    supported = SUPPORTED_TRIGGER_TYPES;
    what = 'trigger';
  }
  const missing = [...new Set(used.filter((t) => !supported.has(t)))].sort();
  if (!missing.length) return [];
  return [
    `${what} type ${missing.join(', ')}: accepted but not run by this sluice build (the controller reports ${what === 'source' ? 'SourcesSupported' : 'TriggersSupported'}=False)`,
  ];
}
