// EventSource (argoproj.io/v1alpha1): turns outside happenings into events on an EventBus. The
// spec holds one map per source type, from event name to that source's settings; the event name
// is what Sensors refer to, so it must be unique across all types of one EventSource.
import { z } from 'zod';
import { conditionsField, Service, Template, workloadStatusFields } from '../common.ts';
import { type CelRule, celRules, count, namedMap, obj, str, strMap } from '../kit.ts';
import {
  AMQPEventSource,
  AzureEventsHubEventSource,
  AzureQueueStorageEventSource,
  AzureServiceBusEventSource,
  EmitterEventSource,
  KafkaEventSource,
  MNSEventSource,
  MQTTEventSource,
  NATSEventsSource,
  NSQEventSource,
  PubSubEventSource,
  PulsarEventSource,
  RedisEventSource,
  RedisStreamEventSource,
  SQSEventSource,
} from './brokers.ts';
import {
  CalendarEventSource,
  FileEventSource,
  GenericEventSource,
  HDFSEventSource,
  MinioEventSource,
  ResourceEventSource,
  SFTPEventSource,
} from './platform.ts';
import {
  BitbucketEventSource,
  BitbucketServerEventSource,
  GerritEventSource,
  GithubEventSource,
  GitlabEventSource,
  SlackEventSource,
  SNSEventSource,
  StorageGridEventSource,
  StripeEventSource,
  WebhookEventSource,
} from './webhooks.ts';

export * from './brokers.ts';
export { withEventSourceDefaults } from './defaults.ts';
export { EventSourceFilter, WatchPathConfig } from './parts.ts';
export * from './platform.ts';
export * from './webhooks.ts';

/** One map per source type, in upstream's field order. */
const SOURCES = {
  amqp: namedMap('AMQP (e.g. RabbitMQ) queues, by event name.', AMQPEventSource),
  azureEventsHub: namedMap('Azure Event Hubs, by event name.', AzureEventsHubEventSource),
  azureQueueStorage: namedMap('Azure Storage queues, by event name.', AzureQueueStorageEventSource),
  azureServiceBus: namedMap(
    'Azure Service Bus queues and topic subscriptions, by event name.',
    AzureServiceBusEventSource,
  ),
  bitbucket: namedMap('Bitbucket Cloud webhooks, by event name.', BitbucketEventSource),
  bitbucketserver: namedMap('Bitbucket Server webhooks, by event name.', BitbucketServerEventSource),
  calendar: namedMap('Schedules and intervals, by event name.', CalendarEventSource),
  emitter: namedMap('Emitter channels, by event name.', EmitterEventSource),
  file: namedMap('Watched local directories, by event name.', FileEventSource),
  generic: namedMap('Custom gRPC event source servers, by event name.', GenericEventSource),
  gerrit: namedMap('Gerrit webhooks, by event name.', GerritEventSource),
  github: namedMap('GitHub webhooks, by event name.', GithubEventSource),
  gitlab: namedMap('GitLab webhooks, by event name.', GitlabEventSource),
  hdfs: namedMap('Watched HDFS directories, by event name.', HDFSEventSource),
  kafka: namedMap('Kafka topics, by event name.', KafkaEventSource),
  minio: namedMap('MinIO bucket notifications, by event name.', MinioEventSource),
  mns: namedMap('Alibaba Cloud MNS queues, by event name.', MNSEventSource),
  mqtt: namedMap('MQTT topics, by event name.', MQTTEventSource),
  nats: namedMap('NATS subjects (on a server other than the EventBus), by event name.', NATSEventsSource),
  nsq: namedMap('NSQ topics, by event name.', NSQEventSource),
  pubSub: namedMap('Google Cloud Pub/Sub subscriptions, by event name.', PubSubEventSource),
  pulsar: namedMap('Apache Pulsar topics, by event name.', PulsarEventSource),
  redis: namedMap('Redis pub/sub channels, by event name.', RedisEventSource),
  redisStream: namedMap('Redis streams, by event name.', RedisStreamEventSource),
  resource: namedMap('Watched Kubernetes object kinds, by event name.', ResourceEventSource),
  sftp: namedMap('Watched SFTP directories, by event name.', SFTPEventSource),
  slack: namedMap('Slack apps, by event name.', SlackEventSource),
  sns: namedMap('AWS SNS topics, by event name.', SNSEventSource),
  sqs: namedMap('AWS SQS queues, by event name.', SQSEventSource),
  storageGrid: namedMap('NetApp StorageGRID bucket notifications, by event name.', StorageGridEventSource),
  stripe: namedMap('Stripe webhooks, by event name.', StripeEventSource),
  webhook: namedMap('Plain HTTP endpoints, by event name.', WebhookEventSource),
};

