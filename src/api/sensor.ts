// Sensor: dependencies (which events, with which filters), triggers (what to do, with retries,
// rate limits, circuit breaking and dead-lettering) and the conditions that connect them.
import { z } from 'zod';
import { checkCron, checkPath, checkTimeZone } from './checks.ts';
import {
  Backoff,
  BasicAuth,
  conditionsField,
  GitCreds,
  GithubAppCreds,
  NATSAuth,
  S3Artifact,
  SASLConfig,
  SchemaRegistryConfig,
  SecureHeader,
  Template,
  TLSConfig,
  workloadStatusFields,
} from './common.ts';
import { CONDITIONS_CEL, ConditionSyntaxError, conditionNames, parseConditions } from './conditions.ts';
import { ConfigMapKeySelector, secretRef } from './k8s.ts';
import {
  bool,
  celRules,
  count,
  duration,
  exactlyOne,
  exactlyOneCel,
  int,
  MAX_NAMED,
  nullTolerant,
  obj,
  opaque,
  present,
  refineWith,
  str,
  strList,
  strMap,
} from './kit.ts';

const logicalOperator = (what: string) =>
  z
    .enum(['and', 'or', ''])
    .optional()
    .describe(`How ${what} combine: "and" (all must pass, the default) or "or" (any).`);

/** A gjson path into event data or attributes (checked: sluice must be able to evaluate it). */
const gjsonPath = () => z.string().min(1).superRefine(refineWith(checkPath));
/** An optional path; "" reads as not set, as upstream reads it. */
const optionalPath = (description: string) =>
  z
    .string()
    .superRefine(refineWith((p: string) => (p === '' ? undefined : checkPath(p))))
    .optional()
    .describe(description);
const timeZone = (description: string) =>
  z.string().superRefine(refineWith(checkTimeZone)).optional().describe(description);

// ---------------------------------------------------------------------------------- filters --

export const DataFilter = obj('A test on one field of the event payload.', {
  path: gjsonPath().describe(
    'Where the field is: a gjson path into the event data, e.g. "body.action", "body.items.0.id", ' +
      '"body.labels.#(name=="bug").name" or a multipath "[body.a,body.b]".',
  ),
  type: z.enum(['string', 'number', 'bool']).describe('How the field is read: string, number or bool.'),
  value: z
    .array(z.string())
    .describe('Accepted values; the filter passes when any one matches. Strings are regular expressions.'),
  comparator: z
    .enum(['>=', '>', '=', '==', '!=', '<', '<=', ''])
    .optional()
    .describe('Comparison for numbers (and = / != for the others). Defaults to "=".'),
  template: str('A Go template applied to the field value before comparing, e.g. "{{ b64dec .Input }}".'),
});

export const PayloadField = obj('Names one payload field for use in an expression.', {
  path: gjsonPath().describe('gjson path of the field in the event data, e.g. "body.user.id".'),
  name: z.string().min(1).describe('Variable name the expression uses for it.'),
});

export const ExprFilter = obj('A boolean expression over selected payload fields.', {
  expr: z.string().min(1).describe('The expression, e.g. `a == "x" && b > 10`.'),
  fields: z.array(PayloadField).describe('The payload fields the expression refers to.'),
});

export const EventContext = obj('Expected CloudEvents attributes of matching events.', {
  id: str('Event id.'),
  source: str('Event source (the EventSource name).'),
  specversion: str('CloudEvents spec version.'),
  type: str('Event type (the source type, e.g. "webhook").'),
  datacontenttype: str('Content type of the event data.'),
  subject: str('Event subject (the event name).'),
  time: str('Event time.'),
});

/**
 * A time of day as upstream parses it (Go's time.Parse with "15:04:05": one- or two-digit hour,
 * fractional seconds after "." or ","), plus "HH:MM" (seconds 0), which sluice also takes.
 */
export const TIME_OF_DAY = /^([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.,][0-9]+)?)?$/;
const timeOfDay = (description: string) =>
  z
    .string()
    .regex(TIME_OF_DAY, { message: 'must be a time of day such as "09:00", "17:30:00" or "09:00:00.5"' })
    .describe(description);

