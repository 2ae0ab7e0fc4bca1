// Source types whose adapters this build runs. Every upstream type is accepted by the schema;
// the controller reports the others in a status condition (reason UnsupportedSourceType).
// The EventSource runtime adds entries as adapters land.
export const SUPPORTED_SOURCE_TYPES: ReadonlySet<string> = new Set<string>([
  'amqp',
  'azureQueueStorage',
  'bitbucket',
  'bitbucketserver',
  'calendar',
  'file',
  'generic',
  'github',
  'gitlab',
  'kafka',
  'mqtt',
  'nats',
  'nsq',
  'redis',
  'redisStream',
  'resource',
  'sftp',
  'slack',
  'sns',
  'sqs',
  'stripe',
  'webhook',
]);
