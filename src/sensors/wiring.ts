// Binds the Sensor runtime (and `sluice dlq replay`) to the dependency matching and parameter
// code: filters and transforms compiled once per dependency (Lua and jq runtimes loaded first, so
// a bad script is reported at start), and upstream-style parameter resolution.
import type { EventDependency } from '../api/sensor.ts';
import { compileDependencyAsync } from './match/index.ts';
import { applyParameters, buildPayload } from './params/index.ts';
import type { DependencyMatcher, ParameterFunctions } from './runtime.ts';

export const sensorParameters: ParameterFunctions = { applyParameters, buildPayload };

export function sensorDependencyMatcher(dep: EventDependency): Promise<DependencyMatcher> {
  return compileDependencyAsync(dep);
}
