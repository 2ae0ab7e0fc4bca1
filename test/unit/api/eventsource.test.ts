// EventSource schema: invalid manifests are rejected naming the offending field, cross-field
// rules hold in zod and are present as CEL for the CRD, field names match upstream, and defaults
// are applied in one place.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { type JsonSchema, toStructural } from '../../../src/api/crd.ts';
import {
  CalendarEventSource,
  EventSource,
  EventSourceSpec,
  SOURCE_TYPES,
  withEventSourceDefaults,
} from '../../../src/api/eventsource/index.ts';

type Json = Record<string, unknown>;

const manifest = (spec: Json): Json => ({
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'EventSource',
  metadata: { name: 'es', namespace: 'ns' },
  spec,
});

// Minimal valid entries, mutated by the cases below.
const hook = () => ({ port: '12000', endpoint: '/push', method: 'POST' });
const secret = (key: string) => ({ name: 'creds', key });
const valid = {
  webhook: () => ({ example: hook() }),
  calendar: () => ({ tick: { interval: '10s' } }),
  resource: () => ({ pods: { version: 'v1', resource: 'pods', eventTypes: ['ADD'] } }),
  kafka: () => ({ k: { url: 'kafka:9092', topic: 't', partition: '0' } }),
  file: () => ({ f: { eventType: 'CREATE', watchPathConfig: { directory: '/data/', path: 'x.txt' } } }),
  amqp: () => ({ a: { url: 'amqp://mq:5672', exchangeName: 'e', exchangeType: 'fanout', routingKey: 'r' } }),
  github: () => ({ gh: { webhook: hook(), repositories: [{ owner: 'o', names: ['r'] }], events: ['push'] } }),
  azureServiceBus: () => ({ sb: { connectionString: secret('cs'), queueName: 'q' } }),
  stripe: () => ({ st: { webhook: hook() } }),
  sns: () => ({ s: { webhook: hook(), topicArn: 'arn:aws:sns:x', region: 'us-east-1' } }),
  sqs: () => ({ q: { region: 'us-east-1', queue: 'q' } }),
  pulsar: () => ({ p: { topics: ['t'], url: 'pulsar://p:6650' } }),
  pubSub: () => ({ ps: { topic: 't' } }),
  hdfs: () => ({
    h: { directory: '/tmp/', path: 'x', type: 'CREATE', addresses: ['nn:8020'], hdfsUser: 'root' },
  }),
  minio: () => ({
    m: { endpoint: 'minio:9000', bucket: { name: 'b' }, accessKey: secret('a'), secretKey: secret('s') },
  }),
};

/** A valid spec with `type` set to its minimal entries and `patch` applied to the first entry. */
function specWith(type: keyof typeof valid, patch: (entry: Json) => void = () => {}): Json {
  const map = valid[type]() as Record<string, Json>;
  patch(Object.values(map)[0]!);
  return { [type]: map };
}

function issuesOf(input: unknown) {
  const r = EventSource.safeParse(input);
  expect(r.success, 'expected the manifest to be rejected').toBe(false);
  return (r as z.ZodSafeParseError<unknown>).error.issues;
}

interface InvalidCase {
  name: string;
  input: Json;
  /** Dotted path of the field that must be blamed. */
  path: string;
  /** For typos: the unknown key that must be reported. */
  unknownKey?: string;
  message?: RegExp;
}

