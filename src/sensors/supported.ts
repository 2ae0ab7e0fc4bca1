// Trigger types this build can fire. Every upstream type is accepted by the schema; the
// controller reports the others in a status condition (reason UnsupportedTriggerType).
// The Sensor runtime adds entries as triggers land.
export const SUPPORTED_TRIGGER_TYPES: ReadonlySet<string> = new Set<string>([
  'argoWorkflow',
  'awsLambda',
  'custom',
  'email',
  'http',
  'k8s',
  'kafka',
  'log',
  'nats',
  'slack',
]);
