// The controller's reconcilers against the real kube-apiserver and nats-server: children field by
// field, status conditions, stream limits read back from NATS, a missing bus as a condition, spec
// changes rolling children, invalid objects without hot loops, and the bus finalizer.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  NetworkingV1Api,
  PolicyV1Api,
} from '@kubernetes/client-node';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sensorBuckets } from '../../../src/bus/sensor-state.ts';
import { calendarBucket, webhookIdsBucket } from '../../../src/bus/source-state.ts';
import { consumerName, eventStreamName, subjectFor } from '../../../src/bus/subjects.ts';
import { busOperations } from '../../../src/controller/bus-ops.ts';
import { Controller } from '../../../src/controller/controller.ts';
import { KubeHttp } from '../../../src/controller/kube-http.ts';
import { publicKeyOf } from '../../../src/controller/reconcile/bus-security.ts';
import {
  BUS_FINALIZER,
  EVENTSOURCE_FINALIZER,
  SENSOR_FINALIZER,
} from '../../../src/controller/reconcile/context.ts';
import { ENV_BUS, ENV_OBJECT } from '../../../src/controller/resources/workload.ts';
import { SimpleKubeConfig } from '../../../src/kube/config.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { installCrds } from '../../harness/crds.ts';
import { waitFor } from '../../harness/proc.ts';
import {
  kubeConfig,
  kubeconfigPath,
  kubeMissing,
  natsMissing,
  natsUrl,
  skipNote,
  uniqueName,
} from '../../harness/shared.ts';

const missing = kubeMissing() ?? natsMissing();
const G = { group: 'argoproj.io', version: 'v1alpha1' };
const plural = { EventBus: 'eventbus', EventSource: 'eventsources', Sensor: 'sensors' } as const;
type Kind = keyof typeof plural;
interface Obj {
  metadata: { name: string; finalizers?: string[]; uid?: string };
  spec?: Record<string, unknown>;
  status?: {
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
    config?: Record<string, unknown>;
  };
}