const cases: InvalidCase[] = [
  {
    name: 'typo in a spec field',
    input: manifest({ ...specWith('calendar'), eventBusNmae: 'x' }),
    path: 'spec',
    unknownKey: 'eventBusNmae',
  },
  {
    name: 'typo in a source type name',
    input: manifest({ ...specWith('calendar'), webhok: valid.webhook() }),
    path: 'spec',
    unknownKey: 'webhok',
  },
  {
    name: 'typo in a source entry',
    input: manifest(specWith('webhook', (e) => Object.assign(e, { mehtod: 'POST' }))),
    path: 'spec.webhook.example',
    unknownKey: 'mehtod',
  },
  {
    name: 'typo in an embedded webhook endpoint',
    input: manifest(specWith('github', (e) => Object.assign(e.webhook as Json, { edpoint: '/x' }))),
    path: 'spec.github.gh.webhook',
    unknownKey: 'edpoint',
  },
  {
    name: 'typo three objects deep',
    input: manifest(specWith('amqp', (e) => Object.assign(e, { exchangeDeclare: { durabel: true } }))),
    path: 'spec.amqp.a.exchangeDeclare',
    unknownKey: 'durabel',
  },
  {
    name: 'typo in a pod template',
    input: manifest({ ...specWith('calendar'), template: { serviceAcountName: 'sa' } }),
    path: 'spec.template',
    unknownKey: 'serviceAcountName',
  },
  {
    name: 'typo at the top level',
    input: { ...manifest(specWith('calendar')), sepc: {} },
    path: '',
    unknownKey: 'sepc',
  },
  {
    name: 'replicas given as a string',
    input: manifest({ ...specWith('calendar'), replicas: '2' }),
    path: 'spec.replicas',
  },
  {
    name: 'negative replicas',
    input: manifest({ ...specWith('calendar'), replicas: -1 }),
    path: 'spec.replicas',
  },
  {
    name: 'port that is not a number',
    input: manifest(specWith('webhook', (e) => Object.assign(e, { port: 'http' }))),
    path: 'spec.webhook.example.port',
  },
  {
    name: 'port given as a number (upstream wants a string)',
    input: manifest(specWith('webhook', (e) => Object.assign(e, { port: 12000 }))),
    path: 'spec.webhook.example.port',
  },
  {
    name: 'interval that is not a duration',
    input: manifest(specWith('calendar', (e) => Object.assign(e, { interval: '10 seconds' }))),
    path: 'spec.calendar.tick.interval',
  },
  {
    name: 'schedule that is not cron',
    input: manifest(
      specWith('calendar', (e) => Object.assign(e, { interval: undefined, schedule: 'every day' })),
    ),
    path: 'spec.calendar.tick.schedule',
  },
  {
    name: 'bad enum: resource event type',
    input: manifest(specWith('resource', (e) => Object.assign(e, { eventTypes: ['CREATE'] }))),
    path: 'spec.resource.pods.eventTypes.0',
  },
  {
    name: 'bad enum: pulsar subscription type',
    input: manifest(specWith('pulsar', (e) => Object.assign(e, { type: 'failover' }))),
    path: 'spec.pulsar.p.type',
  },
  {
    name: 'bad file operation',
    input: manifest(specWith('file', (e) => Object.assign(e, { eventType: 'create' }))),
    path: 'spec.file.f.eventType',
  },
  {
    name: 'missing required: resource version',
    input: manifest(specWith('resource', (e) => delete e.version)),
    path: 'spec.resource.pods.version',
  },
  {
    name: 'missing required: kafka topic',
    input: manifest(specWith('kafka', (e) => delete e.topic)),
    path: 'spec.kafka.k.topic',
  },
  {
    name: 'missing required: minio credentials',
    input: manifest(specWith('minio', (e) => delete e.accessKey)),
    path: 'spec.minio.m.accessKey',
  },
  {
    name: 'secret reference without key',
    input: manifest(specWith('sns', (e) => Object.assign(e, { accessKey: { name: 'aws' } }))),
    path: 'spec.sns.s.accessKey.key',
  },
  {
    name: 'metadata value that is not a string',
    input: manifest(specWith('webhook', (e) => Object.assign(e, { metadata: { team: 7 } }))),
    path: 'spec.webhook.example.metadata.team',
  },
  {
    name: 'SQS wait time above the AWS limit',
    input: manifest(specWith('sqs', (e) => Object.assign(e, { waitTimeSeconds: 30 }))),
    path: 'spec.sqs.q.waitTimeSeconds',
  },
  {
    name: 'zero max payload size',
    input: manifest(specWith('webhook', (e) => Object.assign(e, { maxPayloadSize: 0 }))),
    path: 'spec.webhook.example.maxPayloadSize',
  },
  {
    name: 'wrong apiVersion',
    input: { ...manifest(specWith('calendar')), apiVersion: 'argoproj.io/v1' },
    path: 'apiVersion',
  },
  {
    name: 'wrong kind',
    input: { ...manifest(specWith('calendar')), kind: 'Sensor' },
    path: 'kind',
  },
  // Cross-field rules.
  {
    name: 'empty spec: no event source at all',
    input: manifest({}),
    path: 'spec',
    message: /at least one event source/,
  },
  {
    name: 'only empty source maps',
    input: manifest({ eventBusName: 'default', webhook: {}, calendar: {} }),
    path: 'spec',
    message: /at least one event source/,
  },
  {
    name: 'duplicate event name across source types',
    input: manifest({ calendar: { same: { interval: '1s' } }, webhook: { same: hook() } }),
    path: 'spec.webhook.same',
    message: /already used under calendar/,
  },
  {
    name: 'calendar with neither schedule nor interval',
    input: manifest({ calendar: { tick: { timezone: 'UTC' } } }),
    path: 'spec.calendar.tick.schedule',
    message: /schedule or interval/,
  },
  {
    name: 'watched path given both by name and by pattern',
    input: manifest(specWith('file', (e) => Object.assign(e.watchPathConfig as Json, { pathRegexp: '.*' }))),
    path: 'spec.file.f.watchPathConfig.path',
    message: /exactly one of path and pathRegexp/,
  },
  {
    name: 'watched directory that is not absolute',
    input: manifest(
      specWith('file', (e) => Object.assign(e.watchPathConfig as Json, { directory: 'data/' })),
    ),
    path: 'spec.file.f.watchPathConfig.directory',
  },
  {
    name: 'AMQP url and urlSecret together',
    input: manifest(specWith('amqp', (e) => Object.assign(e, { urlSecret: secret('url') }))),
    path: 'spec.amqp.a.url',
  },
  {
    name: 'Kafka with neither partition nor consumer group',
    input: manifest(specWith('kafka', (e) => delete e.partition)),
    path: 'spec.kafka.k.consumerGroup',
  },
  {
    name: 'Service Bus queue and topic together',
    input: manifest(
      specWith('azureServiceBus', (e) => Object.assign(e, { topicName: 't', subscriptionName: 's' })),
    ),
    path: 'spec.azureServiceBus.sb.queueName',
  },
  {
    name: 'Service Bus topic without subscription',
    input: manifest(
      specWith('azureServiceBus', (e) => Object.assign(e, { queueName: undefined, topicName: 't' })),
    ),
    path: 'spec.azureServiceBus.sb.subscriptionName',
  },
  {
    name: 'GitHub without repositories or organizations',
    input: manifest(specWith('github', (e) => delete e.repositories)),
    path: 'spec.github.gh.repositories',
  },
  {
    name: 'GitHub with repositories and organizations',
    input: manifest(specWith('github', (e) => Object.assign(e, { organizations: ['org'] }))),
    path: 'spec.github.gh.organizations',
  },
  {
    name: 'Stripe createWebhook without apiKey',
    input: manifest(specWith('stripe', (e) => Object.assign(e, { createWebhook: true }))),
    path: 'spec.stripe.st.apiKey',
  },
  {
    name: 'Pub/Sub topicProjectID without topic',
    input: manifest(
      specWith('pubSub', (e) =>
        Object.assign(e, { topic: undefined, subscriptionID: 's', topicProjectID: 'p' }),
      ),
    ),
    path: 'spec.pubSub.ps.topicProjectID',
  },
  {
    name: 'HDFS keytab without the rest of the Kerberos settings',
    input: manifest(specWith('hdfs', (e) => Object.assign(e, { krbKeytabSecret: secret('keytab') }))),
    path: 'spec.hdfs.h.krbKeytabSecret',
  },
];

