// The controller's view of the bus: ensure/delete a bus's streams, provision and delete the
// state Sensors and EventSources keep on it, and watch each event stream for drops. Connections
// are cached per (url, credential) so reconciles do not reconnect each time.
import { jetstreamManager } from '@nats-io/jetstream';
import type { Registry } from 'prom-client';
import { parseStreamConfig } from '../api/stream-config.ts';
import { BusConnection } from '../bus/connection.ts';
import { deleteConsumers } from '../bus/consumer.ts';
import { watchDeadLetters } from '../bus/dead-letters.ts';
import { type Drop, dropLimits, droppedCounter, watchDrops } from '../bus/drops.ts';
import { deleteOrphanBuckets } from '../bus/orphan-state.ts';
import { busLimits } from '../bus/placement.ts';
import { deleteOrphanConsumers, deleteSensorState, provisionSensorState } from '../bus/sensor-state.ts';
import { allEventSourceBuckets, deleteBuckets, provisionBuckets } from '../bus/source-state.ts';
import { deleteStreams, ensureStreams } from '../bus/streams.ts';
import { consumerSensor, dlqStreamName, eventStreamName } from '../bus/subjects.ts';
import type { Logger } from '../observability/logger.ts';
import type {
  BusOperations,
  BusConnection as Conn,
  MonitorHooks,
  StreamOutcome,
} from './reconcile/context.ts';

export interface BusOperationsOptions {
  connectTimeoutMs?: number;
  /** Where drops are logged (warn). */
  log?: Logger;
  /** Where sluice_bus_events_dropped_total is registered. */
  registry?: Registry;
  /** How often the drop monitor looks at each stream (default 10 s). */
  monitorEveryMs?: number;
}

interface Watch {
  key: string;
  stop: () => void;
}

/** Name of the controller's bus connections (its own purges of consumed history are not drops). */
const CONNECTION_NAME = 'sluice-controller';