export type SourceType = keyof typeof SOURCES;
/** Every source type key of an EventSource spec. */
export const SOURCE_TYPES: readonly SourceType[] = Object.freeze(Object.keys(SOURCES) as SourceType[]);

/**
 * Source types that receive their events as HTTP requests on the EventSource's own servers (the
 * webhook family, webhooks.ts): their pods share unconfirmed request ids through a KV bucket.
 */
export const WEBHOOK_SOURCE_TYPES: ReadonlySet<SourceType> = new Set<SourceType>([
  'bitbucket',
  'bitbucketserver',
  'gerrit',
  'github',
  'gitlab',
  'slack',
  'sns',
  'storageGrid',
  'stripe',
  'webhook',
]);

const NO_SOURCE = 'an EventSource needs at least one event source (e.g. one entry under webhook or calendar)';

/**
 * CEL for the API server. "At least one source" is one rule. Uniqueness is one rule per type: no
 * event name of that type appears under any later type. Map lookups keep the cost linear in the
 * (bounded) map sizes, well inside the API server's CEL budget.
 */
const specCel: CelRule[] = [
  {
    rule: SOURCE_TYPES.map((t) => `(has(self.${t}) && self.${t}.size() > 0)`).join(' || '),
    message: NO_SOURCE,
    reason: 'FieldValueRequired',
  },
  ...SOURCE_TYPES.slice(0, -1).map(
    (t, i): CelRule => ({
      rule: `!has(self.${t}) || !self.${t}.exists(k, ${SOURCE_TYPES.slice(i + 1)
        .map((u) => `(has(self.${u}) && k in self.${u})`)
        .join(' || ')})`,
      message: `event names must be unique in an EventSource: a name under ${t} is used again under another source type`,
      fieldPath: `.${t}`,
    }),
  ),
];

export const EventSourceSpec = celRules(
  obj('The event sources, and how the pods that run them are deployed.', {
    eventBusName: str('Name of the EventBus events are published to. Defaults to "default".'),
    template: Template.optional().describe('Pod settings for the Deployment that runs the event sources.'),
    service: Service.optional().describe(
      'Service in front of the pods, for webhook-style sources; its ports should match the webhook ports.',
    ),
    replicas: count(
      'Number of pods. Webhook-style sources share requests across them; the others run on one elected pod at a time. Defaults to 1.',
    ),
    type: str(
      'Field from older upstream versions; ignored, as the map a source is under already names its type.',
    ),
    replica: count(
      'Field from older upstream versions (the number of pods), accepted and not used: set replicas.',
    ),
    ...SOURCES,
  }).superRefine((spec, ctx) => {
    const firstType = new Map<string, SourceType>();
    for (const type of SOURCE_TYPES) {
      for (const name of Object.keys(spec[type] ?? {})) {
        const earlier = firstType.get(name);
        if (earlier === undefined) firstType.set(name, type);
        else {
          ctx.addIssue({
            code: 'custom',
            path: [type, name],
            message: `event name "${name}" is already used under ${earlier}; event names must be unique in an EventSource`,
          });
        }
      }
    }
    if (firstType.size === 0) ctx.addIssue({ code: 'custom', path: [], message: NO_SOURCE });
  }),
  specCel,
);
export type EventSourceSpec = z.infer<typeof EventSourceSpec>;

export const EventSourceStatus = z
  .looseObject({
    conditions: conditionsField(),
    ...workloadStatusFields(),
    observedGeneration: count('The spec generation (metadata.generation) the status was computed from.'),
  })
  .describe('What the controller last observed about this EventSource.');
export type EventSourceStatus = z.infer<typeof EventSourceStatus>;

export const EventSourceMetadata = z
  .looseObject({
    name: z.string().optional().describe('Name of the EventSource; Sensors refer to it as eventSourceName.'),
    namespace: z.string().optional().describe('Namespace of the EventSource.'),
    labels: strMap('Labels of the object.'),
    annotations: strMap('Annotations of the object.'),
  })
  .describe('Standard Kubernetes object metadata.');

export const EventSource = obj('An EventSource manifest.', {
  apiVersion: z.literal('argoproj.io/v1alpha1').describe('Always argoproj.io/v1alpha1.'),
  kind: z.literal('EventSource').describe('Always EventSource.'),
  metadata: EventSourceMetadata,
  spec: EventSourceSpec,
  status: EventSourceStatus.optional(),
});
export type EventSource = z.infer<typeof EventSource>;
