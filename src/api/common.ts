// Types shared by EventBus, EventSource and Sensor: retries, TLS, auth, pod templates, status.
import { z } from 'zod';
import {
  affinity,
  ConfigMapKeySelector,
  env,
  envFrom,
  imagePullSecrets,
  nodeSelector,
  podSecurityContext,
  quantity,
  resources,
  SecretKeySelector,
  secretRef,
  securityContext,
  servicePorts,
  tolerations,
  volumeMounts,
  volumes,
} from './k8s.ts';
import { amount, bool, count, duration, int, intOrDuration, obj, str, strList, strMap } from './kit.ts';

/**
 * Upstream `Backoff`, used as a trigger's `retryStrategy` and by sources that reconnect.
 * sluice adds `cap`, an upper bound on any single wait.
 */
export const Backoff = obj('How failed attempts are retried: how many, and how long to wait between them.', {
  duration: intOrDuration(
    'Wait before the second attempt, in nanoseconds or as a duration string such as "1s". Defaults to 1s.',
  ),
  factor: amount('Each wait is the previous one times this factor. Defaults to 1 (constant waits).'),
  jitter: amount('Adds up to this fraction of random extra wait to each delay (0.1 = up to 10%).'),
  steps: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe('Total number of attempts, the first one included. Defaults to 1 for triggers (no retries).'),
  cap: duration('sluice extension: no single wait is longer than this, however large the factor makes it.'),
});
export type Backoff = z.infer<typeof Backoff>;

export const TLSConfig = obj('TLS settings for a client connection.', {
  caCertSecret: secretRef('Secret key holding the CA certificate(s) used to verify the server.'),
  clientCertSecret: secretRef('Secret key holding the client certificate, for mutual TLS.'),
  clientKeySecret: secretRef('Secret key holding the client private key, for mutual TLS.'),
  insecureSkipVerify: bool('Skip verification of the server certificate. Only for testing.'),
  enabled: bool('Use TLS even when no certificates are given (system CAs).'),
});
export type TLSConfig = z.infer<typeof TLSConfig>;

export const BasicAuth = obj('User name and password, each read from a Secret.', {
  username: secretRef('Secret key holding the user name.'),
  password: secretRef('Secret key holding the password.'),
});

export const SASLConfig = obj('SASL authentication for Kafka.', {
  mechanism: z
    .enum(['PLAIN', 'OAUTHBEARER', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'GSSAPI'])
    .optional()
    .describe('SASL mechanism. Defaults to PLAIN.'),
  userSecret: secretRef('Secret key holding the SASL user name.'),
  passwordSecret: secretRef('Secret key holding the SASL password.'),
});

export const Metadata = obj('Labels and annotations added to generated objects.', {
  labels: strMap('Labels to add.'),
  annotations: strMap('Annotations to add.'),
});

export const Container = obj('Overrides for the main container of the generated pods.', {
  env: env(),
  envFrom: envFrom(),
  imagePullPolicy: z
    .enum(['Always', 'IfNotPresent', 'Never'])
    .optional()
    .describe('When the kubelet pulls the image.'),
  resources: resources(),
  securityContext: securityContext(),
  volumeMounts: volumeMounts(),
});

export const ContainerTemplate = obj('Overrides for one container of the generated pods.', {
  imagePullPolicy: z
    .enum(['Always', 'IfNotPresent', 'Never'])
    .optional()
    .describe('When the kubelet pulls the image.'),
  resources: resources(),
  securityContext: securityContext(),
});

export const Template = obj('Pod template settings for the Deployment the controller creates.', {
  metadata: Metadata.optional().describe('Labels and annotations for the pods.'),
  serviceAccountName: str('Service account the pods run as.'),
  container: Container.optional().describe('Overrides for the main container.'),
  volumes: volumes(),
  securityContext: podSecurityContext(),
  nodeSelector: nodeSelector(),
  tolerations: tolerations(),
  imagePullSecrets: imagePullSecrets(),
  priorityClassName: str('Priority class of the pods.'),
  priority: int('Pod priority value; normally set from priorityClassName.'),
  affinity: affinity(),
});
export type Template = z.infer<typeof Template>;

export const Service = obj('Service that exposes the webhook ports of an EventSource.', {
  metadata: Metadata.optional().describe('Labels and annotations for the Service.'),
  ports: servicePorts(),
  clusterIP: str('Fixed cluster IP for the Service ("None" for headless).'),
});

