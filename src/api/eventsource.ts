// EventSource: turns outside happenings into events on the bus. One map per source type, from
// event name to that source's settings. Every upstream source type is accepted; which ones this
// build runs is in src/eventsources/supported.ts and reported in status.
import { z } from 'zod';
import {
  AWSMSKIAMConfig,
  Backoff,
  BasicAuth,
  conditionsField,
  EventPersistence,
  KafkaConsumerGroup,
  NATSAuth,
  SASLConfig,
  SchemaRegistryConfig,
  Selector,
  Service,
  Template,
  TLSConfig,
  WebhookContext,
} from './common.ts';
import { ConfigMapKeySelector, secretRef } from './k8s.ts';
import { bool, count, duration, int, namedMap, obj, str, strList, strMap } from './kit.ts';
import { GithubAppCreds, S3Artifact } from './sensor.ts';

const filter = () =>
  obj('Drops events for which the expression is false.', {
    expression: str('Boolean expression over the event, e.g. `body.action == "opened"`.'),
  })
    .optional()
    .describe('Per-event filter applied before publishing.');
const metadata = () => strMap('Extra key/values attached to every event from this source.');
const jsonBody = () => bool('Parse the message body as JSON (otherwise it is passed as bytes/text).');
const backoff = () => Backoff.optional().describe('Reconnect backoff when the connection fails.');
const tls = () => TLSConfig.optional().describe('TLS settings.');
const webhook = (what: string) => WebhookContext.optional().describe(`HTTP endpoint that receives ${what}.`);

