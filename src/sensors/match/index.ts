// Dependency matching for the Sensor runtime: filters and transforms compiled once per dependency.
export {
  type CompiledDependency,
  compileDependency,
  compileDependencyAsync,
  compileDependencySandboxed,
  loadMatchRuntimes,
  type ProgramHost,
} from './dependency.ts';
export { compilePath, lookup, MISSING, textOf } from './path.ts';
export {
  DependencyConfigError,
  FilterEvaluationError,
  type MatchResult,
  TransformError,
} from './result.ts';