describe.skipIf(missing)(`controller reconcilers${skipNote(missing)}`, () => {
  const ns = uniqueName('ctrl');
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let controller: Controller;
  let nc: NatsConnection;
  const registry = newRegistry();

  const create = (kind: Kind, name: string, spec: Record<string, unknown>) =>
    custom.createNamespacedCustomObject({
      ...G,
      namespace: ns,
      plural: plural[kind],
      body: { apiVersion: 'argoproj.io/v1alpha1', kind, metadata: { name }, spec },
    });
  const get = async (kind: Kind, name: string): Promise<Obj | undefined> =>
    (await custom
      .getNamespacedCustomObject({ ...G, namespace: ns, plural: plural[kind], name })
      .catch(() => undefined)) as Obj | undefined;
  const patchSpec = (kind: Kind, name: string, spec: Record<string, unknown>) =>
    new KubeHttp(kc).request('PATCH', `/apis/argoproj.io/v1alpha1/namespaces/${ns}/${plural[kind]}/${name}`, {
      body: { spec },
      contentType: 'application/merge-patch+json',
    });
  const condition = async (kind: Kind, name: string, type: string) =>
    (await get(kind, name))?.status?.conditions?.find((c) => c.type === type);
  const waitCondition = (
    kind: Kind,
    name: string,
    type: string,
    want: { status?: string; reason?: string },
  ) =>
    waitFor(
      `${kind}/${name} ${type}=${JSON.stringify(want)}`,
      async () => {
        const c = await condition(kind, name, type);
        return c && (!want.status || c.status === want.status) && (!want.reason || c.reason === want.reason)
          ? c
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  const reconciles = async (kind: string) => {
    const m = await registry.getSingleMetric('sluice_controller_reconcile_total')?.get();
    return (m?.values ?? []).filter((v) => v.labels.kind === kind).reduce((n, v) => n + v.value, 0);
  };

  beforeAll(async () => {
    kc = kubeConfig();
    await installCrds(kubeconfigPath()!, kc);
    custom = kc.makeApiClient(CustomObjectsApi);
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
    nc = await connect({ servers: natsUrl() });
    controller = new Controller({
      // The controller's own kubeconfig reader and its keep-alive connections, as `sluice controller` runs.
      kubeConfig: SimpleKubeConfig.loadFile(kubeconfigPath()!),
      registry,
      logger: createLogger({ level: 'warn' }),
      bus: busOperations({ connectTimeoutMs: 2000 }),
      image: 'sluice:test',
      natsImage: 'nats:test',
      namespace: ns,
      workers: 2,
      leaderElection: { enabled: false, namespace: ns },
    });
    await controller.start();
  });
  afterAll(async () => {
    await controller?.stop();
    await nc?.close();
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('exotic EventBus: finalizer, status.config, stream limits in NATS, and a live streamConfig update', async () => {
    await create('EventBus', 'default', {
      jetstreamExotic: { url: natsUrl(), streamConfig: 'maxMsgs: 500\nmaxAge: 1h' },
    });
    await waitCondition('EventBus', 'default', 'Ready', { status: 'True' });
    const bus = (await get('EventBus', 'default'))!;
    expect(bus.metadata.finalizers).toContain(BUS_FINALIZER);
    expect(bus.status?.config).toEqual({
      jetstream: { url: natsUrl(), streamConfig: 'maxMsgs: 500\nmaxAge: 1h' },
    });
    expect(bus.status?.conditions?.map((c) => [c.type, c.status])).toEqual([
      ['Deployed', 'True'],
      ['StreamReady', 'True'],
      ['Ready', 'True'],
      ['Durable', 'True'],
      ['Lossless', 'True'],
    ]);
    const jsm = await jetstreamManager(nc);
    const stream = eventStreamName({ namespace: ns, busName: 'default' });
    const info = await jsm.streams.info(stream);
    expect(info.config.max_msgs).toBe(500);
    expect(info.config.max_age).toBe(3_600_000_000_000);
    expect(info.config.discard).toBe('new');
    expect(info.config.retention).toBe('interest');

    await custom.patchNamespacedCustomObject({
      ...G,
      namespace: ns,
      plural: 'eventbus',
      name: 'default',
      body: [
        { op: 'replace', path: '/spec/jetstreamExotic/streamConfig', value: 'maxMsgs: 900\nmaxAge: 1h' },
      ],
    });
    await waitFor(
      'live stream maxMsgs 900',
      async () => (await jsm.streams.info(stream)).config.max_msgs === 900,
    );
  });

  it('managed EventBus: secured children (credentials, config and TLS Secrets, Services, StatefulSet, PDB) and a credential per EventSource, rotated on change', async () => {
    await create('EventBus', 'managed', {
      jetstream: { version: '2.12', replicas: 3, persistence: { volumeSize: '5Gi' } },
    });
    // No bus state to make first (a webhook source's request-id bucket would wait for the servers,
    // which do not run here), so it is deployed while the bus is unreachable.
    await create('EventSource', 'mhooks', {
      eventBusName: 'managed',
      calendar: { tick: { interval: '1m' } },
    });
    await waitCondition('EventBus', 'managed', 'StreamReady', { status: 'False', reason: 'BusUnreachable' });
    const bus = (await get('EventBus', 'managed'))!;
    const owner = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'EventBus',
      name: 'managed',
      uid: bus.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    };
    const base = 'eventbus-managed-js';
    const text = async (name: string, key: string) => {
      const s = await core.readNamespacedSecret({ name, namespace: ns }).catch(() => undefined);
      const v = s?.data?.[key];
      return v === undefined ? undefined : Buffer.from(v, 'base64').toString();
    };
    const sts = await apps.readNamespacedStatefulSet({ name: base, namespace: ns });
    expect(sts.metadata?.ownerReferences).toEqual([owner]);
    expect(sts.spec?.replicas).toBe(3);
    expect(sts.spec?.template.spec?.containers[0]?.image).toBe('nats:2.12-alpine');
    expect(sts.spec?.volumeClaimTemplates?.[0]?.spec?.resources?.requests).toEqual({ storage: '5Gi' });
    expect(sts.spec?.template.spec?.securityContext?.runAsNonRoot).toBe(true);
    const admin = await text(`${base}-client-auth`, 'admin.nkey');
    expect(admin).toMatch(/^SU[A-Z2-7]+$/);
    expect((await text(`${base}-client-auth`, 'route.password'))?.length).toBeGreaterThan(20);
    expect(await text(`${base}-tls`, 'ca.crt')).toContain('BEGIN CERTIFICATE');
    // The CA key is in its own Secret, which no pod mounts; the mounted one has none.
    expect(await text(`${base}-ca`, 'ca.key')).toContain('PRIVATE KEY');
    expect(await text(`${base}-tls`, 'ca.key')).toBeUndefined();
    const np = await kc
      .makeApiClient(NetworkingV1Api)
      .readNamespacedNetworkPolicy({ name: base, namespace: ns });
    expect(np.metadata?.ownerReferences).toEqual([owner]);
    expect(np.spec?.ingress?.map((r) => r.ports?.[0]?.port)).toEqual([4222, 6222, 8222]);
    expect(np.spec?.ingress?.[1]?._from).toEqual([{ podSelector: np.spec?.podSelector }]);
    // The EventSource's own credential: a Secret it owns, its public key a user of the bus.
    const cred = 'eventsource-mhooks-bus-credential';
    await waitFor('EventSource credential', async () => (await text(cred, 'nkey')) !== undefined);
    const userOf = async () => publicKeyOf(await text(cred, 'nkey'))!;
    const first = await userOf();
    await waitFor('the config lists it', async () =>
      (await text(`${base}-config`, 'nats-js.conf'))?.includes(first),
    );
    const conf = (await text(`${base}-config`, 'nats-js.conf'))!;
    // Its own account slot, recorded in its Secret; JetStream only in the bus account.
    expect(await text(cred, 'account')).toBe('W0');
    expect(conf).toMatch(new RegExp(`\\n  W0: \\{\\n    users: \\[\\n      \\{ nkey: "${first}"`));
    expect(conf).toMatch(/\n {2}SLUICE: \{\n {4}jetstream: \{ max_file: \d+/);
    expect(conf).toContain('cluster {');
    expect(conf).toMatch(/password: "[0-9a-f]{48}"/);
    expect(conf).toContain('verify: true');
    expect(conf).not.toContain(admin!);
    await waitCondition('EventSource', 'mhooks', 'Deployed', { status: 'True' });
    const dep = async () => apps.readNamespacedDeployment({ name: 'eventsource-mhooks', namespace: ns });
    const env = (await dep()).spec!.template.spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === 'SLUICE_BUS_CREDENTIAL')?.valueFrom?.secretKeyRef).toEqual({
      name: cred,
      key: 'nkey',
    });
    expect(env.find((e) => e.name === 'SLUICE_BUS_TLS_CA')?.valueFrom?.secretKeyRef).toEqual({
      name: `${base}-tls`,
      key: 'ca.crt',
    });
    const handed = JSON.parse(Buffer.from(env.find((e) => e.name === ENV_BUS)!.value!, 'base64').toString());
    expect(handed.inboxPrefix).toMatch(/^_INBOX_e/);
    expect(JSON.stringify(env)).not.toContain(admin!);
    for (const svc of [`${base}-svc`, `${base}-headless`]) {
      expect(
        (await core.readNamespacedService({ name: svc, namespace: ns })).metadata?.ownerReferences,
      ).toEqual([owner]);
    }
    expect(
      (await core.readNamespacedService({ name: `${base}-svc`, namespace: ns })).spec?.ports?.map(
        (p) => p.port,
      ),
    ).toEqual([4222]);
    const pdb = await kc
      .makeApiClient(PolicyV1Api)
      .readNamespacedPodDisruptionBudget({ name: base, namespace: ns });
    expect(pdb.spec?.maxUnavailable).toBe(1);
    expect(bus.status?.config).toMatchObject({
      jetstream: {
        url: `nats://${base}-svc.${ns}.svc:4222`,
        accessSecret: { name: `${base}-client-auth`, key: 'admin.nkey' },
        tls: { caCertSecret: { name: `${base}-tls`, key: 'ca.crt' } },
      },
    });
    // Rotation: a deleted credential is re-issued; the config and the pods follow.
    const hash = (await dep()).spec!.template.metadata!.annotations!['sluice.argoproj.io/spec-hash'];
    await core.deleteNamespacedSecret({ name: cred, namespace: ns });
    await waitFor(
      'a new credential',
      async () => (await text(cred, 'nkey')) !== undefined && (await userOf()) !== first,
    );
    const second = await userOf();
    await waitFor('the config has the new key, not the old', async () => {
      const c = (await text(`${base}-config`, 'nats-js.conf')) ?? '';
      return c.includes(second) && !c.includes(first);
    });
    await waitFor(
      'the Deployment rolls',
      async () =>
        (await dep()).spec!.template.metadata!.annotations!['sluice.argoproj.io/spec-hash'] !== hash,
    );
    // Generated secrets survive reconciles (no churn). A TLS Secret of an older version, with the
    // CA key in it, is re-made without it (the CA stays the same).
    const tlsCa = await text(`${base}-tls`, 'ca.crt');
    const caKey = await text(`${base}-ca`, 'ca.key');
    await core.patchNamespacedSecret({
      name: `${base}-tls`,
      namespace: ns,
      body: [{ op: 'add', path: '/data/ca.key', value: Buffer.from(caKey!).toString('base64') }],
    });
    expect(await text(`${base}-tls`, 'ca.key')).toBe(caKey);
    await patchSpec('EventBus', 'managed', {
      jetstream: { version: '2.12', replicas: 3, persistence: { volumeSize: '5Gi' }, maxPayload: '2MB' },
    });
    await waitFor('config with the new maxPayload', async () =>
      (await text(`${base}-config`, 'nats-js.conf'))?.includes('max_payload: 2MB'),
    );
    expect(await text(`${base}-client-auth`, 'admin.nkey')).toBe(admin);
    expect(await text(`${base}-tls`, 'ca.crt')).toBe(tlsCa);
    expect(await text(`${base}-tls`, 'ca.key')).toBeUndefined();
    expect(await text(`${base}-ca`, 'ca.key')).toBe(caKey);
    await custom.deleteNamespacedCustomObject({
      ...G,
      namespace: ns,
      plural: 'eventsources',
      name: 'mhooks',
    });
  });

  it('Sensor: a missing bus is a condition, and the Sensor deploys when the bus appears (no restart)', async () => {
    await create('Sensor', 'waiting', {
      eventBusName: 'later',
      dependencies: [{ name: 'dep-a', eventSourceName: 'hooks', eventName: 'push' }],
      triggers: [{ template: { name: 'log-it', log: {} } }],
    });
    const c = await waitCondition('Sensor', 'waiting', 'Ready', {
      status: 'False',
      reason: 'EventBusNotFound',
    });
    expect(c.message).toContain('EventBus "later" does not exist');
    await create('EventBus', 'later', { jetstreamExotic: { url: natsUrl() } });
    await waitCondition('Sensor', 'waiting', 'Deployed', { status: 'True' });
    const d = await apps.readNamespacedDeployment({ name: 'sensor-waiting', namespace: ns });
    const ctr = d.spec!.template.spec!.containers[0]!;
    expect(ctr.image).toBe('sluice:test');
    expect(ctr.args).toEqual(['sensor', '--metrics-port', '7777']);
    const env = Object.fromEntries(ctr.env!.map((e) => [e.name, e.value]));
    const handed = JSON.parse(Buffer.from(env[ENV_OBJECT]!, 'base64').toString());
    expect(handed).toMatchObject({ kind: 'Sensor', metadata: { name: 'waiting', namespace: ns } });
    expect(JSON.parse(Buffer.from(env[ENV_BUS]!, 'base64').toString())).toEqual({
      busName: 'later',
      namespace: ns,
      url: natsUrl(),
      provisioned: true,
    });
    // The log trigger is run by this build; a cloud-only trigger type would make this False.
    expect((await condition('Sensor', 'waiting', 'TriggersSupported'))?.status).toBe('True');

    // One replica: no overlap in a rollout (Recreate); two elect a leader (RollingUpdate), and
    // back (the API server's defaulted rollingUpdate settings must not block the switch).
    expect(d.spec?.strategy?.type).toBe('Recreate');
    const hash = d.spec!.template.metadata!.annotations!['sluice.argoproj.io/spec-hash'];
    await patchSpec('Sensor', 'waiting', { replicas: 2 });
    await waitFor('Deployment to roll', async () => {
      const d2 = await apps.readNamespacedDeployment({ name: 'sensor-waiting', namespace: ns });
      return (
        d2.spec?.replicas === 2 &&
        d2.spec.strategy?.type === 'RollingUpdate' &&
        d2.spec.template.metadata?.annotations?.['sluice.argoproj.io/spec-hash'] !== hash
      );
    });
    await patchSpec('Sensor', 'waiting', { replicas: 1 });
    await waitFor('Deployment back to Recreate', async () => {
      const d3 = await apps.readNamespacedDeployment({ name: 'sensor-waiting', namespace: ns });
      return d3.spec?.replicas === 1 && d3.spec.strategy?.type === 'Recreate';
    });
  });

  it('EventSource: Deployment plus a Service for webhook ports, pruned when the spec drops it', async () => {
    await create('EventSource', 'hooks', {
      service: { ports: [{ port: 12000, targetPort: 12000 }] },
      webhook: { push: { port: '12000', endpoint: '/push', method: 'POST' } },
    });
    await waitCondition('EventSource', 'hooks', 'Deployed', { status: 'True' });
    const svc = await core.readNamespacedService({ name: 'hooks-eventsource-svc', namespace: ns });
    expect(svc.spec?.ports?.[0]?.port).toBe(12000);
    expect((await condition('EventSource', 'hooks', 'SourcesProvided'))?.status).toBe('True');
    await custom.patchNamespacedCustomObject({
      ...G,
      namespace: ns,
      plural: 'eventsources',
      name: 'hooks',
      body: [{ op: 'remove', path: '/spec/service' }],
    });
    await waitFor('Service to be pruned', async () =>
      core.readNamespacedService({ name: 'hooks-eventsource-svc', namespace: ns }).then(
        () => false,
        () => true,
      ),
    );
  });

  it('an invalid Sensor the schema cannot catch gets a condition naming it, without a hot loop', async () => {
    await create('Sensor', 'broken', {
      dependencies: [{ name: 'dep-a', eventSourceName: 'hooks', eventName: 'push' }],
      triggers: [{ template: { name: 't', conditions: 'dep-a && ghost', log: {} } }],
    });
    const c = await waitCondition('Sensor', 'broken', 'TriggersProvided', {
      status: 'False',
      reason: 'InvalidSpec',
    });
    expect(c.message).toContain('ghost');
    const before = await reconciles('Sensor');
    await new Promise((r) => setTimeout(r, 3000));
    expect((await reconciles('Sensor')) - before).toBeLessThanOrEqual(2);
  });

  it('a bad cron or time zone is Ready=False (InvalidSpec) at once, not a pod that fails later', async () => {
    await create('EventSource', 'badcron', {
      calendar: { tick: { schedule: '61 * * * *', timezone: 'Mars/Olympus' } },
    });
    const c = await waitCondition('EventSource', 'badcron', 'SourcesProvided', {
      status: 'False',
      reason: 'InvalidSpec',
    });
    expect(c.message).toMatch(/cron|time zone/);
    expect((await condition('EventSource', 'badcron', 'Ready'))?.status).toBe('False');
    await create('Sensor', 'badreset', {
      dependencies: [{ name: 'dep-a', eventSourceName: 'hooks', eventName: 'push' }],
      triggers: [{ template: { name: 't', log: {}, conditionsReset: [{ byTime: { cron: 'daily' } }] } }],
    });
    const r = await waitCondition('Sensor', 'badreset', 'TriggersProvided', {
      status: 'False',
      reason: 'InvalidSpec',
    });
    expect(r.message).toContain('daily');
  });

  it('owns bus state: consumers and KV made before the Sensor runs, pruned, deleted by the finalizer; a re-created Sensor starts clean', async () => {
    const jsm = await jetstreamManager(nc);
    const busRef = { namespace: ns, busName: 'default' };
    const stream = eventStreamName(busRef);
    const consumerNames = async () => {
      const out: string[] = [];
      for await (const c of jsm.consumers.list(stream)) out.push(c.name);
      return out.sort();
    };
    const streamNames = async () => {
      const out: string[] = [];
      for await (const n of jsm.streams.names()) out.push(n);
      return out;
    };
    // An orphan left by a Sensor deleted before the controller owned state: removed by the bus.
    await jsm.consumers.add(stream, {
      durable_name: consumerName('ghost', 'd'),
      ack_policy: AckPolicy.Explicit,
      filter_subject: subjectFor(busRef, 'hooks', 'x'),
    });
    await patchSpec('EventBus', 'default', {
      jetstreamExotic: { url: natsUrl(), streamConfig: 'maxMsgs: 901\nmaxAge: 1h' },
    });
    await waitFor(
      'orphan consumer removed',
      async () => !(await consumerNames()).includes(consumerName('ghost', 'd')),
    );

    const deps = [
      { name: 'a', eventSourceName: 'hooks', eventName: 'x' },
      { name: 'b', eventSourceName: 'hooks', eventName: 'y' },
    ];
    const triggers = [{ template: { name: 't', log: {} } }];
    await create('Sensor', 'owner', { dependencies: deps, triggers });
    await waitCondition('Sensor', 'owner', 'Deployed', { status: 'True' });
    expect((await get('Sensor', 'owner'))?.metadata.finalizers).toContain(SENSOR_FINALIZER);
    expect(await consumerNames()).toEqual([consumerName('owner', 'a'), consumerName('owner', 'b')].sort());
    const buckets = sensorBuckets(ns, 'owner');
    expect(await streamNames()).toEqual(
      expect.arrayContaining([`KV_${buckets.processed}`, `KV_${buckets.conditions}`]),
    );
    const processed = await new Kvm(nc).open(buckets.processed);
    await processed.put('seen', 'done');
    // An event waiting for this Sensor is kept (interest), and goes with the Sensor.
    await jetstream(nc).publish(subjectFor(busRef, 'hooks', 'x'), 'e1', { msgID: 'e1' });

    await patchSpec('Sensor', 'owner', { dependencies: [deps[0]], triggers });
    await waitFor(
      'consumer of the removed dependency deleted',
      async () => (await consumerNames()).join() === consumerName('owner', 'a'),
    );

    await custom.deleteNamespacedCustomObject({ ...G, namespace: ns, plural: 'sensors', name: 'owner' });
    await waitFor('Sensor gone', async () => (await get('Sensor', 'owner')) === undefined, {
      timeoutMs: 30_000,
    });
    expect(await consumerNames()).toEqual([]);
    const left = await streamNames();
    expect(left).not.toContain(`KV_${buckets.processed}`);
    expect(left).not.toContain(`KV_${buckets.conditions}`);
    await waitFor(
      'its pending event released',
      async () => (await jsm.streams.info(stream)).state.messages === 0,
    );

    await create('Sensor', 'owner', { dependencies: [deps[0]], triggers });
    await waitCondition('Sensor', 'owner', 'Deployed', { status: 'True' });
    const fresh = await new Kvm(nc).open(buckets.processed);
    expect(await fresh.get('seen')).toBeNull();
    const ci = await jsm.consumers.info(stream, consumerName('owner', 'a'));
    // A new consumer: nothing delivered, nothing old pending.
    expect([ci.delivered.consumer_seq, ci.num_pending, ci.num_ack_pending]).toEqual([0, 0, 0]);
    await custom.deleteNamespacedCustomObject({ ...G, namespace: ns, plural: 'sensors', name: 'owner' });
    await waitFor('Sensor gone', async () => (await get('Sensor', 'owner')) === undefined, {
      timeoutMs: 30_000,
    });

    // A calendar that persists its last fire and a webhook (its shared request ids): the controller
    // makes their buckets (the ids expiring after the duplicates window), and removes them.
    await create('EventSource', 'cal', {
      calendar: { tick: { interval: '1h', persistence: { catchup: { enabled: true } } } },
      webhook: { orders: { port: '12000', endpoint: '/orders', method: 'POST' } },
    });
    await waitCondition('EventSource', 'cal', 'Deployed', { status: 'True' });
    expect((await get('EventSource', 'cal'))?.metadata.finalizers).toContain(EVENTSOURCE_FINALIZER);
    const sourceBuckets = [`KV_${calendarBucket(ns, 'cal')}`, `KV_${webhookIdsBucket(ns, 'cal')}`];
    expect(await streamNames()).toEqual(expect.arrayContaining(sourceBuckets));
    const ids = await (await jetstreamManager(nc)).streams.info(sourceBuckets[1]!);
    expect(ids.config).toMatchObject({ max_age: 120_000 * 1e6, discard: 'old', allow_direct: false });
    await custom.deleteNamespacedCustomObject({ ...G, namespace: ns, plural: 'eventsources', name: 'cal' });
    await waitFor('EventSource gone', async () => (await get('EventSource', 'cal')) === undefined, {
      timeoutMs: 30_000,
    });
    for (const b of sourceBuckets) expect(await streamNames()).not.toContain(b);
  });

  it('a bus in use refuses deletion; once unused its streams and finalizer go', async () => {
    await create('EventSource', 'user', { eventBusName: 'later', calendar: { tick: { interval: '1m' } } });
    await waitCondition('EventSource', 'user', 'Deployed', { status: 'True' });
    await custom.deleteNamespacedCustomObject({ ...G, namespace: ns, plural: 'eventbus', name: 'later' });
    const c = await waitCondition('EventBus', 'later', 'Ready', { status: 'False', reason: 'InUse' });
    expect(c.message).toContain('EventSource/user');
    expect(c.message).toContain('Sensor/waiting');
    for (const [kind, name] of [
      ['EventSource', 'user'],
      ['Sensor', 'waiting'],
    ] as const) {
      await custom.deleteNamespacedCustomObject({ ...G, namespace: ns, plural: plural[kind], name });
    }
    await waitFor('EventBus to be gone', async () => (await get('EventBus', 'later')) === undefined, {
      timeoutMs: 30_000,
    });
    const jsm = await jetstreamManager(nc);
    const names: string[] = [];
    for await (const s of jsm.streams.names()) names.push(s);
    expect(names).not.toContain(eventStreamName({ namespace: ns, busName: 'later' }));
  });

  it('a managed bus being deleted that cannot be reached (its namespace is going) does not hold its users for the give-up time', async () => {
    await create('EventBus', 'doomed', { jetstream: { replicas: 1 } });
    await create('Sensor', 'dsensor', {
      eventBusName: 'doomed',
      dependencies: [{ name: 'd', eventSourceName: 'x', eventName: 'y' }],
      triggers: [{ template: { name: 't', log: {} } }],
    });
    // No server runs here (no kubelet): the Sensor holds its state finalizer and waits for the bus.
    await waitFor('the Sensor to hold its finalizer', async () =>
      (await get('Sensor', 'dsensor'))?.metadata.finalizers?.includes(SENSOR_FINALIZER),
    );
    const c = await waitCondition('Sensor', 'dsensor', 'Deployed', { reason: 'BusStateNotReady' });
    // The bus was unreachable for NATS reasons; every API call on the way worked.
    expect(c.message).not.toMatch(/\/api\/v1|Bad Request/);
    const started = Date.now();
    // As a namespace deletion does: everything at once.
    for (const [kind, name] of [
      ['EventBus', 'doomed'],
      ['Sensor', 'dsensor'],
    ] as const)
      await custom.deleteNamespacedCustomObject({ ...G, namespace: ns, plural: plural[kind], name });
    await waitFor(
      'the Sensor and the EventBus to be gone',
      async () =>
        (await get('Sensor', 'dsensor')) === undefined && (await get('EventBus', 'doomed')) === undefined,
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    console.log(`managed bus and its Sensor deleted in ${Date.now() - started} ms`);
  });
});
