// Which source types this build runs, and where their adapters live. Loaded on demand so a
// process only imports the client libraries of the types its EventSource uses. Keep the keys
// equal to SUPPORTED_SOURCE_TYPES (supported.ts; a unit test checks it).
import type { SourceAdapter } from './adapter.ts';

type Loader = () => Promise<SourceAdapter<never>>;

export const ADAPTERS: Readonly<Record<string, Loader>> = {
  amqp: async () => (await import('./brokers/amqp.ts')).adapter,
  azureQueueStorage: async () => (await import('./azure/queue-storage.ts')).adapter,
  bitbucket: async () => (await import('./webhook/bitbucket.ts')).bitbucket,
  bitbucketserver: async () => (await import('./webhook/bitbucketserver.ts')).bitbucketserver,
  calendar: async () => (await import('./calendar/adapter.ts')).adapter,
  file: async () => (await import('./file/adapter.ts')).adapter,
  generic: async () => (await import('./generic/adapter.ts')).adapter,
  github: async () => (await import('./webhook/github.ts')).github,
  gitlab: async () => (await import('./webhook/gitlab.ts')).gitlab,
  kafka: async () => (await import('./kafka/adapter.ts')).adapter,
  mqtt: async () => (await import('./brokers/mqtt.ts')).adapter,
  nats: async () => (await import('./brokers/nats.ts')).adapter,
  nsq: async () => (await import('./nsq/adapter.ts')).adapter,
  redis: async () => (await import('./brokers/redis.ts')).redis,
  redisStream: async () => (await import('./brokers/redis.ts')).redisStream,
  resource: async () => (await import('./resource/adapter.ts')).adapter,
  sftp: async () => (await import('./sftp/adapter.ts')).adapter,
  slack: async () => (await import('./webhook/slack.ts')).slack,
  sns: async () => (await import('./aws/sns.ts')).adapter,
  sqs: async () => (await import('./aws/sqs.ts')).adapter,
  stripe: async () => (await import('./webhook/stripe.ts')).stripe,
  webhook: async () => (await import('./webhook/adapter.ts')).adapter,
};

export async function loadAdapter(type: string): Promise<SourceAdapter<unknown> | undefined> {
  const load = ADAPTERS[type];
  return load ? ((await load()) as SourceAdapter<unknown>) : undefined;
}