const CRON_OR_DESCRIPTOR =
  /^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every\s+([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+|(\S+\s+){4,5}\S+)$/;

export const WebhookEventSource = obj('A plain HTTP endpoint: each accepted request becomes an event.', {
  ...WebhookContext.shape,
  filter: filter(),
});

export const CalendarEventSource = obj('Emits events on a schedule.', {
  schedule: z
    .string()
    .regex(CRON_OR_DESCRIPTOR, {
      message: 'must be a cron expression (5 or 6 fields) or a descriptor such as "@hourly" or "@every 10s"',
    })
    .optional()
    .describe(
      'Cron schedule (5 fields, or 6 with seconds first) or a descriptor such as "@hourly" or "@every 1m".',
    ),
  interval: duration('Fixed interval between events, e.g. "10s". Use instead of schedule.'),
  exclusionDates: strList('Dates (RFC 3339) on which no event is emitted.'),
  timezone: str('IANA time zone of the schedule, e.g. "America/New_York". Defaults to UTC.'),
  metadata: metadata(),
  persistence: EventPersistence.optional().describe(
    'Remember the last fire across restarts (catch-up, no repeats).',
  ),
  filter: filter(),
}).superRefine((v, ctx) => {
  if (!v.schedule && !v.interval) ctx.addIssue({ code: 'custom', message: 'set schedule or interval' });
});

export const ResourceEventSource = obj('Watches Kubernetes objects and emits their changes.', {
  namespace: str('Namespace to watch; all namespaces when empty.'),
  filter: obj('Which objects count.', {
    prefix: str('Object names must start with this.'),
    labels: z.array(Selector).optional().describe('Label tests.'),
    fields: z.array(Selector).optional().describe('Field tests, e.g. metadata.name=x.'),
    createdBy: str('Only objects created after this time (RFC 3339).'),
    afterStart: bool('Only objects created after the source started.'),
  })
    .optional()
    .describe('Which objects count.'),
  group: z.string().describe('API group of the resource ("" for the core group).'),
  version: z.string().min(1).describe('API version, e.g. "v1".'),
  resource: z.string().min(1).describe('Plural resource name, e.g. "pods" or "deployments".'),
  eventTypes: z
    .array(z.enum(['ADD', 'UPDATE', 'DELETE']))
    .min(1)
    .describe('Changes to emit: ADD, UPDATE and/or DELETE.'),
  metadata: metadata(),
});

export const WatchPathConfig = obj('Which files to watch.', {
  directory: z.string().min(1).describe('Directory to watch.'),
  path: str('Exact file name inside the directory.'),
  pathRegexp: str('Regular expression file names must match.'),
});

export const FileEventSource = obj('Watches files in a directory.', {
  eventType: z.string().min(1).describe('Operation to emit: CREATE, WRITE, REMOVE, RENAME or CHMOD.'),
  watchPathConfig: WatchPathConfig.describe('Which files to watch.'),
  polling: bool('Poll instead of using filesystem notifications.'),
  metadata: metadata(),
  filter: filter(),
});

export const SFTPEventSource = obj('Watches files on an SFTP server.', {
  eventType: z.string().min(1).describe('Operation to emit: CREATE or REMOVE.'),
  watchPathConfig: WatchPathConfig.describe('Which files to watch.'),
  username: secretRef('Secret key holding the user name.'),
  password: secretRef('Secret key holding the password.'),
  sshKeySecret: secretRef('Secret key holding an SSH private key.'),
  address: secretRef('Secret key holding host:port of the server.'),
  metadata: metadata(),
  filter: filter(),
  pollIntervalDuration: duration('How often to poll. Defaults to 10s.'),
});

const repoRef = obj('A repository by owner and names.', {
  owner: str('Owner (user or organisation).'),
  names: strList('Repository names.'),
});

export const GithubEventSource = obj('Receives GitHub webhooks (signature checked with webhookSecret).', {
  id: int('Id of an existing hook (registration only).'),
  webhook: webhook('GitHub deliveries'),
  owner: str('Repository owner (older single-repo form).'),
  repository: str('Repository name (older single-repo form).'),
  events: z
    .array(z.string())
    .describe('GitHub event names to register for, e.g. ["push", "pull_request"] or ["*"].'),
  apiToken: secretRef('Secret key holding a token used to register the hook.'),
  webhookSecret: secretRef('Secret key holding the secret GitHub signs deliveries with.'),
  insecure: bool('Register the hook with TLS checks disabled.'),
  active: bool('Register the hook as active.'),
  contentType: str('Delivery content type: "json" (default) or "form".'),
  githubBaseURL: str('GitHub Enterprise API base URL.'),
  githubUploadURL: str('GitHub Enterprise upload URL.'),
  deleteHookOnFinish: bool('Remove the hook when the source stops.'),
  metadata: metadata(),
  repositories: z.array(repoRef).optional().describe('Repositories to register the hook on.'),
  organizations: strList('Organisations to register the hook on.'),
  githubApp: GithubAppCreds.optional().describe('Register as a GitHub App instead of with a token.'),
  filter: filter(),
});

export const GitlabEventSource = obj('Receives GitLab webhooks (token checked with secretToken).', {
  webhook: webhook('GitLab deliveries'),
  projectID: str('Project id (older single-project form).'),
  events: z.array(z.string()).describe('GitLab hook events, e.g. ["PushEvents"].'),
  accessToken: secretRef('Secret key holding a token used to register the hook.'),
  enableSSLVerification: bool('Ask GitLab to verify TLS when delivering.'),
  gitlabBaseURL: z.string().min(1).describe('GitLab base URL, e.g. "https://gitlab.com".'),
  deleteHookOnFinish: bool('Remove the hook when the source stops.'),
  metadata: metadata(),
  projects: strList('Projects to register the hook on.'),
  secretToken: secretRef('Secret key holding the token GitLab sends with each delivery.'),
  filter: filter(),
  groups: strList('Groups to register the hook on.'),
});

const BitbucketBasicAuth = obj('Bitbucket user name and app password.', {
  username: secretRef('Secret key holding the user name.'),
  password: secretRef('Secret key holding the password.'),
});

export const BitbucketEventSource = obj('Receives Bitbucket Cloud webhooks.', {
  deleteHookOnFinish: bool('Remove the hook when the source stops.'),
  metadata: metadata(),
  webhook: webhook('Bitbucket deliveries'),
  auth: obj('How to register the hook.', {
    basic: BitbucketBasicAuth.optional().describe('User name and password.'),
    oauthToken: secretRef('Secret key holding an OAuth token.'),
  })
    .optional()
    .describe('How to register the hook.'),
  events: z.array(z.string()).describe('Bitbucket event keys, e.g. ["repo:push"].'),
  owner: str('Repository owner (older single-repo form).'),
  projectKey: str('Project key (older single-repo form).'),
  repositorySlug: str('Repository slug (older single-repo form).'),
  repositories: z
    .array(
      obj('A repository.', {
        owner: z.string().min(1).describe('Owner.'),
        repositorySlug: z.string().min(1).describe('Repository slug.'),
      }),
    )
    .optional()
    .describe('Repositories to register the hook on.'),
  filter: filter(),
});

export const BitbucketServerEventSource = obj('Receives Bitbucket Server webhooks (signature checked).', {
  webhook: webhook('Bitbucket Server deliveries'),
  projectKey: str('Project key (older single-repo form).'),
  repositorySlug: str('Repository slug (older single-repo form).'),
  projects: strList('Projects to register the hook on.'),
  repositories: z
    .array(
      obj('A repository.', {
        projectKey: z.string().min(1).describe('Project key.'),
        repositorySlug: z.string().min(1).describe('Repository slug.'),
      }),
    )
    .optional()
    .describe('Repositories to register the hook on.'),
  events: strList('Event keys, e.g. ["repo:refs_changed"].'),
  skipBranchRefsChangedOnOpenPR: bool('Ignore branch updates that belong to an open pull request.'),
  oneEventPerChange: bool('Emit one event per changed ref.'),
  accessToken: secretRef('Secret key holding a token used to register the hook.'),
  webhookSecret: secretRef('Secret key holding the secret deliveries are signed with.'),
  bitbucketserverBaseURL: z.string().min(1).describe('Bitbucket Server REST base URL.'),
  deleteHookOnFinish: bool('Remove the hook when the source stops.'),
  metadata: metadata(),
  filter: filter(),
  tls: tls(),
  checkInterval: duration('How often registered hooks are checked.'),
});

export const SlackEventSource = obj('Receives Slack events (signature checked with signingSecret).', {
  signingSecret: secretRef('Secret key holding the Slack signing secret.'),
  token: secretRef('Secret key holding the Slack token.'),
  webhook: webhook('Slack deliveries'),
  metadata: metadata(),
  filter: filter(),
});

export const StripeEventSource = obj('Receives Stripe webhooks.', {
  webhook: webhook('Stripe deliveries'),
  createWebhook: bool('Register the endpoint with Stripe.'),
  apiKey: secretRef('Secret key holding the Stripe API key (also used to check signatures).'),
  eventFilter: strList('Stripe event types to accept, e.g. ["charge.succeeded"].'),
  metadata: metadata(),
  namespace: str('Legacy upstream field, ignored: Secrets are read from the EventSource namespace.'),
});

export const GerritEventSource = obj('Receives Gerrit webhooks.', {
  webhook: webhook('Gerrit deliveries'),
  hookName: z.string().min(1).describe('Name of the hook in Gerrit.'),
  events: z.array(z.string()).describe('Gerrit events, e.g. ["patchset-created"].'),
  auth: BasicAuth.optional().describe('Credentials to register the hook.'),
  gerritBaseURL: z.string().min(1).describe('Gerrit base URL.'),
  deleteHookOnFinish: bool('Remove the hook when the source stops.'),
  metadata: metadata(),
  projects: strList('Projects to register the hook on.'),
  sslVerify: bool('Verify TLS when delivering.'),
  filter: filter(),
  maxTries: int('Registration attempts.'),
});

export const StorageGridEventSource = obj('Receives NetApp StorageGRID notifications.', {
  webhook: webhook('StorageGRID notifications'),
  events: strList('Notification event types.'),
  filter: obj('Object key filter.', {
    prefix: z.string().describe('Keys must start with this.'),
    suffix: z.string().describe('Keys must end with this.'),
  })
    .optional()
    .describe('Object key filter.'),
  topicArn: z.string().min(1).describe('Topic ARN.'),
  bucket: z.string().min(1).describe('Bucket name.'),
  region: str('Region.'),
  authToken: secretRef('Secret key holding the API token.'),
  apiURL: z.string().min(1).describe('StorageGRID API URL.'),
  metadata: metadata(),
  tls: tls(),
});

export const SNSEventSource = obj('Receives AWS SNS notifications.', {
  webhook: webhook('SNS notifications'),
  topicArn: z.string().min(1).describe('Topic ARN.'),
  accessKey: secretRef('Secret key holding the AWS access key.'),
  secretKey: secretRef('Secret key holding the AWS secret key.'),
  region: z.string().min(1).describe('AWS region.'),
  roleARN: str('Role to assume.'),
  metadata: metadata(),
  validateSignature: bool('Check the SNS message signature.'),
  filter: filter(),
  endpoint: str('Custom SNS endpoint.'),
});

export const SQSEventSource = obj('Consumes an AWS SQS queue.', {
  accessKey: secretRef('Secret key holding the AWS access key.'),
  secretKey: secretRef('Secret key holding the AWS secret key.'),
  region: z.string().min(1).describe('AWS region.'),
  queue: z.string().min(1).describe('Queue name.'),
  waitTimeSeconds: int('Long-poll wait in seconds.'),
  roleARN: str('Role to assume.'),
  jsonBody: jsonBody(),
  queueAccountId: str('Account id owning the queue.'),
  metadata: metadata(),
  dlq: bool('Leave failed messages for the queue dead-letter policy.'),
  filter: filter(),
  endpoint: str('Custom SQS endpoint.'),
  sessionToken: secretRef('Secret key holding a session token.'),
});

export const AMQPEventSource = obj(
  'Consumes an AMQP (RabbitMQ) queue; messages are acked after publishing.',
  {
    url: str('Broker URL, e.g. "amqp://guest:guest@rabbitmq:5672/".'),
    exchangeName: z.string().describe('Exchange to bind to.'),
    exchangeType: z.string().describe('Exchange type: direct, fanout, topic or headers.'),
    routingKey: z.string().describe('Routing key of the binding.'),
    connectionBackoff: backoff(),
    jsonBody: jsonBody(),
    tls: tls(),
    metadata: metadata(),
    exchangeDeclare: obj('Exchange declaration options.', {
      durable: bool('Survives broker restarts.'),
      autoDelete: bool('Deleted when unused.'),
      internal: bool('Not for publishing by clients.'),
      noWait: bool('Do not wait for the broker to confirm.'),
    })
      .optional()
      .describe('Exchange declaration options.'),
    queueDeclare: obj('Queue declaration options.', {
      name: str('Queue name; generated when empty.'),
      durable: bool('Survives broker restarts.'),
      autoDelete: bool('Deleted when unused.'),
      exclusive: bool('Only this connection may use it.'),
      noWait: bool('Do not wait for the broker to confirm.'),
      arguments: str('Extra arguments, as JSON text.'),
    })
      .optional()
      .describe('Queue declaration options.'),
    queueBind: obj('Queue binding options.', { noWait: bool('Do not wait for the broker to confirm.') })
      .optional()
      .describe('Queue binding options.'),
    consume: obj('Consumer options.', {
      consumerTag: str('Consumer tag.'),
      autoAck: bool('Ack on delivery (sluice acks after publishing unless this is set).'),
      exclusive: bool('Exclusive consumer.'),
      noLocal: bool('Ignore messages published on this connection.'),
      noWait: bool('Do not wait for the broker to confirm.'),
    })
      .optional()
      .describe('Consumer options.'),
    auth: BasicAuth.optional().describe('User name and password.'),
    urlSecret: secretRef('Secret key holding the broker URL.'),
    filter: filter(),
  },
);

export const KafkaEventSource = obj('Consumes a Kafka topic.', {
  url: z.string().min(1).describe('Broker addresses, comma-separated.'),
  partition: str('Partition to read (without a consumer group).'),
  topic: z.string().min(1).describe('Topic.'),
  connectionBackoff: backoff(),
  tls: tls(),
  jsonBody: jsonBody(),
  metadata: metadata(),
  consumerGroup: KafkaConsumerGroup.optional().describe('Consumer group settings.'),
  limitEventsPerSecond: int('Most events read per second.'),
  version: str('Kafka protocol version.'),
  sasl: SASLConfig.optional().describe('SASL settings.'),
  filter: filter(),
  config: str('Extra client configuration, as YAML text.'),
  schemaRegistry: SchemaRegistryConfig.optional().describe('Schema registry for Avro.'),
  awsMskIamAuth: AWSMSKIAMConfig.optional().describe('IAM authentication for Amazon MSK.'),
});

export const MQTTEventSource = obj('Subscribes to an MQTT topic.', {
  url: z.string().min(1).describe('Broker URL, e.g. "tcp://mosquitto:1883".'),
  topic: z.string().min(1).describe('Topic (wildcards allowed).'),
  clientId: z.string().min(1).describe('MQTT client id.'),
  connectionBackoff: backoff(),
  jsonBody: jsonBody(),
  tls: tls(),
  metadata: metadata(),
  filter: filter(),
  auth: BasicAuth.optional().describe('User name and password.'),
});

export const NATSEventsSource = obj('Subscribes to a subject on a NATS server (not the bus).', {
  url: z.string().min(1).describe('NATS server URL.'),
  subject: z.string().min(1).describe('Subject (wildcards allowed).'),
  connectionBackoff: backoff(),
  jsonBody: jsonBody(),
  tls: tls(),
  metadata: metadata(),
  auth: NATSAuth.optional().describe('Authentication.'),
  filter: filter(),
  queue: str('Queue group, so several replicas share the messages.'),
});

export const NSQEventSource = obj('Consumes an NSQ topic.', {
  hostAddress: z.string().min(1).describe('nsqlookupd address.'),
  topic: z.string().min(1).describe('Topic.'),
  channel: z.string().min(1).describe('Channel.'),
  connectionBackoff: backoff(),
  jsonBody: jsonBody(),
  tls: tls(),
  metadata: metadata(),
  filter: filter(),
});

export const RedisEventSource = obj('Subscribes to Redis pub/sub channels.', {
  hostAddress: z.string().min(1).describe('Redis host:port.'),
  password: secretRef('Secret key holding the password.'),
  namespace: str('Namespace of the password Secret (upstream only).'),
  db: int('Database number.'),
  channels: z.array(z.string()).describe('Channels (patterns allowed).'),
  tls: tls(),
  metadata: metadata(),
  filter: filter(),
  jsonBody: jsonBody(),
  username: str('User name (Redis 6 ACL).'),
});

export const RedisStreamEventSource = obj(
  'Reads Redis streams through a consumer group; entries are acked after publishing.',
  {
    hostAddress: z.string().min(1).describe('Redis host:port.'),
    password: secretRef('Secret key holding the password.'),
    db: int('Database number.'),
    streams: z.array(z.string()).describe('Stream keys.'),
    maxMsgCountPerRead: int('Most entries per read.'),
    consumerGroup: str('Consumer group name. Defaults to "argo-events-cg".'),
    tls: tls(),
    metadata: metadata(),
    filter: filter(),
    username: str('User name (Redis 6 ACL).'),
  },
);

export const EmitterEventSource = obj('Subscribes to an Emitter channel.', {
  broker: z.string().min(1).describe('Broker address.'),
  channelKey: z.string().min(1).describe('Channel key.'),
  channelName: z.string().min(1).describe('Channel name.'),
  username: secretRef('Secret key holding the user name.'),
  password: secretRef('Secret key holding the password.'),
  connectionBackoff: backoff(),
  jsonBody: jsonBody(),
  tls: tls(),
  metadata: metadata(),
  filter: filter(),
});

export const PubSubEventSource = obj('Consumes a Google Cloud Pub/Sub subscription.', {
  projectID: str('Project of the subscription.'),
  topicProjectID: str('Project of the topic.'),
  topic: str('Topic.'),
  subscriptionID: str('Subscription id.'),
  credentialSecret: secretRef('Secret key holding service account credentials.'),
  deleteSubscriptionOnFinish: bool('Delete the subscription when the source stops.'),
  jsonBody: jsonBody(),
  metadata: metadata(),
  filter: filter(),
});

export const PulsarEventSource = obj('Consumes Pulsar topics.', {
  topics: z.array(z.string()).describe('Topics.'),
  type: str('Subscription type: exclusive or shared.'),
  url: z.string().min(1).describe('Pulsar service URL.'),
  tlsTrustCertsSecret: secretRef('Secret key holding trusted CA certificates.'),
  tlsAllowInsecureConnection: bool('Accept untrusted certificates.'),
  tlsValidateHostname: bool('Check the server host name.'),
  tls: tls(),
  connectionBackoff: backoff(),
  jsonBody: jsonBody(),
  metadata: metadata(),
  authTokenSecret: secretRef('Secret key holding a token.'),
  filter: filter(),
  authAthenzParams: strMap('Athenz authentication parameters.'),
  authAthenzSecret: secretRef('Secret key holding the Athenz private key.'),
});

export const GenericEventSource = obj('Connects to a custom event source server over gRPC.', {
  url: z.string().min(1).describe('gRPC server address.'),
  config: z.string().describe('Configuration passed to the server.'),
  insecure: bool('Connect without TLS.'),
  jsonBody: jsonBody(),
  metadata: metadata(),
  authSecret: secretRef('Secret key holding a bearer token.'),
  filter: filter(),
});

export const HDFSEventSource = obj('Watches files on HDFS.', {
  directory: z.string().min(1).describe('Directory to watch.'),
  path: str('Exact file name.'),
  pathRegexp: str('Regular expression file names must match.'),
  type: z.string().min(1).describe('Operation to emit.'),
  checkInterval: duration('How often to poll.'),
  addresses: z.array(z.string()).describe('Name node addresses.'),
  hdfsUser: str('HDFS user.'),
  krbCCacheSecret: secretRef('Secret key holding a Kerberos credential cache.'),
  krbKeytabSecret: secretRef('Secret key holding a Kerberos keytab.'),
  krbUsername: str('Kerberos user.'),
  krbRealm: str('Kerberos realm.'),
  krbConfigConfigMap: ConfigMapKeySelector.optional().describe('ConfigMap key holding krb5.conf.'),
  krbServicePrincipalName: str('Kerberos service principal.'),
  metadata: metadata(),
  filter: filter(),
});

export const AzureEventsHubEventSource = obj('Consumes Azure Event Hubs.', {
  fqdn: z.string().min(1).describe('Namespace host name.'),
  sharedAccessKeyName: secretRef('Secret key holding the access key name.'),
  sharedAccessKey: secretRef('Secret key holding the access key.'),
  hubName: z.string().min(1).describe('Event hub name.'),
  metadata: metadata(),
  filter: filter(),
});

export const AzureQueueStorageEventSource = obj('Consumes an Azure Storage queue.', {
  storageAccountName: str('Storage account (with workload identity).'),
  connectionString: secretRef('Secret key holding the connection string.'),
  queueName: z.string().min(1).describe('Queue name.'),
  jsonBody: jsonBody(),
  dlq: bool('Leave failed messages for the queue dead-letter policy.'),
  metadata: metadata(),
  filter: filter(),
  decodeMessage: bool('Base64-decode messages.'),
  waitTimeInSeconds: int('Long-poll wait in seconds.'),
});

export const AzureServiceBusEventSource = obj('Consumes an Azure Service Bus queue or subscription.', {
  connectionString: secretRef('Secret key holding the connection string.'),
  queueName: str('Queue (or use topicName + subscriptionName).'),
  topicName: str('Topic.'),
  subscriptionName: str('Subscription of the topic.'),
  tls: tls(),
  jsonBody: jsonBody(),
  metadata: metadata(),
  filter: filter(),
  fullyQualifiedNamespace: str('Namespace host name (with workload identity).'),
  deferDelete: bool('Complete messages only after publishing.'),
});

export const MNSEventSource = obj('Consumes an Alibaba Cloud MNS queue.', {
  accessKey: secretRef('Secret key holding the access key.'),
  secretKey: secretRef('Secret key holding the secret key.'),
  queue: z.string().min(1).describe('Queue name.'),
  jsonBody: jsonBody(),
  endpoint: str('MNS endpoint.'),
  filter: filter(),
});

const SOURCES = {
  amqp: namedMap('AMQP (RabbitMQ) queues.', AMQPEventSource),
  azureEventsHub: namedMap('Azure Event Hubs.', AzureEventsHubEventSource),
  azureQueueStorage: namedMap('Azure Storage queues.', AzureQueueStorageEventSource),
  azureServiceBus: namedMap('Azure Service Bus queues and subscriptions.', AzureServiceBusEventSource),
  bitbucket: namedMap('Bitbucket Cloud webhooks.', BitbucketEventSource),
  bitbucketserver: namedMap('Bitbucket Server webhooks.', BitbucketServerEventSource),
  calendar: namedMap('Schedules.', CalendarEventSource),
  emitter: namedMap('Emitter channels.', EmitterEventSource),
  file: namedMap('Local file changes.', FileEventSource),
  generic: namedMap('Custom gRPC event servers.', GenericEventSource),
  gerrit: namedMap('Gerrit webhooks.', GerritEventSource),
  github: namedMap('GitHub webhooks.', GithubEventSource),
  gitlab: namedMap('GitLab webhooks.', GitlabEventSource),
  hdfs: namedMap('HDFS file changes.', HDFSEventSource),
  kafka: namedMap('Kafka topics.', KafkaEventSource),
  minio: namedMap('MinIO bucket notifications.', S3Artifact),
  mns: namedMap('Alibaba Cloud MNS queues.', MNSEventSource),
  mqtt: namedMap('MQTT topics.', MQTTEventSource),
  nats: namedMap('NATS subjects (on a server other than the bus).', NATSEventsSource),
  nsq: namedMap('NSQ topics.', NSQEventSource),
  pubSub: namedMap('Google Cloud Pub/Sub subscriptions.', PubSubEventSource),
  pulsar: namedMap('Pulsar topics.', PulsarEventSource),
  redis: namedMap('Redis pub/sub channels.', RedisEventSource),
  redisStream: namedMap('Redis streams.', RedisStreamEventSource),
  resource: namedMap('Kubernetes object changes.', ResourceEventSource),
  sftp: namedMap('SFTP file changes.', SFTPEventSource),
  slack: namedMap('Slack events.', SlackEventSource),
  sns: namedMap('AWS SNS notifications.', SNSEventSource),
  sqs: namedMap('AWS SQS queues.', SQSEventSource),
  storageGrid: namedMap('NetApp StorageGRID notifications.', StorageGridEventSource),
  stripe: namedMap('Stripe webhooks.', StripeEventSource),
  webhook: namedMap('Plain HTTP endpoints.', WebhookEventSource),
};

export const SOURCE_TYPES = Object.keys(SOURCES) as Array<keyof typeof SOURCES>;
export type SourceType = keyof typeof SOURCES;

export const EventSourceSpec = obj('The sources of events and how their Deployment runs.', {
  eventBusName: str('EventBus to publish to. Defaults to "default".'),
  template: Template.optional().describe('Pod template for the EventSource Deployment.'),
  service: Service.optional().describe('Service exposing the webhook ports.'),
  replicas: count('Number of pods. Webhook sources share the load; others elect a leader. Defaults to 1.'),
  type: str('Legacy upstream field from old EventSources, ignored: the source type is the map it is under.'),
  ...SOURCES,
})
  .meta({
    'x-kubernetes-validations': [
      {
        rule: `${SOURCE_TYPES.map((t) => `(has(self.${t}) && self.${t}.size() > 0)`).join(' || ')}`,
        message: 'an EventSource needs at least one event source',
      },
    ],
  })
  .superRefine((spec, ctx) => {
    const s = spec as Record<string, unknown>;
    const seen = new Map<string, string>();
    let any = false;
    for (const type of SOURCE_TYPES) {
      const m = s[type] as Record<string, unknown> | undefined;
      for (const name of Object.keys(m ?? {})) {
        any = true;
        const first = seen.get(name);
        if (first) {
          ctx.addIssue({
            code: 'custom',
            path: [type, name],
            message: `event name "${name}" is also used by ${first}; event names must be unique in an EventSource`,
          });
        } else seen.set(name, type);
      }
    }
    if (!any)
      ctx.addIssue({ code: 'custom', path: [], message: 'an EventSource needs at least one event source' });
  });
export type EventSourceSpec = z.infer<typeof EventSourceSpec>;

export const EventSourceStatus = z
  .looseObject({
    conditions: conditionsField(),
    observedGeneration: count('The spec generation last acted on.'),
  })
  .describe('What the controller observed.');

export const EventSource = z.looseObject({
  apiVersion: z.literal('argoproj.io/v1alpha1'),
  kind: z.literal('EventSource'),
  metadata: z.looseObject({ name: z.string().optional(), namespace: z.string().optional() }),
  spec: EventSourceSpec,
  status: EventSourceStatus.optional(),
});
export type EventSource = z.infer<typeof EventSource>;

/** EventSource defaults, in one place. */
export function withEventSourceDefaults(spec: EventSourceSpec): EventSourceSpec {
  return { ...spec, eventBusName: spec.eventBusName || 'default', replicas: spec.replicas ?? 1 };
}
