// EventBus: where events are made durable. sluice runs on JetStream, either a server the
// controller manages (`jetstream`) or one that already exists (`jetstreamExotic`). The older
// `nats` (NATS Streaming) and `kafka` buses are accepted so upstream manifests apply, and the
// controller reports them as unsupported in status.
import { z } from 'zod';
import {
  ContainerTemplate,
  conditionsField,
  KafkaConsumerGroup,
  Metadata,
  PersistenceStrategy,
  SASLConfig,
  TLSConfig,
} from './common.ts';
import {
  affinity,
  imagePullSecrets,
  nodeSelector,
  podSecurityContext,
  secretRef,
  tolerations,
} from './k8s.ts';
import { bool, celRules, count, exactlyOne, exactlyOneCel, int, obj, str, strList } from './kit.ts';

/** sluice extension: TLS of a managed bus (clients and routes). */
export const ManagedBusTls = obj(
  'sluice extension: TLS of the managed bus, for clients and between servers (routes, mutual TLS). On by default with a CA and certificate the controller generates and keeps in the Secret <eventbus>-js-tls.',
  {
    secretName: str(
      'Use this Secret instead (cert-manager style: tls.crt, tls.key, ca.crt), valid for <statefulset>-N.<headless service>.<namespace>.svc and <client service>.<namespace>.svc and usable for client and server auth.',
    ),
    disabled: bool(
      'Turn TLS off (clients and routes in plain text). Not recommended; routes still need their password.',
    ),
  },
);

/** "1MB", "512KB", "1048576": a byte size as nats-server reads it. */
const BYTE_SIZE = /^[0-9]+(\.[0-9]+)?\s*([KMGT]i?B?|[kmgt]i?b?)?$/;

export const JetStreamBus = celRules(
  obj('A JetStream server that the controller deploys and manages as a StatefulSet.', {
    version: str(
      'nats-server version to run, e.g. "2.12" or "latest". Picks the image unless the controller maps it otherwise.',
    ),
    replicas: count(
      'Number of nats-server pods. 1, or 3 or more for a quorum; 2 is not allowed. Defaults to 3.',
    ),
    containerTemplate: ContainerTemplate.optional().describe('Overrides for the nats-server container.'),
    reloaderContainerTemplate: ContainerTemplate.optional().describe(
      'Overrides for the config-reloader container.',
    ),
    metricsContainerTemplate: ContainerTemplate.optional().describe(
      'Overrides for the metrics exporter container.',
    ),
    persistence: PersistenceStrategy.optional().describe(
      'Volume claim for the JetStream store. Without it the store lives in an emptyDir and dies with the pod.',
    ),
    metadata: Metadata.optional().describe('Labels and annotations for the server pods.'),
    nodeSelector: nodeSelector(),
    tolerations: tolerations(),
    securityContext: podSecurityContext(),
    imagePullSecrets: imagePullSecrets(),
    priorityClassName: str('Priority class of the server pods.'),
    priority: int('Pod priority value; normally set from priorityClassName.'),
    affinity: affinity(),
    serviceAccountName: str('Service account the server pods run as.'),
    settings: str(
      'Extra nats-server configuration (its own config syntax), e.g. JetStream store limits. Merged into the generated config.',
    ),
    startArgs: strList('Extra command-line arguments for nats-server, e.g. ["-D"] for debug logs.'),
    streamConfig: str(
      'Settings of the event stream, as YAML text: maxMsgs, maxBytes, maxAge, maxMsgSize, replicas, duplicates, retention, discard, and the sluice bus limits maxMsgsPerSubject, dlqMaxBytes, dlqMaxAge, kvMaxBytes. Unset keys take sluice defaults.',
    ),
    maxPayload: z
      .string()
      .regex(BYTE_SIZE, { message: 'must be a size such as "1MB" or "1048576"' })
      .optional()
      .describe('Largest message the server accepts, e.g. "1MB" (the default).'),
    // sluice extension
    tls: ManagedBusTls.optional(),
  }),
  [
    {
      rule: '!has(self.replicas) || self.replicas != 2',
      message: 'replicas may be 1 or 3 and more, but not 2 (no quorum)',
      fieldPath: '.replicas',
    },
  ],
).superRefine((v, ctx) => {
  if (v.replicas === 2) {
    ctx.addIssue({
      code: 'custom',
      path: ['replicas'],
      message: 'replicas may be 1 or 3 and more, but not 2 (no quorum)',
    });
  }
});

export const JetStreamConfig = obj('How to reach an existing JetStream server.', {
  url: str('Server URL(s), comma-separated, e.g. "nats://nats.example:4222".'),
  accessSecret: secretRef('Secret key holding credentials: a token, "user:password", or a .creds file.'),
  tls: TLSConfig.optional().describe('TLS settings for the connection.'),
  streamConfig: str(
    'Settings of the event stream, as YAML text: maxMsgs, maxBytes, maxAge, maxMsgSize, replicas, duplicates, retention, discard, and the sluice bus limits maxMsgsPerSubject, dlqMaxBytes, dlqMaxAge, kvMaxBytes.',
  ),
});