export const TimeFilter = obj('Only events arriving within a daily time window pass.', {
  start: timeOfDay('Start of the window, HH:MM[:SS[.fraction]].'),
  stop: timeOfDay('End of the window, HH:MM[:SS[.fraction]]; a stop before start spans midnight.'),
  timezone: timeZone(
    'Time zone of the window as Go names it, e.g. "Europe/Paris" (case-sensitive), "Local" or "UTC" (the default).',
  ),
});

export const EventDependencyFilter = obj('Tests an event must pass to satisfy the dependency.', {
  time: TimeFilter.optional().describe('Time-of-day window.'),
  context: EventContext.optional().describe('Required CloudEvents attributes.'),
  data: z.array(DataFilter).optional().describe('Tests on payload fields.'),
  exprs: z.array(ExprFilter).optional().describe('Boolean expressions over payload fields.'),
  dataLogicalOperator: logicalOperator('data filters'),
  exprLogicalOperator: logicalOperator('expression filters'),
  script: str('A Lua script that returns true for events that pass; the event is available as `event`.'),
});

export const EventDependencyTransformer = obj('Rewrites the event payload before triggers see it.', {
  jq: str('A jq program applied to the event data.'),
  script: str('A Lua script returning the new event data.'),
});

export const EventDependency = obj('One kind of event the Sensor waits for.', {
  name: z.string().min(1).describe('Name used in trigger conditions and parameters.'),
  eventSourceName: z.string().min(1).describe('Name of the EventSource that emits the event.'),
  eventName: z.string().min(1).describe('Name of the event inside that EventSource.'),
  filters: EventDependencyFilter.optional().describe('Tests an event must pass.'),
  transform: EventDependencyTransformer.optional().describe('Payload rewrite applied after filtering.'),
  filtersLogicalOperator: logicalOperator('the filter kinds (data, exprs, context, time, script)'),
  orderingKey: optionalPath(
    'sluice extension: gjson path into the event data (e.g. "body.orderId"); events with the same value are processed one at a time, in order.',
  ),
});
export type EventDependency = z.infer<typeof EventDependency>;

// ------------------------------------------------------------------------------- parameters --

export const TriggerParameterSource = obj('Where a parameter value comes from.', {
  dependencyName: z.string().min(1).describe('Dependency whose event supplies the value.'),
  contextKey: optionalPath('gjson path into the CloudEvents attributes, e.g. "type".'),
  contextTemplate: str('Go template over the event attributes, e.g. "{{ .Input.source }}".'),
  dataKey: optionalPath('gjson path into the event data, e.g. "body.name" or "body.items.#".'),
  dataTemplate: str('Go template over the event data, e.g. "{{ .Input.body.name }}".'),
  value: str('Default used when the key or template finds nothing.'),
  useRawData: bool('Insert the value as raw JSON instead of as a string.'),
});

export const TriggerParameter = obj('Copies a value from an event into the trigger.', {
  src: TriggerParameterSource.optional().describe('Where the value comes from.'),
  dest: z
    .string()
    .min(1)
    .describe('Dotted path in the target (template, payload or resource) that receives it.'),
  operation: z
    .enum(['overwrite', 'append', 'prepend', ''])
    .optional()
    .describe('Replace the destination (overwrite, the default), or append/prepend to it.'),
});
const parameters = (what = 'the trigger template') =>
  z.array(TriggerParameter).optional().describe(`Values copied from events into ${what}.`);
const payload = () =>
  z.array(TriggerParameter).optional().describe('How the request body is built from events.');

// ---------------------------------------------------------------------------- trigger types --

