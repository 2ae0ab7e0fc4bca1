// One `sluice dev` session: every EventBus maps to streams on the one local NATS, every
// EventSource and Sensor runs in this process. `apply` takes the full set of manifests each time
// and starts, restarts (changed spec) or stops objects to match, so a reload touches only what
// changed. Problems with one object are reported and do not stop the others.
import type { KubeConfig } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Registry } from 'prom-client';
import { EventSourceSpec } from '../api/eventsource.ts';
import type { ConfigMapKeySelector, SecretKeySelector } from '../api/k8s.ts';
import { SensorSpec } from '../api/sensor.ts';
import { parseStreamConfig } from '../api/stream-config.ts';
import { deleteSensorConsumers, sensorMaxDeliver } from '../bus/consumer.ts';
import { dropLimits, droppedCounter, watchDrops } from '../bus/drops.ts';
import { Publisher } from '../bus/publisher.ts';
import { deleteOrphanConsumers, provisionSensorState } from '../bus/sensor-state.ts';
import { ensureStreams } from '../bus/streams.ts';
import { type BusRef, eventStreamName } from '../bus/subjects.ts';
import { startEventSource } from '../eventsources/runtime.ts';
import { hiddenHeadersFromEnv, idHeadersFromEnv } from '../eventsources/webhook/headers.ts';
import { limitsFromEnv } from '../eventsources/webhook/limits.ts';
import { kubeConfigSource, loadClientKubeConfig } from '../kube/client-config.ts';
import type { Logger } from '../observability/logger.ts';
import { RUNNERS } from '../sensors/runners.ts';
import { startSensor } from '../sensors/runtime.ts';
import { sensorDependencyMatcher, sensorParameters } from '../sensors/wiring.ts';
import type { DevManifests, DevObject } from './manifests.ts';

export interface DevSessionOptions {
  nc: NatsConnection;
  registry: Registry;
  log: Logger;
  /** Where the user is told things (webhook URLs, problems). */
  say(line: string): void;
  /** Bind address for webhook servers. */
  host: string;
}

/** What one `apply` left not running, and why (one entry per object or unreadable manifest). */
export interface NotStarted {
  /** `Kind/namespace/name`, or the file when the object could not be read at all. */
  what: string;
  reason: string;
}

interface Running {
  fingerprint: string;
  stop(): Promise<void>;
}

/** The current kubeconfig, when there is one ($KUBECONFIG or ~/.kube/config). */
export function devKubeConfig(): { kc?: KubeConfig; where: string } {
  const source = kubeConfigSource();
  if (!source?.file) return { where: 'none' };
  try {
    const kc = loadClientKubeConfig();
    return { kc, where: `${source.file} (context ${kc.getCurrentContext()})` };
  } catch (err) {
    return { where: `none (${(err as Error).message})` };
  }
}

const BUS_SUFFIX_DEFAULT = 'default';

export class DevSession {
  private readonly o: DevSessionOptions;
  private readonly running = new Map<string, Running>();
  private readonly buses = new Map<string, string>();
  /** Stops the drop watch of each bus. */
  private readonly watches = new Map<string, () => void>();
  private readonly kube = devKubeConfig();
  /** Webhook bounds and masked headers, from SLUICE_WEBHOOK_* as for `sluice eventsource`. */
  private readonly limits = limitsFromEnv();
  private readonly hiddenHeaders = hiddenHeadersFromEnv();
  private readonly idHeaders = idHeadersFromEnv();
  private manifests: DevManifests | undefined;

  constructor(o: DevSessionOptions) {
    this.o = o;
  }

  /** How many EventSources and Sensors run now. */
  get runningCount(): number {
    return this.running.size;
  }

  get kubeDescription(): string {
    return this.kube.where;
  }

