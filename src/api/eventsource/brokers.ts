// Event sources that consume from a message broker or a cloud queue: AMQP, Kafka, MQTT, NATS,
// NSQ, Pulsar, Redis (pub/sub and streams), Emitter, Azure (Event Hubs, Queue Storage, Service
// Bus), Google Pub/Sub, AWS SQS and Alibaba Cloud MNS. Each message becomes one event.
import { z } from 'zod';
import {
  AWSMSKIAMConfig,
  BasicAuth,
  KafkaConsumerGroup,
  NATSAuth,
  SASLConfig,
  SchemaRegistryConfig,
} from '../common.ts';
import { secretRef } from '../k8s.ts';
import { bool, count, obj, str, strMap } from '../kit.ts';
import { celHas, connectionBackoff, crossRules, filter, jsonBody, metadata, tls } from './parts.ts';

const noWait = () => bool('Do not wait for the broker to confirm this step.');

// -------------------------------------------------------------------------------------- AMQP --

export const AMQPExchangeDeclareConfig = obj('Options used when declaring the exchange.', {
  durable: bool('The exchange survives a broker restart.'),
  autoDelete: bool('The broker deletes the exchange once nothing is bound to it.'),
  internal: bool('Clients cannot publish to the exchange directly, only other exchanges can.'),
  noWait: noWait(),
});

export const AMQPQueueDeclareConfig = obj('Options used when declaring the queue messages are read from.', {
  name: str('Name of the queue; the broker picks a unique one when empty.'),
  durable: bool('The queue survives a broker restart.'),
  autoDelete: bool('The broker deletes the queue once it has no consumers.'),
  exclusive: bool('Only the declaring connection may use the queue; it goes away with that connection.'),
  noWait: noWait(),
  arguments: str(
    'Extra queue arguments ("x-arguments") as a JSON object in a string, e.g. \'{"x-max-length": 100}\'.',
  ),
});

export const AMQPQueueBindConfig = obj('Options used when binding the queue to the exchange.', {
  noWait: noWait(),
});

export const AMQPConsumeConfig = obj('Options used when starting to consume from the queue.', {
  consumerTag: str('Name identifying this consumer on the broker; generated when empty.'),
  autoAck: bool(
    'Let the broker consider a message acknowledged as soon as it is sent. Faster, but a message in flight is lost if the source stops.',
  ),
  exclusive: bool('Ask to be the only consumer of the queue.'),
  noLocal: bool('Do not receive messages published on the same connection (RabbitMQ ignores this).'),
  noWait: noWait(),
});

export const AMQPEventSource = crossRules(
  obj('Consumes messages from an AMQP 0-9-1 broker such as RabbitMQ.', {
    url: str('Broker URL, e.g. "amqp://user:pass@rabbitmq:5672/". Use this or urlSecret.'),
    urlSecret: secretRef('Secret key holding the broker URL. Use this or url.'),
    exchangeName: z.string().min(1).describe('Exchange the queue is bound to.'),
    exchangeType: z
      .string()
      .min(1)
      .describe('Type of that exchange: "direct", "fanout", "topic" or "headers".'),
    routingKey: z.string().min(1).describe('Routing key (binding key) the queue is bound with.'),
    connectionBackoff: connectionBackoff(),
    jsonBody: jsonBody(),
    tls: tls(),
    metadata: metadata(),
    exchangeDeclare: AMQPExchangeDeclareConfig.optional().describe('How the exchange is declared.'),
    queueDeclare: AMQPQueueDeclareConfig.optional().describe('How the queue is declared.'),
    queueBind: AMQPQueueBindConfig.optional().describe('How the queue is bound to the exchange.'),
    consume: AMQPConsumeConfig.optional().describe('How consuming is started.'),
    auth: BasicAuth.optional().describe('User name and password, instead of putting them in the URL.'),
    filter: filter(),
  }),
  [
    {
      cel: `${celHas('url')} != ${celHas('urlSecret')}`,
      holds: (v) => (v.url !== undefined) !== (v.urlSecret !== undefined),
      message: 'set exactly one of url and urlSecret',
      field: 'url',
    },
  ],
);
export type AMQPEventSource = z.infer<typeof AMQPEventSource>;