const NativeStrategy = obj(
  'A NATS Streaming server deployed by the controller (upstream only; not supported by sluice).',
  {
    replicas: count('Number of server pods.'),
    auth: z.enum(['none', 'token']).optional().describe('Client authentication.'),
    persistence: PersistenceStrategy.optional().describe('Volume claim for the store.'),
    containerTemplate: ContainerTemplate.optional().describe('Overrides for the server container.'),
    metricsContainerTemplate: ContainerTemplate.optional().describe('Overrides for the metrics container.'),
    nodeSelector: nodeSelector(),
    tolerations: tolerations(),
    metadata: Metadata.optional().describe('Labels and annotations for the pods.'),
    securityContext: podSecurityContext(),
    maxAge: str('How long messages are kept.'),
    imagePullSecrets: imagePullSecrets(),
    serviceAccountName: str('Service account of the pods.'),
    priorityClassName: str('Priority class of the pods.'),
    priority: int('Pod priority value.'),
    affinity: affinity(),
    maxMsgs: count('Most messages kept per channel.'),
    maxBytes: str('Most bytes kept per channel.'),
    maxSubs: count('Most subscriptions per channel.'),
    maxPayload: str('Largest message accepted.'),
    raftHeartbeatTimeout: str('Raft heartbeat timeout.'),
    raftElectionTimeout: str('Raft election timeout.'),
    raftLeaseTimeout: str('Raft lease timeout.'),
    raftCommitTimeout: str('Raft commit timeout.'),
  },
);

const NATSConfig = obj(
  'How to reach an existing NATS Streaming server (upstream only; not supported by sluice).',
  {
    url: str('Server URL.'),
    clusterID: str('NATS Streaming cluster id.'),
    auth: z.enum(['none', 'token']).optional().describe('Client authentication.'),
    accessSecret: secretRef('Secret key holding the token.'),
  },
);

export const NATSBus = obj('NATS Streaming bus (upstream only; sluice reports it as unsupported).', {
  native: NativeStrategy.optional().describe('A server the controller deploys.'),
  exotic: NATSConfig.optional().describe('An existing server.'),
});

export const KafkaBus = obj('Kafka bus (upstream only; sluice reports it as unsupported).', {
  url: str('Broker addresses, comma-separated.'),
  topic: str('Topic events are written to.'),
  version: str('Kafka protocol version.'),
  tls: TLSConfig.optional().describe('TLS settings.'),
  sasl: SASLConfig.optional().describe('SASL settings.'),
  consumerGroup: KafkaConsumerGroup.optional().describe('Consumer group settings.'),
  partitioner: str('Partitioner used when producing.'),
});

const BUS_TYPES = ['jetstream', 'jetstreamExotic', 'nats', 'kafka'] as const;

export const EventBusSpec = celRules(
  obj('Which bus to run or connect to. Exactly one of jetstream, jetstreamExotic, nats, kafka.', {
    jetstream: JetStreamBus.optional().describe('Run a JetStream server managed by the controller.'),
    jetstreamExotic: JetStreamConfig.optional().describe('Use an existing JetStream server.'),
    nats: NATSBus.optional().describe('NATS Streaming bus; accepted for compatibility, not supported.'),
    kafka: KafkaBus.optional().describe('Kafka bus; accepted for compatibility, not supported.'),
    // sluice extension
    deletionPolicy: z
      .enum(['Delete', 'Retain'])
      .optional()
      .describe(
        'sluice extension: what happens to the JetStream streams when the EventBus is deleted. Delete (default) removes them; Retain keeps them and their events.',
      ),
  }),
  [exactlyOneCel(BUS_TYPES, 'bus type')],
).superRefine(exactlyOne(BUS_TYPES, 'bus type'));
export type EventBusSpec = z.infer<typeof EventBusSpec>;

export const BusConfig = z
  .looseObject({
    jetstream: z
      .looseObject({
        url: z.string().optional().describe('Server URL(s) clients connect to.'),
        accessSecret: z
          .looseObject({
            name: z.string().optional().describe('Name of the Secret.'),
            key: z.string().describe('Key inside the Secret.'),
          })
          .optional()
          .describe('Secret key holding the client credential.'),
        streamConfig: z.string().optional().describe('Stream settings in effect, as YAML text.'),
      })
      .optional()
      .describe('Connection details of the JetStream server.'),
  })
  .describe('How clients reach the bus, filled in by the controller.');

export const EventBusStatus = z
  .looseObject({
    conditions: conditionsField(),
    config: BusConfig.optional().describe('How clients reach the bus, filled in by the controller.'),
    observedGeneration: count('The spec generation the controller last acted on.'),
  })
  .describe('What the controller observed.');

export const EventBus = z.looseObject({
  apiVersion: z.literal('argoproj.io/v1alpha1'),
  kind: z.literal('EventBus'),
  metadata: z.looseObject({ name: z.string().optional(), namespace: z.string().optional() }),
  spec: EventBusSpec,
  status: EventBusStatus.optional(),
});
export type EventBus = z.infer<typeof EventBus>;

/** The defaults of an EventBus, applied in one place. */
export function withEventBusDefaults(spec: EventBusSpec): EventBusSpec {
  if (!spec.jetstream) return spec;
  return {
    ...spec,
    jetstream: {
      ...spec.jetstream,
      replicas: spec.jetstream.replicas ?? 3,
      maxPayload: spec.jetstream.maxPayload ?? '1MB',
    },
  };
}
