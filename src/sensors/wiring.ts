// Binds the Sensor runtime (and `sluice dlq replay`) to the dependency matching and parameter
// code: filters and transforms compiled once per dependency (Lua and jq runtimes loaded first, so
// a bad script is reported at start), and upstream-style parameter resolution.
import type { EventDependency } from '../api/sensor.ts';
import { compileDependencyAsync, compileDependencySandboxed } from './match/index.ts';
import type { DependencyMatcher, ParameterFunctions } from './options.ts';
import { applyParameters, buildPayload } from './params/index.ts';
import type { Sandbox } from './sandbox/pool.ts';

export const sensorParameters: ParameterFunctions = { applyParameters, buildPayload };

/** Compiles `dep`; with a sandbox its jq/Lua programs run there (checked there first). */
export function sensorDependencyMatcher(dep: EventDependency, sandbox?: Sandbox): Promise<DependencyMatcher> {
  return sandbox ? compileDependencySandboxed(dep, sandbox) : compileDependencyAsync(dep);
}