  private secret = async (namespace: string, sel: SecretKeySelector): Promise<string> => {
    const local = this.manifests?.secrets.get(`${namespace}/${sel.name}`);
    if (local && sel.key in local) return local[sel.key]!;
    if (!this.kube.kc) {
      throw new Error(
        `Secret ${namespace}/${sel.name} key ${sel.key} is not in the manifests and there is no kubeconfig to read it from`,
      );
    }
    const { CoreV1Api } = await import('@kubernetes/client-node');
    const s = await this.kube.kc
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ name: sel.name ?? '', namespace });
    const v = s.data?.[sel.key];
    if (v === undefined) throw new Error(`Secret ${namespace}/${sel.name} has no key ${sel.key}`);
    return Buffer.from(v, 'base64').toString('utf8');
  };

  private configMap = async (namespace: string, sel: ConfigMapKeySelector): Promise<string> => {
    const local = this.manifests?.configMaps.get(`${namespace}/${sel.name}`);
    if (local && sel.key in local) return local[sel.key]!;
    if (!this.kube.kc) {
      throw new Error(
        `ConfigMap ${namespace}/${sel.name} is not in the manifests and there is no kubeconfig`,
      );
    }
    const { CoreV1Api } = await import('@kubernetes/client-node');
    const c = await this.kube.kc
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ name: sel.name ?? '', namespace });
    const v = c.data?.[sel.key];
    if (v === undefined) throw new Error(`ConfigMap ${namespace}/${sel.name} has no key ${sel.key}`);
    return v;
  };

  private kubeConfig(): (() => KubeConfig) | undefined {
    const kc = this.kube.kc;
    return kc ? () => kc : undefined;
  }

  /** Makes sure the streams of `bus` exist with the EventBus's streamConfig (defaults if none). */
  private async ensureBus(bus: BusRef, spec?: Record<string, unknown>): Promise<void> {
    const id = `${bus.namespace}/${bus.busName}`;
    const js = (spec?.jetstream ?? spec?.jetstreamExotic) as { streamConfig?: string } | undefined;
    const text = js?.streamConfig ?? '';
    if (this.buses.get(id) === text) return;
    const cfg = parseStreamConfig(text);
    if (!cfg.ok) throw new Error(`EventBus ${id}: streamConfig: ${cfg.errors.join('; ')}`);
    await ensureStreams(await jetstreamManager(this.o.nc), bus, cfg.settings, 1);
    this.buses.set(id, text);
    // As the controller does: every drop (maxAge, discard: old) is logged and counted.
    this.watches.get(id)?.();
    const dropped = droppedCounter(this.o.registry);
    this.watches.set(
      id,
      watchDrops(
        () => jetstreamManager(this.o.nc),
        eventStreamName(bus),
        dropLimits(cfg.settings),
        (d) => {
          dropped.inc({ namespace: bus.namespace, eventbus: bus.busName, reason: d.reason }, d.dropped);
          this.o.say(
            `problem: EventBus ${id} dropped ${d.dropped} accepted event(s) (${d.reason}) before every Sensor consumed them`,
          );
        },
      ),
    );
    if (cfg.settings.discard === 'old')
      this.o.say(`warning: EventBus ${id}: discard: old is lossy; dropped events are logged and counted`);
  }

  /**
   * Brings the running objects in line with `m`; returns every object (or manifest) that is not
   * running afterwards and why, for the start summary. Problems are also said as they happen.
   */
  async apply(m: DevManifests): Promise<NotStarted[]> {
    this.manifests = m;
    const failed: NotStarted[] = m.problems.map((p) => ({ what: 'invalid manifest', reason: p }));
    for (const p of m.problems) this.o.say(`problem: ${p}`);
    const want = new Map(m.objects.map((o) => [`${o.kind}/${o.namespace}/${o.name}`, o]));
    // Stop what is gone or changed.
    for (const [id, r] of [...this.running]) {
      const o = want.get(id);
      if (!o || o.fingerprint !== r.fingerprint) {
        await r.stop();
        this.running.delete(id);
        if (!o) this.o.say(`stopped ${id}`);
      }
    }
    for (const o of m.objects.filter((x) => x.kind === 'EventBus')) {
      try {
        await this.ensureBus({ namespace: o.namespace, busName: o.name }, o.spec);
      } catch (err) {
        this.o.say(`problem: ${(err as Error).message}`);
        failed.push({ what: `EventBus/${o.namespace}/${o.name}`, reason: (err as Error).message });
      }
    }
    // What the controller does before any pod runs: every Sensor's consumers exist before an
    // EventSource publishes (under interest retention an event nobody consumes yet is not kept).
    for (const o of m.objects.filter((x) => x.kind === 'Sensor')) {
      try {
        await this.provisionSensor(o);
      } catch (err) {
        this.o.say(
          `problem: Sensor/${o.namespace}/${o.name}: bus state not created: ${(err as Error).message}`,
        );
      }
    }
    await this.pruneConsumers(m);
    // Sensors first, so they consume from the start.
    const order = (k: string) => (k === 'Sensor' ? 0 : 1);
    for (const o of m.objects
      .filter((x) => x.kind !== 'EventBus')
      .sort((a, b) => order(a.kind) - order(b.kind))) {
      const id = `${o.kind}/${o.namespace}/${o.name}`;
      if (this.running.has(id)) continue;
      try {
        const r = o.kind === 'EventSource' ? await this.startEventSource(o) : await this.startSensor(o);
        this.running.set(id, r);
      } catch (err) {
        this.o.say(`problem: ${id} (${o.file}) not started: ${(err as Error).message}`);
        failed.push({ what: id, reason: `${(err as Error).message} (${o.file})` });
      }
    }
    return failed;
  }

  /**
   * Consumers of Sensors no longer in the manifests, and of dependencies a Sensor dropped, are
   * deleted: under interest retention they would keep every event they match.
   */
  private async pruneConsumers(m: DevManifests): Promise<void> {
    const jsm = await jetstreamManager(this.o.nc);
    const sensors = m.objects.filter((x) => x.kind === 'Sensor');
    const buses = new Map<string, BusRef>();
    for (const o of [...m.objects.filter((x) => x.kind !== 'EventBus')]) {
      const b = this.busOf(o);
      buses.set(`${b.namespace}/${b.busName}`, b);
    }
    for (const bus of buses.values()) {
      const mine = sensors.filter(
        (o) => o.namespace === bus.namespace && this.busOf(o).busName === bus.busName,
      );
      try {
        const removed = await deleteOrphanConsumers(jsm, bus, new Set(mine.map((o) => o.name)));
        for (const o of mine) {
          const deps = SensorSpec.safeParse(o.spec);
          if (deps.success)
            removed.push(
              ...(await deleteSensorConsumers(
                jsm,
                bus,
                o.name,
                (deps.data.dependencies ?? []).map((d) => d.name),
              )),
            );
        }
        if (removed.length) this.o.say(`removed consumers no Sensor uses any more: ${removed.join(', ')}`);
      } catch (err) {
        this.o.say(
          `problem: cleaning consumers of ${bus.namespace}/${bus.busName}: ${(err as Error).message}`,
        );
      }
    }
  }

  private async provisionSensor(o: DevObject): Promise<void> {
    const bus = this.busOf(o);
    await this.ensureBus(bus, this.busSpec(bus));
    const spec = SensorSpec.parse(o.spec);
    await provisionSensorState(await jetstreamManager(this.o.nc), this.o.nc, {
      bus,
      sensor: o.name,
      dependencies: spec.dependencies ?? [],
      tuning: { maxDeliver: sensorMaxDeliver(spec) },
    });
  }

  private busOf(o: DevObject): BusRef {
    const name =
      typeof o.spec.eventBusName === 'string' && o.spec.eventBusName
        ? o.spec.eventBusName
        : BUS_SUFFIX_DEFAULT;
    return { namespace: o.namespace, busName: name };
  }

  private async startEventSource(o: DevObject): Promise<Running> {
    const bus = this.busOf(o);
    await this.ensureBus(bus, this.busSpec(bus));
    const spec = EventSourceSpec.parse(o.spec);
    const kubeConfig = this.kubeConfig();
    const es = await startEventSource({
      name: o.name,
      namespace: o.namespace,
      spec: { ...spec, replicas: 1 },
      bus,
      publisher: new Publisher(this.o.nc),
      nc: this.o.nc,
      registry: this.o.registry,
      log: this.o.log.child({ eventsource: o.name, namespace: o.namespace }),
      resolveSecret: (sel) => this.secret(o.namespace, sel),
      ...(kubeConfig ? { kubeConfig } : {}),
      host: this.o.host,
      limits: this.limits,
      hiddenHeaders: this.hiddenHeaders,
      idHeaders: this.idHeaders,
    });
    this.o.say(`EventSource ${o.namespace}/${o.name} running (bus ${bus.busName})`);
    for (const [type, entries] of Object.entries(spec as Record<string, unknown>)) {
      if (!entries || typeof entries !== 'object' || Array.isArray(entries)) continue;
      for (const [event, entry] of Object.entries(entries as Record<string, unknown>)) {
        const e = entry as {
          port?: string;
          endpoint?: string;
          webhook?: { port?: string; endpoint?: string };
        };
        const hook = type === 'webhook' ? e : e?.webhook;
        if (!hook?.port || !hook.endpoint) continue;
        const port = es.ports.get(hook.port) ?? hook.port;
        const path = hook.endpoint.startsWith('/') ? hook.endpoint : `/${hook.endpoint}`;
        this.o.say(`  ${type} ${event}: http://localhost:${port}${path}`);
      }
    }
    for (const t of es.unsupported) this.o.say(`  ${t}: not run by this build (accepted, no events)`);
    return { fingerprint: o.fingerprint, stop: () => es.stop() };
  }

  private busSpec(bus: BusRef): Record<string, unknown> | undefined {
    return this.manifests?.objects.find(
      (x) => x.kind === 'EventBus' && x.namespace === bus.namespace && x.name === bus.busName,
    )?.spec;
  }

  private async startSensor(o: DevObject): Promise<Running> {
    const bus = this.busOf(o);
    await this.ensureBus(bus, this.busSpec(bus));
    const spec = SensorSpec.parse(o.spec);
    const kubeConfig = this.kubeConfig();
    const s = await startSensor({
      name: o.name,
      namespace: o.namespace,
      spec: { ...spec, replicas: 1 },
      bus,
      nc: this.o.nc,
      registry: this.o.registry,
      log: this.o.log,
      runners: RUNNERS,
      compileDependency: sensorDependencyMatcher,
      params: sensorParameters,
      resolveSecret: (sel) => this.secret(o.namespace, sel),
      resolveConfigMap: (sel) => this.configMap(o.namespace, sel),
      ...(kubeConfig ? { kubeConfig } : {}),
    });
    this.o.say(
      `Sensor ${o.namespace}/${o.name} running: ${(spec.triggers ?? []).map((t) => t.template?.name).join(', ')}`,
    );
    return { fingerprint: o.fingerprint, stop: () => s.stop() };
  }

  /** Stops every object at once, so the whole stop takes one grace period, not one per object. */
  async stop(): Promise<void> {
    for (const stop of this.watches.values()) stop();
    this.watches.clear();
    await Promise.all(
      [...this.running].map(([id, r]) =>
        r.stop().catch((err: Error) => this.o.say(`problem stopping ${id}: ${err.message}`)),
      ),
    );
    this.running.clear();
  }

  /** The grace period webhook servers get on stop (ms). */
  get stopGraceMs(): number {
    return this.limits.stopGraceMs;
  }
}