const GitRemoteConfig = obj('A named Git remote.', {
  name: z.string().min(1).describe('Remote name.'),
  urls: z.array(z.string()).describe('Remote URLs.'),
});
const GitArtifact = obj('A file in a Git repository.', {
  url: z.string().min(1).describe('Repository URL.'),
  cloneDirectory: z.string().min(1).describe('Where the repository is cloned.'),
  creds: GitCreds.optional().describe('User name and password for HTTPS.'),
  sshKeySecret: secretRef('Secret key holding an SSH private key.'),
  filePath: z.string().min(1).describe('Path of the file in the repository.'),
  branch: str('Branch to check out.'),
  tag: str('Tag to check out.'),
  ref: str('Any other ref to check out.'),
  remote: GitRemoteConfig.optional().describe('Remote to fetch from.'),
  insecureIgnoreHostKey: bool('Skip SSH host key checks.'),
  githubApp: GithubAppCreds.optional().describe('Authenticate as a GitHub App.'),
  namespace: str('Legacy upstream field, ignored.'),
  sshKeyPath: str('Legacy upstream field (a key file path), ignored: use sshKeySecret.'),
});

export const ArtifactLocation = obj('Where a trigger finds the object it works with. Exactly one place.', {
  s3: S3Artifact.optional().describe('An object in S3-compatible storage.'),
  inline: str('The object itself, as YAML or JSON text.'),
  file: obj('A file on the Sensor pod.', { path: str('Path of the file.') })
    .optional()
    .describe('A file on the Sensor pod.'),
  url: obj('A document fetched over HTTP(S).', {
    path: z.string().min(1).describe('URL of the document.'),
    verifyCert: bool('Verify the server certificate.'),
    verifycert: bool('Legacy spelling of verifyCert, read the same way.'),
  })
    .optional()
    .describe('A document fetched over HTTP(S).'),
  configmap: ConfigMapKeySelector.extend(
    nullTolerant({
      namespace: str('Legacy upstream field, ignored: the ConfigMap is read from the Sensor namespace.'),
    }),
  )
    .optional()
    .describe('A ConfigMap key holding the object.'),
  git: GitArtifact.optional().describe('A file in a Git repository.'),
  resource: opaque('The object itself, written inline as structured YAML.'),
});

export const HTTPTrigger = celRules(
  obj('Sends an HTTP request.', {
    url: z.string().min(1).optional().describe('Where the request goes.'),
    serverURL: str('Legacy name of url, read the same way when url is not set.'),
    method: z
      .enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'])
      .optional()
      .describe('HTTP method. Defaults to POST.'),
    payload: payload(),
    parameters: parameters(),
    headers: strMap('Fixed request headers.'),
    secureHeaders: z
      .array(SecureHeader)
      .optional()
      .describe('Headers whose values come from Secrets or ConfigMaps.'),
    dynamicHeaders: z.array(TriggerParameter).optional().describe('Headers whose values come from events.'),
    timeout: count('Request timeout in seconds. Defaults to 60.'),
    tls: TLSConfig.optional().describe('TLS settings for https URLs.'),
    basicAuth: BasicAuth.optional().describe('HTTP basic authentication.'),
    host: str('Host header override.'),
  }),
  [
    {
      rule: 'has(self.url) || has(self.serverURL)',
      message: 'url is required',
      fieldPath: '.url',
      reason: 'FieldValueRequired',
    },
  ],
).superRefine((v, ctx) => {
  if (!v.url && !v.serverURL) ctx.addIssue({ code: 'custom', path: ['url'], message: 'url is required' });
});

/**
 * Upstream's k8s and argoWorkflow triggers once named the object's group/version/resource (as
 * in its stress test); the object's own apiVersion and kind say the same, so they are accepted
 * and not used.
 */
const legacyGroupVersionResource = {
  group: str("Legacy upstream field (the object's group); not used: the object's apiVersion says it."),
  version: str("Legacy upstream field (the object's version); not used: the object's apiVersion says it."),
  resource: str("Legacy upstream field (the object's resource); not used: the object's kind says it."),
};

export const StandardK8STrigger = obj('Creates, updates, patches or deletes a Kubernetes object.', {
  source: ArtifactLocation.optional().describe('Where the object comes from.'),
  operation: z
    .enum(['create', 'update', 'patch', 'delete'])
    .optional()
    .describe('What to do with the object. Defaults to create.'),
  parameters: parameters('the object'),
  patchStrategy: z
    .enum([
      'application/json-patch+json',
      'application/merge-patch+json',
      'application/strategic-merge-patch+json',
      'application/apply-patch+yaml',
    ])
    .optional()
    .describe('Patch type for operation patch. Defaults to merge patch.'),
  liveObject: bool('Use the object as it is in the cluster (read first) as the base for update/patch.'),
  ...legacyGroupVersionResource,
});