describe('EventSource: invalid manifests are rejected naming the field', () => {
  it('covers at least 15 cases', () => expect(cases.length).toBeGreaterThanOrEqual(15));

  for (const c of cases) {
    it(c.name, () => {
      const issues = issuesOf(JSON.parse(JSON.stringify(c.input)));
      const paths = issues.map((i) => i.path.map(String).join('.'));
      // Exactly the mutated field is blamed, nothing else.
      expect(paths).toEqual(paths.map(() => c.path));
      if (c.unknownKey) {
        expect(issues.some((i) => i.code === 'unrecognized_keys' && i.keys.includes(c.unknownKey!))).toBe(
          true,
        );
      }
      if (c.message) expect(issues.map((i) => i.message).join('\n')).toMatch(c.message);
    });
  }

  it('the same bases are valid without the mutation', () => {
    for (const type of Object.keys(valid) as Array<keyof typeof valid>) {
      const r = EventSource.safeParse(manifest(specWith(type)));
      expect(r.success ? '' : `${type}: ${JSON.stringify(r.error.issues)}`).toBe('');
    }
  });
});

describe('EventSource: accepted forms', () => {
  it('takes cron with 5 or 6 fields and descriptors', () => {
    for (const schedule of [
      '30 * * * *',
      '0 30 * * * *',
      '*/5 1-3 * * MON-FRI',
      '@hourly',
      '@every 10s',
      '@every 1m30s',
    ])
      expect(CalendarEventSource.safeParse({ schedule }).success, schedule).toBe(true);
    for (const schedule of ['every day', '* * * *', '@sometimes', '@every ten seconds', '* * * * * * *'])
      expect(CalendarEventSource.safeParse({ schedule }).success, schedule).toBe(false);
  });

  it('takes a core-group resource without group, and upstream legacy fields', () => {
    const r = EventSource.safeParse(
      manifest({
        type: 'webhook',
        resource: valid.resource(),
        stripe: { st: { webhook: hook(), namespace: 'argo-events' } },
      }),
    );
    expect(r.success).toBe(true);
  });

  it('allows the same event name in two EventSources, and distinct names across types', () => {
    expect(
      EventSource.safeParse(manifest({ webhook: { a: hook() }, calendar: { b: { interval: '1s' } } }))
        .success,
    ).toBe(true);
  });
});