export const PersistenceStrategy = obj('Persistent volume for a managed bus server.', {
  storageClassName: str('Storage class of the volume claim. Defaults to the cluster default.'),
  accessMode: z
    .enum(['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'])
    .optional()
    .describe('Access mode of the volume claim. Defaults to ReadWriteOnce.'),
  volumeSize: quantity('Size of the volume claim, e.g. "20Gi". Defaults to 20Gi.'),
});

export const Selector = obj('A label or field filter: key, operator and value.', {
  key: z.string().min(1).describe('Label or field key.'),
  operation: z
    .enum(['', '=', '==', '!=', 'in', 'notin', 'exists', '!', 'gt', 'lt'])
    .optional()
    .describe('Comparison; "=" when empty.'),
  value: z.string().describe('Value to compare with.'),
});

const webhookEndpoint = z.string().min(1).describe('URL path the source answers on, e.g. "/push".');
/** The fields of a webhook endpoint after endpoint and method (which the two variants differ in). */
const webhookShape = {
  port: z
    .string()
    .regex(/^[0-9]{1,5}$/, { message: 'must be a port number written as a string, e.g. "12000"' })
    .describe('Port of the HTTP server, as a string (several sources may share one port).'),
  url: str('Public base URL the provider calls, used when sluice registers the hook with the provider.'),
  serverCertSecret: secretRef('Secret key holding the TLS certificate the server presents.'),
  serverKeySecret: secretRef('Secret key holding the TLS private key of the server.'),
  metadata: strMap('Extra key/values attached to every event from this source.'),
  authSecret: secretRef('Secret key holding a bearer token that requests must present.'),
  maxPayloadSize: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('Largest accepted request body in bytes; bigger ones get 413. Defaults to 1048576 (1 MiB).'),
};

/** The endpoint of the plain `webhook` source, which answers one method (upstream compares it). */
export const WebhookContext = obj('Where and how a webhook-style event source listens for HTTP requests.', {
  endpoint: webhookEndpoint,
  method: z.string().min(1).describe('HTTP method accepted, e.g. "POST".'),
  ...webhookShape,
});

/** Upstream requires only endpoint and port of a provider's webhook and never compares the method. */
export const DEFAULT_PROVIDER_METHOD = 'POST';

/** The endpoint of a provider's webhook (GitHub, GitLab, Slack, SNS, ...): the method is optional. */
export const ProviderWebhookContext = obj(
  'Where a webhook-style event source listens for HTTP requests from its provider.',
  {
    endpoint: webhookEndpoint,
    method: str(
      `HTTP method accepted. Defaults to ${DEFAULT_PROVIDER_METHOD}, the method the providers send (upstream does not check it).`,
    ),
    ...webhookShape,
  },
);
export type ProviderWebhookContext = z.infer<typeof ProviderWebhookContext>;
export type WebhookContext = z.infer<typeof WebhookContext>;

export const CatchupConfiguration = obj('Whether fires missed while the source was down are emitted later.', {
  enabled: bool('Emit missed fires when the source starts again.'),
  maxDuration: duration('Only catch up on fires at most this old, e.g. "1h". Unlimited when empty.'),
});

export const ConfigMapPersistence = obj('ConfigMap in which a calendar source remembers its last fire.', {
  name: str('Name of the ConfigMap.'),
  createIfNotExist: bool('Create the ConfigMap when it does not exist.'),
});

export const EventPersistence = obj(
  'Remembers the last emitted event so a restart neither misses nor repeats one.',
  {
    catchup: CatchupConfiguration.optional().describe('Catch-up of missed fires.'),
    configMap: ConfigMapPersistence.optional().describe('Where the state is kept.'),
  },
);

export const GitCreds = obj('Credentials for a Git server.', {
  username: secretRef('Secret key holding the user name.'),
  password: secretRef('Secret key holding the password or token.'),
});

export const ValueFromSource = obj('Where a value is read from: a Secret or a ConfigMap key.', {
  secretKeyRef: secretRef('Read the value from this Secret key.'),
  configMapKeyRef: ConfigMapKeySelector.optional().describe('Read the value from this ConfigMap key.'),
});

export const SecureHeader = obj('An HTTP header whose value comes from a Secret or ConfigMap.', {
  name: z.string().min(1).describe('Header name.'),
  valueFrom: ValueFromSource.optional().describe('Where the header value is read from.'),
});