export const ArgoWorkflowTrigger = obj(
  'Works with Argo Workflows by creating or changing Workflow objects.',
  {
    source: ArtifactLocation.optional().describe('Where the Workflow comes from.'),
    operation: z
      .enum(['submit', 'submit-from', 'resubmit', 'resume', 'retry', 'suspend', 'terminate', 'stop'])
      .optional()
      .describe('What to do. Defaults to submit.'),
    parameters: parameters('the Workflow'),
    args: strList('Extra arguments for the operation.'),
    ...legacyGroupVersionResource,
  },
);

export const LogTrigger = obj('Writes the triggering events to the Sensor log.', {
  intervalSeconds: count('Log at most once per this many seconds (0 = every time).'),
});

export const NATSTrigger = obj('Publishes a message on a NATS subject.', {
  url: z.string().min(1).describe('NATS server URL.'),
  subject: z.string().min(1).describe('Subject to publish on.'),
  payload: payload(),
  parameters: parameters(),
  tls: TLSConfig.optional().describe('TLS settings.'),
  auth: NATSAuth.optional().describe('Authentication.'),
});

export const SlackTrigger = obj('Posts a message to Slack.', {
  parameters: parameters(),
  slackToken: secretRef('Secret key holding the Slack token.'),
  channel: str('Channel to post to.'),
  message: str('Message text.'),
  attachments: str('Attachments, as JSON text.'),
  blocks: str('Block Kit blocks, as JSON text.'),
  thread: obj('Threading of messages.', {
    messageAggregationKey: str('Messages with the same key go to one thread.'),
    broadcastMessageToChannel: bool('Also show threaded replies in the channel.'),
  })
    .optional()
    .describe('Threading of messages.'),
  sender: obj('How the message author looks.', {
    username: str('Display name.'),
    icon: str('Icon emoji or URL.'),
  })
    .optional()
    .describe('How the message author looks.'),
});

export const EmailTrigger = obj('Sends an email over SMTP.', {
  parameters: parameters(),
  username: str('SMTP user name.'),
  smtpPassword: secretRef('Secret key holding the SMTP password.'),
  host: str('SMTP server host.'),
  port: int('SMTP server port.'),
  to: strList('Recipients.'),
  from: str('Sender address.'),
  subject: str('Subject line.'),
  body: str('Message body.'),
});

export const AWSLambdaTrigger = obj('Invokes an AWS Lambda function.', {
  functionName: z.string().min(1).describe('Function name.'),
  accessKey: secretRef('Secret key holding the access key.'),
  secretKey: secretRef('Secret key holding the secret key.'),
  region: z.string().min(1).describe('AWS region.'),
  payload: payload(),
  parameters: parameters(),
  invocationType: z.enum(['RequestResponse', 'Event', 'DryRun']).optional().describe('Invocation type.'),
  roleARN: str('Role to assume.'),
});

export const KafkaTrigger = obj('Produces a message to a Kafka topic.', {
  url: z.string().min(1).describe('Broker addresses, comma-separated.'),
  topic: z.string().min(1).describe('Topic.'),
  partition: int('Partition (deprecated upstream; the partitioning key decides).'),
  parameters: parameters(),
  requiredAcks: int('Acknowledgements required: 0, 1 or -1 (all).'),
  compress: bool('Compress messages.'),
  flushFrequency: int('Flush interval in milliseconds.'),
  tls: TLSConfig.optional().describe('TLS settings.'),
  payload: payload(),
  partitioningKey: str('Payload path whose value is the message key.'),
  version: str('Kafka protocol version.'),
  sasl: SASLConfig.optional().describe('SASL settings.'),
  schemaRegistry: SchemaRegistryConfig.optional().describe('Schema registry for Avro.'),
  headers: strMap('Message headers.'),
  secureHeaders: z.array(SecureHeader).optional().describe('Message headers from Secrets or ConfigMaps.'),
});