describe('EventSource: CRD schema', () => {
  const spec = toStructural(EventSourceSpec);
  const rules = (node: JsonSchema) => (node['x-kubernetes-validations'] ?? []) as Array<{ rule: string }>;
  const props = spec.properties as Record<string, JsonSchema>;
  const entry = (type: string) => props[type]!.additionalProperties as JsonSchema;

  it('has one map per source type and nothing unexpected', () => {
    expect(SOURCE_TYPES).toHaveLength(32);
    expect(Object.keys(props).sort()).toEqual(
      [...SOURCE_TYPES, 'eventBusName', 'template', 'service', 'replicas', 'type', 'replica'].sort(),
    );
  });

  it('mirrors the spec-level rules in CEL: one "at least one source" rule and a uniqueness rule per type', () => {
    const specRules = rules(spec);
    expect(specRules).toHaveLength(SOURCE_TYPES.length);
    expect(specRules[0]!.rule).toContain('self.webhook.size() > 0');
    expect(specRules[1]!.rule).toContain('k in self.webhook');
  });

  it('mirrors the per-source rules in CEL', () => {
    expect(rules(entry('calendar')).map((r) => r.rule)).toEqual(['has(self.schedule) || has(self.interval)']);
    const watch = (entry('file').properties as Record<string, JsonSchema>).watchPathConfig!;
    expect(rules(watch)).toHaveLength(1);
    expect(rules(entry('azureServiceBus'))).toHaveLength(3);
    expect(rules(entry('hdfs'))).toHaveLength(4);
    for (const t of ['amqp', 'kafka', 'github', 'bitbucket', 'bitbucketserver', 'stripe', 'pubSub']) {
      expect(rules(entry(t)).length, t).toBeGreaterThan(0);
    }
  });
});

const upstreamSchema = new URL('../../../../shared/reference/argo-events/schema.json', import.meta.url)
  .pathname;