export const NATSAuth = obj('How to authenticate to a NATS server (at most one method).', {
  basic: BasicAuth.optional().describe('User name and password.'),
  token: secretRef('Secret key holding a token.'),
  nkey: secretRef('Secret key holding an NKey seed.'),
  credential: secretRef('Secret key holding a credentials (.creds) file.'),
});

export const KafkaConsumerGroup = obj('Kafka consumer group settings.', {
  groupName: z.string().min(1).describe('Name of the consumer group.'),
  oldest: bool('Start from the oldest offset when the group has none committed.'),
  rebalanceStrategy: z
    .enum(['sticky', 'roundrobin', 'range'])
    .optional()
    .describe('Partition assignment strategy. Defaults to range.'),
});

export const SchemaRegistryConfig = obj('Schema registry used to decode Avro messages.', {
  url: z.string().min(1).describe('Schema registry URL.'),
  schemaId: int('Id of the schema to use.'),
  auth: BasicAuth.optional().describe('Credentials for the schema registry.'),
});

export const AWSMSKIAMConfig = obj('IAM authentication for Amazon MSK.', {
  region: z.string().min(1).describe('AWS region of the cluster.'),
});

export const Condition = z
  .looseObject({
    type: z.string().describe('Kind of condition, e.g. Ready.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('Whether the condition holds.'),
    reason: z.string().optional().describe('Machine-readable reason in CamelCase.'),
    message: z.string().optional().describe('What a person should know, and do, about it.'),
    lastTransitionTime: z.string().optional().describe('When the status last changed.'),
    observedGeneration: count('The spec generation this condition was computed from.'),
  })
  .describe('One aspect of the object state.');
export type Condition = z.infer<typeof Condition>;

/** Status fields of EventSources and Sensors beside their conditions. */
export const workloadStatusFields = () => ({
  eventBusName: z
    .string()
    .optional()
    .describe('The EventBus this object uses ("default" when spec.eventBusName is unset).'),
  available: z
    .string()
    .optional()
    .describe(
      'Available/wanted pods of its Deployment, e.g. "1/1" ("-": no Deployment); the Available condition says why.',
    ),
});

export const conditionsField = () =>
  z
    .array(Condition)
    .optional()
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
    .describe('Current state, one entry per condition type; Ready sums them up.');

// Shared by EventSource (`minio`, `github`) and Sensor (artifact locations, git triggers).

export const S3Bucket = obj('A bucket in S3-compatible storage, and optionally one object key in it.', {
  name: z.string().min(1).describe('Name of the bucket.'),
  key: str('Key of a single object in the bucket, where one object is meant.'),
});

export const S3Filter = obj('Narrows bucket notifications by object key.', {
  prefix: z.string().describe('Only keys starting with this text match ("" matches all).'),
  suffix: z.string().describe('Only keys ending with this text match ("" matches all).'),
});

export const S3Artifact = obj('A bucket (or one object) in S3-compatible storage such as MinIO or AWS S3.', {
  endpoint: z.string().min(1).describe('Address of the storage service, host[:port], without a scheme.'),
  bucket: S3Bucket.describe('The bucket, and the object key where one object is meant.'),
  region: str('Region the bucket lives in, where the service has regions.'),
  insecure: bool('Talk plain HTTP instead of HTTPS.'),
  accessKey: secretRef('Secret key holding the access key id.'),
  secretKey: secretRef('Secret key holding the secret access key.'),
  events: strList('Bucket notification types to listen for, e.g. "s3:ObjectCreated:Put".'),
  filter: S3Filter.optional().describe('Only objects whose keys match are reported.'),
  metadata: strMap('Fixed key/values added to every event from this source.'),
  caCertificate: secretRef('Secret key holding a CA certificate to trust for the endpoint.'),
});
export type S3Artifact = z.infer<typeof S3Artifact>;

export const GithubAppCreds = obj('Identity of an installed GitHub App, used instead of a personal token.', {
  privateKey: SecretKeySelector.describe('Secret key holding the private key (PEM) of the App.'),
  appID: z.number().int().min(1).describe('Numeric id of the GitHub App.'),
  installationID: z.number().int().min(1).describe('Numeric id of the App installation to act as.'),
});
export type GithubAppCreds = z.infer<typeof GithubAppCreds>;

export { SecretKeySelector };