export const OpenWhiskTrigger = obj('Invokes an OpenWhisk action.', {
  host: z.string().min(1).describe('OpenWhisk host.'),
  version: str('API version.'),
  namespace: str('OpenWhisk namespace.'),
  authToken: secretRef('Secret key holding the auth token.'),
  actionName: z.string().min(1).describe('Action name.'),
  payload: payload(),
  parameters: parameters(),
});

export const PulsarTrigger = obj('Produces a message to a Pulsar topic.', {
  url: z.string().min(1).describe('Pulsar service URL.'),
  topic: z.string().min(1).describe('Topic.'),
  parameters: parameters(),
  payload: payload(),
  tlsTrustCertsSecret: secretRef('Secret key holding trusted CA certificates.'),
  tlsAllowInsecureConnection: bool('Accept untrusted certificates.'),
  tlsValidateHostname: bool('Check the server host name.'),
  tls: TLSConfig.optional().describe('TLS settings.'),
  authTokenSecret: secretRef('Secret key holding a token.'),
  connectionBackoff: Backoff.optional().describe('Reconnect backoff.'),
  authAthenzParams: strMap('Athenz authentication parameters.'),
  authAthenzSecret: secretRef('Secret key holding the Athenz private key.'),
});

export const AzureEventHubsTrigger = obj('Sends an event to Azure Event Hubs.', {
  fqdn: z.string().min(1).describe('Namespace host name.'),
  hubName: z.string().min(1).describe('Event hub name.'),
  sharedAccessKeyName: secretRef('Secret key holding the access key name.'),
  sharedAccessKey: secretRef('Secret key holding the access key.'),
  payload: payload(),
  parameters: parameters(),
});

export const AzureServiceBusTrigger = obj('Sends a message to Azure Service Bus.', {
  connectionString: secretRef('Secret key holding the connection string.'),
  queueName: str('Queue (or use topicName).'),
  topicName: str('Topic (or use queueName).'),
  subscriptionName: str('Subscription.'),
  tls: TLSConfig.optional().describe('TLS settings.'),
  payload: payload(),
  parameters: parameters(),
});

export const CustomTrigger = obj('Calls a custom trigger server over gRPC.', {
  serverURL: z.string().min(1).describe('gRPC server address.'),
  secure: bool('Use TLS.'),
  certSecret: secretRef('Secret key holding the server certificate.'),
  serverNameOverride: str('Server name for TLS checks.'),
  spec: strMap('Trigger definition sent to the server.'),
  parameters: parameters(),
  payload: payload(),
});

export const TRIGGER_TYPES = [
  'argoWorkflow',
  'awsLambda',
  'azureEventHubs',
  'azureServiceBus',
  'custom',
  'email',
  'http',
  'k8s',
  'kafka',
  'log',
  'nats',
  'openWhisk',
  'pulsar',
  'slack',
] as const;
export type TriggerType = (typeof TRIGGER_TYPES)[number];
/** Keys of a template that name a trigger type, including the legacy `openwhisk` spelling. */
const TEMPLATE_TYPE_KEYS = [...TRIGGER_TYPES, 'openwhisk'] as const;

export const ConditionsResetCriteria = obj('When partially met conditions are forgotten.', {
  byTime: obj('A schedule for the reset.', {
    cron: z
      .string()
      .superRefine(refineWith((c: string) => checkCron(c, false)))
      .optional()
      .describe('Cron schedule, e.g. "0 0 * * *" (5 fields, or 6 with seconds first).'),
    timezone: timeZone(
      'Time zone of the schedule as Go names it, e.g. "Europe/Paris" (case-sensitive), "Local" or "UTC" (the default); a "TZ=<zone> " prefix of cron wins.',
    ),
  })
    .optional()
    .describe('A schedule for the reset.'),
});

const conditions = celRules(z.string().min(1).max(4096), CONDITIONS_CEL)
  .optional()
  .describe(
    'When to fire, as a boolean expression over dependency names with &&, || and parentheses. Defaults to all dependencies (AND).',
  );