// ------------------------------------------------------------------------------------- Kafka --

export const KafkaEventSource = crossRules(
  obj('Consumes messages from a Kafka topic, as a consumer group or from one partition.', {
    url: z
      .string()
      .min(1)
      .describe('Bootstrap broker addresses, comma-separated, e.g. "kafka-0:9092,kafka-1:9092".'),
    partition: str('Partition to read, when not using a consumer group.'),
    topic: z.string().min(1).describe('Topic to consume.'),
    connectionBackoff: connectionBackoff(),
    tls: tls(),
    jsonBody: jsonBody(),
    metadata: metadata(),
    consumerGroup: KafkaConsumerGroup.optional().describe(
      'Consume as this consumer group (offsets are committed after publishing). Use this or partition.',
    ),
    limitEventsPerSecond: count('Most messages read per second; unlimited when unset or 0.'),
    version: str('Kafka protocol version to speak, e.g. "2.8.0".'),
    sasl: SASLConfig.optional().describe('SASL authentication.'),
    filter: filter(),
    config: str('Extra client settings as YAML text, in the layout of the upstream (Sarama) client config.'),
    schemaRegistry: SchemaRegistryConfig.optional().describe('Schema registry used to decode Avro messages.'),
    awsMskIamAuth: AWSMSKIAMConfig.optional().describe(
      'Authenticate to Amazon MSK with AWS IAM credentials.',
    ),
  }),
  [
    {
      cel: `${celHas('partition')} || ${celHas('consumerGroup')}`,
      holds: (v) => v.partition !== undefined || v.consumerGroup !== undefined,
      message: 'set consumerGroup or partition',
      field: 'consumerGroup',
      reason: 'FieldValueRequired',
    },
  ],
);
export type KafkaEventSource = z.infer<typeof KafkaEventSource>;

// -------------------------------------------------------------------------------------- MQTT --

export const MQTTEventSource = obj('Subscribes to a topic on an MQTT broker.', {
  url: z.string().min(1).describe('Broker URL, e.g. "tcp://mosquitto:1883".'),
  topic: z.string().min(1).describe('Topic filter to subscribe to; MQTT wildcards + and # are allowed.'),
  clientId: z.string().min(1).describe('Client id presented to the broker.'),
  connectionBackoff: connectionBackoff(),
  jsonBody: jsonBody(),
  tls: tls(),
  metadata: metadata(),
  filter: filter(),
  auth: BasicAuth.optional().describe('User name and password.'),
});
export type MQTTEventSource = z.infer<typeof MQTTEventSource>;

// -------------------------------------------------------------------------------------- NATS --

export const NATSEventsSource = obj('Subscribes to a subject on a NATS server (not the EventBus itself).', {
  url: z.string().min(1).describe('Server URL, e.g. "nats://nats:4222".'),
  subject: z.string().min(1).describe('Subject to subscribe to; NATS wildcards * and > are allowed.'),
  connectionBackoff: connectionBackoff(),
  jsonBody: jsonBody(),
  tls: tls(),
  metadata: metadata(),
  auth: NATSAuth.optional().describe('How to authenticate to the server.'),
  filter: filter(),
  queue: z
    .string()
    .min(1)
    .optional()
    .describe('Queue group to join, so replicas share the messages instead of each getting all of them.'),
});
export type NATSEventsSource = z.infer<typeof NATSEventsSource>;

// --------------------------------------------------------------------------------------- NSQ --

export const NSQEventSource = obj('Consumes a topic channel from NSQ.', {
  hostAddress: z.string().min(1).describe('Address of nsqlookupd, host:port.'),
  topic: z.string().min(1).describe('Topic to consume.'),
  channel: z.string().min(1).describe('Channel of the topic to consume from.'),
  connectionBackoff: connectionBackoff(),
  jsonBody: jsonBody(),
  tls: tls(),
  metadata: metadata(),
  filter: filter(),
});
export type NSQEventSource = z.infer<typeof NSQEventSource>;