describe.skipIf(!existsSync(upstreamSchema))('EventSource: field names match upstream', () => {
  const PREFIX = 'io.argoproj.events.v1alpha1.';
  const defs = (
    JSON.parse(readFileSync(upstreamSchema, 'utf8')) as { definitions: Record<string, JsonSchema> }
  ).definitions;
  // Fields sluice accepts beyond upstream's list: legacy fields still found in manifests, and
  // documented sluice extensions.
  const EXTRA = new Set([
    'EventSourceSpec.type',
    'StripeEventSource.namespace',
    'SQSEventSource.namespace',
    'Backoff.cap',
    'EventSourceSpec.replica',
  ]);

  interface ZodNode {
    _zod: {
      def: {
        type: string;
        shape?: Record<string, ZodNode>;
        innerType?: ZodNode;
        element?: ZodNode;
        valueType?: ZodNode;
        in?: ZodNode;
      };
    };
  }
  const unwrap = (s: ZodNode): ZodNode => {
    const d = s._zod.def;
    if (d.type === 'optional' || d.type === 'default' || d.type === 'nullable') return unwrap(d.innerType!);
    // An optional field that takes null is a pipe from nullable(field) (src/api/kit.ts).
    if (d.type === 'pipe') return unwrap(d.in!);
    if (d.type === 'array') return unwrap(d.element!);
    if (d.type === 'record') return unwrap(d.valueType!);
    return s;
  };
  const refOf = (p: JsonSchema): string | undefined => {
    const ref = (p.$ref ??
      (p.items as JsonSchema | undefined)?.$ref ??
      (p.additionalProperties as JsonSchema | undefined)?.$ref) as string | undefined;
    return ref?.startsWith(`#/definitions/${PREFIX}`)
      ? ref.slice(`#/definitions/${PREFIX}`.length)
      : undefined;
  };

  it('every upstream field exists in our schema, recursively, and ours adds only known extras', () => {
    const problems: string[] = [];
    const seen = new Set<string>();
    const compare = (ours: ZodNode, name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      const up = defs[PREFIX + name];
      const shape = unwrap(ours)._zod.def.shape;
      if (!up || !shape) return;
      const upProps = (up.properties ?? {}) as Record<string, JsonSchema>;
      for (const key of Object.keys(upProps)) {
        if (!(key in shape)) problems.push(`${name}.${key}: missing`);
        else {
          const ref = refOf(upProps[key]!);
          if (ref) compare(shape[key]!, ref);
        }
      }
      for (const key of Object.keys(shape)) {
        if (!(key in upProps) && !EXTRA.has(`${name}.${key}`)) problems.push(`${name}.${key}: not upstream`);
      }
    };
    compare(EventSourceSpec as unknown as ZodNode, 'EventSourceSpec');
    expect(problems).toEqual([]);
    expect(seen.size).toBeGreaterThan(45);
  });
});

describe('withEventSourceDefaults', () => {
  it('fills the documented defaults without touching the input', () => {
    const spec = EventSourceSpec.parse({
      webhook: valid.webhook(),
      github: valid.github(),
      calendar: valid.calendar(),
      redisStream: { r: { hostAddress: 'redis:6379', streams: ['s'] } },
      sftp: {
        s: {
          eventType: 'CREATE',
          address: secret('addr'),
          watchPathConfig: { directory: '/in/', pathRegexp: '.*' },
        },
      },
      kafka: { k: { url: 'kafka:9092', topic: 't', consumerGroup: { groupName: 'g' } } },
    });
    const before = structuredClone(spec);
    const out = withEventSourceDefaults(spec);
    expect(spec).toEqual(before);
    expect(out.eventBusName).toBe('default');
    expect(out.replicas).toBe(1);
    expect(out.webhook?.example?.maxPayloadSize).toBe(1_048_576);
    expect(out.github?.gh?.webhook.maxPayloadSize).toBe(1_048_576);
    expect(out.calendar?.tick?.timezone).toBe('UTC');
    expect(out.redisStream?.r).toMatchObject({ consumerGroup: 'argo-events-cg', maxMsgCountPerRead: 10 });
    expect(out.sftp?.s?.pollIntervalDuration).toBe('10s');
    expect(out.kafka?.k?.consumerGroup?.rebalanceStrategy).toBe('range');
    expect('amqp' in out).toBe(false);
    // The defaulted spec is still a valid spec.
    expect(EventSourceSpec.safeParse(out).success).toBe(true);
  });

  it('keeps values the user set, including replicas 0', () => {
    const out = withEventSourceDefaults(
      EventSourceSpec.parse({
        eventBusName: 'bus',
        replicas: 0,
        webhook: { example: { ...hook(), maxPayloadSize: 10 } },
        calendar: { tick: { interval: '1s', timezone: 'Europe/Paris' } },
      }),
    );
    expect(out).toMatchObject({ eventBusName: 'bus', replicas: 0 });
    expect(out.webhook?.example?.maxPayloadSize).toBe(10);
    expect(out.calendar?.tick?.timezone).toBe('Europe/Paris');
  });
});