export const TriggerTemplate = celRules(
  obj('What the trigger does. Exactly one trigger type.', {
    name: z.string().min(1).describe('Trigger name, unique in the Sensor.'),
    conditions,
    conditionsReset: z
      .array(ConditionsResetCriteria)
      .optional()
      .describe('When partial matches are cleared.'),
    argoWorkflow: present(ArgoWorkflowTrigger.optional().describe('Work with Argo Workflows.')),
    awsLambda: present(AWSLambdaTrigger.optional().describe('Invoke an AWS Lambda function.')),
    azureEventHubs: present(AzureEventHubsTrigger.optional().describe('Send to Azure Event Hubs.')),
    azureServiceBus: present(AzureServiceBusTrigger.optional().describe('Send to Azure Service Bus.')),
    custom: present(CustomTrigger.optional().describe('Call a custom trigger server.')),
    email: present(EmailTrigger.optional().describe('Send an email.')),
    http: present(HTTPTrigger.optional().describe('Send an HTTP request.')),
    k8s: present(
      StandardK8STrigger.optional().describe('Create, update, patch or delete a Kubernetes object.'),
    ),
    kafka: present(KafkaTrigger.optional().describe('Produce to Kafka.')),
    log: present(LogTrigger.optional().describe('Log the events.')),
    nats: present(NATSTrigger.optional().describe('Publish on NATS.')),
    openWhisk: present(OpenWhiskTrigger.optional().describe('Invoke an OpenWhisk action.')),
    pulsar: present(PulsarTrigger.optional().describe('Produce to Pulsar.')),
    slack: present(SlackTrigger.optional().describe('Post to Slack.')),
    openwhisk: present(
      OpenWhiskTrigger.optional().describe('Legacy spelling of openWhisk, read the same way.'),
    ),
    atLeastOnce: bool('Legacy placement, ignored as upstream ignores it: set atLeastOnce on the trigger.'),
    policy: opaque('Legacy placement, ignored as upstream ignores it: set policy on the trigger.'),
  }),
  [exactlyOneCel(TEMPLATE_TYPE_KEYS, 'trigger type')],
).superRefine(exactlyOne(TEMPLATE_TYPE_KEYS, 'trigger type'));

export const RateLimit = obj(
  'At most requestsPerUnit trigger starts in any window of one unit (strict, no bursts).',
  {
    unit: z
      .enum(['Second', 'Minute', 'Hour'])
      .optional()
      .describe('Length of the window. Defaults to Second.'),
    requestsPerUnit: z.number().int().min(1).optional().describe('Most starts per window. Defaults to 1.'),
  },
);

export const CircuitBreaker = obj(
  'sluice extension: stops calling a failing target for a while; messages wait un-acked instead of burning retries.',
  {
    consecutiveFailures: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Failures in a row that open the breaker. Defaults to 5.'),
    openDuration: duration(
      'How long the breaker stays open before one probe is let through. Defaults to "30s".',
    ),
    halfOpenProbes: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Successful probes needed to close it again. Defaults to 1.'),
    maxWait: duration(
      'Longest a message waits while the breaker is open before it is dead-lettered. Defaults to "10m".',
    ),
  },
);

export const TriggerPolicy = obj('How a trigger outcome is judged.', {
  k8s: obj('Wait for a created object to reach a labelled state.', {
    backoff: Backoff.optional().describe('How long and how often to check.'),
    labels: strMap('Labels the object must get for success.'),
    errorOnBackoffTimeout: bool('Treat running out of checks as a failure.'),
  })
    .optional()
    .describe('For k8s triggers.'),
  status: obj('HTTP status codes that count as success.', {
    allow: z
      .array(z.number().int().min(100).max(599))
      .describe('Accepted status codes, e.g. [200, 201, 409].'),
  })
    .optional()
    .describe('For HTTP triggers: which status codes count as success (default: any 2xx).'),
});

const triggerFields = {
  template: TriggerTemplate.optional().describe('What the trigger does.'),
  parameters: parameters(),
  policy: TriggerPolicy.optional().describe('How the outcome is judged.'),
  retryStrategy: Backoff.optional().describe(
    'Retries of a failed attempt: steps is the total number of attempts. Without it a failure is dead-lettered at once.',
  ),
  rateLimit: RateLimit.optional().describe('Most trigger starts per time unit.'),
  atLeastOnce: bool(
    'Upstream: ack only after the trigger ran. sluice always acks only after success or dead-lettering; kept for compatibility.',
  ),
  circuitBreaker: CircuitBreaker.optional().describe('sluice extension: pause calls to a failing target.'),
};

