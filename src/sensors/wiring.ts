// Binds the Sensor runtime to its matching and parameter code. This first version resolves
// parameters by dataKey/contextKey/value only and refuses dependency filters and transforms
// loudly; the full implementations replace it.
import type { EventDependency, TriggerParameter } from '../api/sensor.ts';
import type { DependencyMatcher, ParameterFunctions } from './runtime.ts';
import type { EventsByDependency } from './triggers/trigger.ts';

function get(o: unknown, path: string): unknown {
  let cur = o;
  for (const p of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}
function set(o: Record<string, unknown>, path: string, v: unknown) {
  const parts = path.split('.');
  let cur = o;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts.at(-1)!] = v;
}
function apply<T>(target: T, params: readonly TriggerParameter[] | undefined, events: EventsByDependency): T {
  const copy = structuredClone(target) as Record<string, unknown>;
  for (const p of params ?? []) {
    const ev = p.src ? events[p.src.dependencyName] : undefined;
    let v: unknown = p.src?.value;
    if (ev && p.src?.dataKey) v = get(ev.data, p.src.dataKey) ?? v;
    if (ev && p.src?.contextKey) v = get(ev, p.src.contextKey) ?? v;
    set(copy, p.dest, v);
  }
  return copy as T;
}
export const sensorParameters: ParameterFunctions = {
  applyParameters: apply,
  buildPayload: (params, events) => apply({}, params, events),
};
export function sensorDependencyMatcher(dep: EventDependency): DependencyMatcher {
  if (dep.filters || dep.transform) {
    throw new Error(`dependency ${dep.name}: filters and transform are not supported by this build yet`);
  }
  return { matches: () => true, transform: (e) => e };
}