// ------------------------------------------------------------------------------------ Pulsar --

export const PulsarEventSource = obj('Subscribes to Apache Pulsar topics.', {
  topics: z.array(z.string().min(1)).min(1).describe('Topics to subscribe to.'),
  type: z
    .enum(['exclusive', 'shared'])
    .optional()
    .describe('Subscription type: "exclusive" or "shared". Defaults to exclusive.'),
  url: z.string().min(1).describe('Service URL, e.g. "pulsar://pulsar:6650".'),
  tlsTrustCertsSecret: secretRef('Secret key holding the CA certificates trusted for the broker.'),
  tlsAllowInsecureConnection: bool('Accept a broker certificate that cannot be verified.'),
  tlsValidateHostname: bool('Check that the broker certificate matches its host name.'),
  tls: tls(),
  connectionBackoff: connectionBackoff(),
  jsonBody: jsonBody(),
  metadata: metadata(),
  authTokenSecret: secretRef('Secret key holding a token to authenticate with. Use this or Athenz.'),
  filter: filter(),
  authAthenzParams: strMap('Athenz authentication parameters. Use these or authTokenSecret.'),
  authAthenzSecret: secretRef('Secret key holding the Athenz private key; needed with authAthenzParams.'),
});
export type PulsarEventSource = z.infer<typeof PulsarEventSource>;

// ------------------------------------------------------------------------------------- Redis --

const redisCommon = {
  password: secretRef('Secret key holding the password, when the server needs one.'),
  db: count('Database number. Defaults to 0.'),
  tls: tls(),
  metadata: metadata(),
  filter: filter(),
  username: str('User name, for servers with ACLs (Redis 6 and later).'),
};

export const RedisEventSource = obj('Subscribes to Redis pub/sub channels.', {
  hostAddress: z.string().min(1).describe('Address of the Redis server, host:port.'),
  namespace: str(
    'Field from older upstream versions; ignored (Secrets are read from the EventSource namespace).',
  ),
  channels: z
    .array(z.string().min(1))
    .min(1)
    .describe('Channels to subscribe to; glob patterns such as "news.*" are allowed.'),
  jsonBody: jsonBody(),
  ...redisCommon,
});
export type RedisEventSource = z.infer<typeof RedisEventSource>;

export const RedisStreamEventSource = obj(
  'Reads entries from Redis streams through a consumer group; entries are acknowledged after publishing.',
  {
    hostAddress: z.string().min(1).describe('Address of the Redis server (the primary), host:port.'),
    streams: z.array(z.string().min(1)).min(1).describe('Keys of the streams to read.'),
    maxMsgCountPerRead: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Most entries read from each stream per read call. Defaults to 10.'),
    consumerGroup: str(
      'Consumer group created on every stream and read through. Defaults to "argo-events-cg".',
    ),
    ...redisCommon,
  },
);
export type RedisStreamEventSource = z.infer<typeof RedisStreamEventSource>;

// ----------------------------------------------------------------------------------- Emitter --

export const EmitterEventSource = obj('Subscribes to a channel on an Emitter broker.', {
  broker: z.string().min(1).describe('Broker address, e.g. "tcp://emitter:8080".'),
  channelKey: z.string().min(1).describe('Key that grants access to the channel.'),
  channelName: z.string().min(1).describe('Channel to subscribe to.'),
  username: secretRef('Secret key holding the user name.'),
  password: secretRef('Secret key holding the password.'),
  connectionBackoff: connectionBackoff(),
  jsonBody: jsonBody(),
  tls: tls(),
  metadata: metadata(),
  filter: filter(),
});
export type EmitterEventSource = z.infer<typeof EmitterEventSource>;

// ------------------------------------------------------------------------------------- Azure --