/** A trigger without a dead-letter trigger of its own (the CRD schema cannot recurse). */
export const TriggerBase = obj('A trigger.', triggerFields);

export const Trigger = obj(
  'A trigger: what to do when its conditions are met, and how to cope with failure.',
  {
    ...triggerFields,
    dlqTrigger: TriggerBase.optional().describe(
      'Fired with the events (and the error) when this trigger fails for good; a record goes to the dead-letter stream either way. Upstream fires it only with atLeastOnce: true; sluice always does, so it is valid without atLeastOnce.',
    ),
  },
);
export type Trigger = z.infer<typeof Trigger>;

export const EvaluationLimits = obj(
  "sluice extension: limits of the jq and Lua programs (filters, transforms) of this Sensor. They run in worker threads, never on the Sensor's event loop; a program past a limit fails its event, which is dead-lettered.",
  {
    timeout: duration('Longest one program run may take (from when a worker starts it). Defaults to "2s".'),
    memoryMiB: z
      .number()
      .int()
      .min(16)
      .max(4096)
      .optional()
      .describe(
        "Memory of one program engine (jq/Lua) and of a worker's JavaScript heap, in MiB. Defaults to 64.",
      ),
    workers: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .describe('Worker threads that run programs. Defaults to 2.'),
  },
);
export type EvaluationLimits = z.infer<typeof EvaluationLimits>;

export const SensorSpec = obj('Dependencies to wait for and triggers to fire.', {
  dependencies: z.array(EventDependency).min(1).max(MAX_NAMED).describe('The events this Sensor waits for.'),
  triggers: z.array(Trigger).min(1).max(MAX_NAMED).describe('What to do when the dependencies are met.'),
  template: Template.optional().describe('Pod template for the Sensor Deployment.'),
  errorOnFailedRound: bool(
    'Mark the Sensor failed (and log at error level) when any trigger of a round fails.',
  ),
  eventBusName: str('EventBus to consume from. Defaults to "default".'),
  replicas: count('Number of Sensor pods; more than one elect a leader. Defaults to 1.'),
  revisionHistoryLimit: count('Old ReplicaSets kept for rollback.'),
  loggingFields: strMap('Extra fields added to every log line of this Sensor.'),
  evaluation: EvaluationLimits.optional().describe(
    'sluice extension: time and memory limits of the jq and Lua programs.',
  ),
  maxDeliveries: z
    .number()
    .int()
    .min(1)
    .max(100)
    .optional()
    .describe(
      'sluice extension: deliveries of one event the Sensor handles; the next delivery dead-letters it (reason max-deliveries) without handling it again. Waits on an open circuit breaker do not count. Defaults to 5.',
    ),
}).superRefine((spec, ctx) => {
  const depNames = new Set<string>();
  spec.dependencies.forEach((d, i) => {
    if (depNames.has(d.name)) {
      ctx.addIssue({
        code: 'custom',
        path: ['dependencies', i, 'name'],
        message: `duplicate dependency name "${d.name}"`,
      });
    }
    // Events are kept in records keyed by dependency name (partial matches, firings, dead
    // letters): "__proto__" there sets the record's prototype instead, and the event is lost.
    if (d.name === '__proto__') {
      ctx.addIssue({
        code: 'custom',
        path: ['dependencies', i, 'name'],
        message: 'a dependency cannot be named "__proto__"',
      });
    }
    depNames.add(d.name);
  });
  const triggerNames = new Set<string>();
  spec.triggers.forEach((t, i) => {
    const tpl = t.template;
    if (!tpl) return;
    if (triggerNames.has(tpl.name)) {
      ctx.addIssue({
        code: 'custom',
        path: ['triggers', i, 'template', 'name'],
        message: `duplicate trigger name "${tpl.name}"`,
      });
    }
    triggerNames.add(tpl.name);
    if (tpl.conditions !== undefined) {
      try {
        const unknown = [...conditionNames(parseConditions(tpl.conditions))].filter((n) => !depNames.has(n));
        if (unknown.length) {
          ctx.addIssue({
            code: 'custom',
            path: ['triggers', i, 'template', 'conditions'],
            message: `refers to unknown dependencies: ${unknown.join(', ')} (known: ${[...depNames].join(', ')})`,
          });
        }
      } catch (err) {
        const message = err instanceof ConditionSyntaxError ? err.message : String(err);
        ctx.addIssue({
          code: 'custom',
          path: ['triggers', i, 'template', 'conditions'],
          message: `invalid expression: ${message}`,
        });
      }
    }
    const checkParams = (
      params: Array<{ src?: { dependencyName: string } }> | undefined,
      path: Array<string | number>,
    ) =>
      params?.forEach((p, j) => {
        if (p.src && !depNames.has(p.src.dependencyName)) {
          ctx.addIssue({
            code: 'custom',
            path: [...path, j, 'src', 'dependencyName'],
            message: `unknown dependency "${p.src.dependencyName}"`,
          });
        }
      });
    checkParams(t.parameters, ['triggers', i, 'parameters']);
  });
});
export type SensorSpec = z.infer<typeof SensorSpec>;