export function busOperations(opts: BusOperationsOptions = {}): BusOperations {
  const conns = new Map<string, Promise<BusConnection>>();
  const watches = new Map<string, Watch>();
  const dropped = droppedCounter(opts.registry);
  const get = async (c: Conn): Promise<BusConnection> => {
    const key = `${c.url}\u0000${c.credential ?? ''}\u0000${c.tls?.ca ?? ''}`;
    let p = conns.get(key);
    if (!p) {
      p = BusConnection.open({
        url: c.url,
        ...(c.credential ? { credential: c.credential } : {}),
        ...(c.tls ? { tls: c.tls } : {}),
        name: CONNECTION_NAME,
        connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
      });
      conns.set(key, p);
      // A failed first connect is forgotten so the next reconcile tries again.
      p.catch(() => conns.delete(key));
    }
    return p;
  };
  const jsmOf = async (c: Conn) => jetstreamManager((await get(c)).nc);
  const ref = (c: Pick<Conn, 'namespace' | 'busName'>) => ({ namespace: c.namespace, busName: c.busName });
  const busKey = (c: Pick<Conn, 'namespace' | 'busName'>) => `${c.namespace}/${c.busName}`;

  return {
    async ensureStreams(c: Conn): Promise<StreamOutcome> {
      const parsed = parseStreamConfig(c.streamConfig);
      if (!parsed.ok) return { ok: false, reason: 'InvalidStreamConfig', message: parsed.errors.join('; ') };
      const r = await ensureStreams(await jsmOf(c), ref(c), parsed.settings, c.replicas, c.limits);
      if (r.events.action === 'blocked')
        return { ok: false, reason: 'StreamChangeBlocked', message: r.events.message };
      return { ok: true, reason: 'StreamReady', message: `${r.events.message}; ${r.dlq.message}` };
    },
    async deleteStreams(c: Conn): Promise<void> {
      await deleteStreams(await jsmOf(c), ref(c));
    },
    async pruneSensorState(c, sensor, keep) {
      const keepNames = new Set<string>();
      const removed = await deleteConsumers(
        await jsmOf(c),
        eventStreamName(ref(c)),
        (name) => {
          const owner = consumerSensor(name);
          if (owner?.sensor !== sensor.name) return false;
          if (keep.dependencies.includes(owner.dependency)) keepNames.add(name);
          return true;
        },
        keepNames,
      ).catch((err: Error) => {
        if (/not found/i.test(err.message)) return [] as string[];
        throw err;
      });
      return { removed };
    },
    async provisionSensor(c, sensor) {
      const conn = await get(c);
      return provisionSensorState(await jetstreamManager(conn.nc), conn.nc, {
        bus: ref(c),
        sensor: sensor.name,
        dependencies: sensor.dependencies,
        ...(sensor.maxDeliver ? { tuning: { maxDeliver: sensor.maxDeliver } } : {}),
        replicas: c.replicas,
        ...(c.limits ? { kvMaxBytes: c.limits.kvMaxBytes } : {}),
      });
    },
    async deleteSensorState(c, sensor) {
      return deleteSensorState(await jsmOf(c), ref(c), sensor);
    },
    async provisionEventSource(c, _eventSource, buckets) {
      if (buckets.length) await provisionBuckets(await jsmOf(c), buckets, c.replicas, c.limits?.kvMaxBytes);
    },
    async deleteEventSourceState(c, eventSource) {
      return deleteBuckets(await jsmOf(c), allEventSourceBuckets(c.namespace, eventSource));
    },
    async deleteOrphanConsumers(c, live) {
      return deleteOrphanConsumers(await jsmOf(c), ref(c), live);
    },
    async deleteOrphanBuckets(c, live) {
      return deleteOrphanBuckets(await jsmOf(c), c.namespace, live);
    },
    monitor(c: Conn, hooks?: MonitorHooks) {
      const parsed = parseStreamConfig(c.streamConfig);
      if (!parsed.ok) return;
      const bounds = c.limits ?? busLimits({}, parsed.settings);
      const limits = { ...dropLimits(parsed.settings), maxBytes: bounds.eventMaxBytes };
      const key = busKey(c);
      const id = `${c.url}|${c.credential ?? ''}|${JSON.stringify(limits)}|${bounds.dlqMaxAgeMs}`;
      const have = watches.get(key);
      if (have?.key === id) return;
      have?.stop();
      const report = (d: Drop) => {
        dropped.inc({ namespace: c.namespace, eventbus: c.busName, reason: d.reason }, d.dropped);
        opts.log?.warn(
          {
            eventbus: key,
            dropped: d.dropped,
            reason: d.reason,
            backlog: d.backlog,
            ...(d.by ? { by: d.by } : {}),
          },
          d.reason === 'dlqMaxAge'
            ? 'dead letters expired (dlqMaxAge) before anyone replayed them'
            : 'the bus dropped accepted events before every Sensor consumed them',
        );
      };
      const stops = [
        watchDrops(() => jsmOf(c), eventStreamName(ref(c)), limits, report, opts.monitorEveryMs, {
          nc: async () => (await get(c)).nc,
          ignoreClient: CONNECTION_NAME,
        }),
      ];
      // Dead letters leave the head only by age (or by an operator's replay/purge).
      if (bounds.dlqMaxAgeMs > 0)
        stops.push(
          watchDrops(
            () => jsmOf(c),
            dlqStreamName(ref(c)),
            {
              retention: 'interest',
              discard: 'new',
              maxMsgs: -1,
              maxBytes: -1,
              maxAgeMs: bounds.dlqMaxAgeMs,
            },
            (d) => report({ ...d, reason: 'dlqMaxAge' }),
            opts.monitorEveryMs,
          ),
        );
      const deadLettered = hooks?.deadLettered;
      if (deadLettered)
        stops.push(
          watchDeadLetters(() => jsmOf(c), dlqStreamName(ref(c)), deadLettered, opts.monitorEveryMs),
        );
      watches.set(key, {
        key: id,
        stop: () => {
          for (const s of stops) s();
        },
      });
    },
    unmonitor(c) {
      watches.get(busKey(c))?.stop();
      watches.delete(busKey(c));
    },
    async close(): Promise<void> {
      for (const w of watches.values()) w.stop();
      watches.clear();
      const all = [...conns.values()];
      conns.clear();
      await Promise.allSettled(all.map(async (p) => (await p).close()));
    },
  };
}