export const AzureEventsHubEventSource = crossRules(
  obj('Receives events from an Azure Event Hub.', {
    fqdn: z
      .string()
      .min(1)
      .describe('Host name of the Event Hubs namespace, e.g. "my-ns.servicebus.windows.net".'),
    sharedAccessKeyName: secretRef(
      'Secret key holding the name of a shared access policy. Without it (and sharedAccessKey) Azure AD credentials are used.',
    ),
    sharedAccessKey: secretRef('Secret key holding the key of that shared access policy.'),
    hubName: z.string().min(1).describe('Name of the event hub.'),
    metadata: metadata(),
    filter: filter(),
  }),
  [
    {
      cel: `${celHas('sharedAccessKeyName')} == ${celHas('sharedAccessKey')}`,
      holds: (v) => (v.sharedAccessKeyName !== undefined) === (v.sharedAccessKey !== undefined),
      message: 'sharedAccessKeyName and sharedAccessKey go together: set both or neither',
      field: 'sharedAccessKey',
    },
  ],
);
export type AzureEventsHubEventSource = z.infer<typeof AzureEventsHubEventSource>;

export const AzureQueueStorageEventSource = crossRules(
  obj('Reads messages from an Azure Storage queue.', {
    storageAccountName: str('Storage account of the queue, for access with Azure AD (managed identity).'),
    connectionString: secretRef(
      'Secret key holding a storage connection string. Use this or storageAccountName.',
    ),
    queueName: z.string().min(1).describe('Name of the queue.'),
    jsonBody: jsonBody(),
    dlq: bool(
      'The queue has a dead-letter policy: messages that cannot be handled are left in place for it instead of being deleted.',
    ),
    metadata: metadata(),
    filter: filter(),
    decodeMessage: bool('Messages are base64-encoded; decode them first (before jsonBody applies).'),
    waitTimeInSeconds: count('Seconds to wait after an empty read before reading again. Defaults to 3.'),
  }),
  [
    {
      cel: `${celHas('connectionString')} || ${celHas('storageAccountName')}`,
      holds: (v) => v.connectionString !== undefined || v.storageAccountName !== undefined,
      message: 'set connectionString or storageAccountName',
      field: 'connectionString',
      reason: 'FieldValueRequired',
    },
  ],
);
export type AzureQueueStorageEventSource = z.infer<typeof AzureQueueStorageEventSource>;

export const AzureServiceBusEventSource = crossRules(
  obj('Receives messages from an Azure Service Bus queue, or from a subscription of a topic.', {
    connectionString: secretRef(
      'Secret key holding a Service Bus connection string. Use this or fullyQualifiedNamespace.',
    ),
    fullyQualifiedNamespace: str(
      'Host name of the namespace, e.g. "my-ns.servicebus.windows.net", for access with Azure AD.',
    ),
    queueName: str('Queue to read. Use this, or topicName with subscriptionName.'),
    topicName: str('Topic whose subscription is read; set together with subscriptionName.'),
    subscriptionName: str('Subscription of topicName to read.'),
    tls: tls(),
    jsonBody: jsonBody(),
    metadata: metadata(),
    filter: filter(),
    deferDelete: bool(
      'Remove a message from Service Bus only after it is published, instead of on receipt. Safer; sluice recommends it.',
    ),
  }),
  [
    {
      cel: `${celHas('connectionString')} || ${celHas('fullyQualifiedNamespace')}`,
      holds: (v) => v.connectionString !== undefined || v.fullyQualifiedNamespace !== undefined,
      message: 'set connectionString or fullyQualifiedNamespace',
      field: 'connectionString',
      reason: 'FieldValueRequired',
    },
    {
      cel: `${celHas('topicName')} == ${celHas('subscriptionName')}`,
      holds: (v) => (v.topicName !== undefined) === (v.subscriptionName !== undefined),
      message: 'topicName and subscriptionName go together: set both or neither',
      field: 'subscriptionName',
    },
    {
      cel: `${celHas('queueName')} != ${celHas('topicName')}`,
      holds: (v) => (v.queueName !== undefined) !== (v.topicName !== undefined),
      message: 'set either queueName, or topicName with subscriptionName',
      field: 'queueName',
    },
  ],
);
export type AzureServiceBusEventSource = z.infer<typeof AzureServiceBusEventSource>;