export const SensorStatus = z
  .looseObject({
    conditions: conditionsField(),
    ...workloadStatusFields(),
    observedGeneration: count('The spec generation last acted on.'),
  })
  .describe('What the controller observed.');

export const Sensor = z.looseObject({
  apiVersion: z.literal('argoproj.io/v1alpha1'),
  kind: z.literal('Sensor'),
  metadata: z.looseObject({ name: z.string().optional(), namespace: z.string().optional() }),
  spec: SensorSpec,
  status: SensorStatus.optional(),
});
export type Sensor = z.infer<typeof Sensor>;

/** Sensor defaults, in one place. */
export function withSensorDefaults(spec: SensorSpec): SensorSpec {
  return {
    ...spec,
    eventBusName: spec.eventBusName || 'default',
    replicas: spec.replicas ?? 1,
    triggers: spec.triggers.map((t) => ({
      ...t,
      ...(t.rateLimit
        ? {
            rateLimit: {
              unit: t.rateLimit.unit ?? 'Second',
              requestsPerUnit: t.rateLimit.requestsPerUnit ?? 1,
            },
          }
        : {}),
      ...(t.template?.http
        ? {
            template: {
              ...t.template,
              http: {
                ...t.template.http,
                method: t.template.http.method ?? 'POST',
                timeout: t.template.http.timeout ?? 60,
              },
            },
          }
        : {}),
    })),
  };
}

export type DataFilter = z.infer<typeof DataFilter>;
export type ExprFilter = z.infer<typeof ExprFilter>;
export type EventContext = z.infer<typeof EventContext>;
export type TimeFilter = z.infer<typeof TimeFilter>;
export type EventDependencyFilter = z.infer<typeof EventDependencyFilter>;
export type EventDependencyTransformer = z.infer<typeof EventDependencyTransformer>;
export type TriggerParameterSource = z.infer<typeof TriggerParameterSource>;
export type TriggerParameter = z.infer<typeof TriggerParameter>;
export type HTTPTrigger = z.infer<typeof HTTPTrigger>;
export type StandardK8STrigger = z.infer<typeof StandardK8STrigger>;
export type ArgoWorkflowTrigger = z.infer<typeof ArgoWorkflowTrigger>;
export type LogTrigger = z.infer<typeof LogTrigger>;
export type NATSTrigger = z.infer<typeof NATSTrigger>;
export type SlackTrigger = z.infer<typeof SlackTrigger>;
export type EmailTrigger = z.infer<typeof EmailTrigger>;
export type TriggerTemplate = z.infer<typeof TriggerTemplate>;
export type TriggerPolicy = z.infer<typeof TriggerPolicy>;
export type RateLimit = z.infer<typeof RateLimit>;
export type CircuitBreaker = z.infer<typeof CircuitBreaker>;
