// gjson paths (github.com/tidwall/gjson syntax) over parsed JSON: the one path implementation
// for Sensor data filters, expression fields, parameter keys and ordering keys, and for checking
// paths in `sluice lint` and the controller. No dependencies.
export { type CompiledPath, compileGjson, evaluate } from './eval.ts';
export { MODIFIERS, type Path, PathError, parsePath } from './syntax.ts';
export { isContainer, isObject, type Lookup, MISSING } from './value.ts';