// ------------------------------------------------------------------------------ Google Pub/Sub --

export const PubSubEventSource = crossRules(
  obj('Receives messages from a Google Cloud Pub/Sub subscription, creating it when asked to.', {
    projectID: str('Project of the subscription; taken from the environment when running on Google Cloud.'),
    topicProjectID: str('Project of the topic, when it differs from projectID; needs topic.'),
    topic: str('Topic to create a subscription on. Use this, subscriptionID, or both.'),
    subscriptionID: str(
      'Existing subscription to read. When unset, one is created with a name derived from this source; changing the source then makes a new one, and messages in between can be missed.',
    ),
    credentialSecret: secretRef(
      'Secret key holding service account credentials (JSON); Workload Identity is used when unset.',
    ),
    deleteSubscriptionOnFinish: bool('Delete the subscription when this source stops.'),
    jsonBody: jsonBody(),
    metadata: metadata(),
    filter: filter(),
  }),
  [
    {
      cel: `${celHas('topic')} || ${celHas('subscriptionID')}`,
      holds: (v) => v.topic !== undefined || v.subscriptionID !== undefined,
      message: 'set topic or subscriptionID',
      field: 'topic',
      reason: 'FieldValueRequired',
    },
    {
      cel: `!${celHas('topicProjectID')} || ${celHas('topic')}`,
      holds: (v) => v.topicProjectID === undefined || v.topic !== undefined,
      message: 'topicProjectID needs topic',
      field: 'topicProjectID',
    },
  ],
);
export type PubSubEventSource = z.infer<typeof PubSubEventSource>;

// ------------------------------------------------------------------------------------ AWS SQS --

export const SQSEventSource = obj(
  'Receives messages from an AWS SQS queue; each is deleted after publishing.',
  {
    accessKey: secretRef(
      'Secret key holding the AWS access key id; ambient AWS credentials are used when unset.',
    ),
    secretKey: secretRef('Secret key holding the AWS secret access key.'),
    sessionToken: secretRef('Secret key holding an AWS session token, for temporary credentials.'),
    region: z.string().min(1).describe('AWS region of the queue, e.g. "us-east-1".'),
    queue: z.string().min(1).describe('Name of the queue.'),
    queueAccountId: str('AWS account that owns the queue, when it is not the caller account.'),
    waitTimeSeconds: z
      .number()
      .int()
      .min(0)
      .max(20)
      .optional()
      .describe('Long-poll time in seconds (0 to 20) a receive call waits for a message.'),
    roleARN: str('IAM role to assume for the queue calls.'),
    jsonBody: jsonBody(),
    metadata: metadata(),
    dlq: bool(
      'The queue has a redrive (dead-letter) policy: messages that cannot be handled are left for it instead of being deleted.',
    ),
    filter: filter(),
    endpoint: str('Alternative SQS API endpoint (e.g. a local emulator) instead of the AWS one.'),
    namespace: str(
      'Field from older upstream versions; ignored (Secrets are read from the EventSource namespace).',
    ),
  },
);
export type SQSEventSource = z.infer<typeof SQSEventSource>;

// ------------------------------------------------------------------------ Alibaba Cloud MNS --

export const MNSEventSource = obj('Receives messages from an Alibaba Cloud MNS queue.', {
  accessKey: secretRef('Secret key holding the Alibaba Cloud access key id.'),
  secretKey: secretRef('Secret key holding the Alibaba Cloud access key secret.'),
  queue: z.string().min(1).describe('Name of the queue.'),
  jsonBody: jsonBody(),
  endpoint: str('MNS endpoint of the account and region.'),
  filter: filter(),
});
export type MNSEventSource = z.infer<typeof MNSEventSource>;
