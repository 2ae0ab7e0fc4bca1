// Trigger parameters: values from events copied into trigger templates, resources and payloads.
export { applyParameters, buildPayload } from './apply.ts';
export { eventContext, eventData, ParameterError, type Resolved, resolveSource } from './resolve.ts';
export { DestPathError, setPath } from './set-path.ts';
export { compileTemplate, type GoTemplate, TemplateError } from './template/index.ts';
