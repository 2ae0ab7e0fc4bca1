// The controller's view of the bus: ensure/delete a bus's streams, provision and delete the
// state Sensors and EventSources keep on it, and watch each event stream for drops. Connections
// are cached per (url, credential) so reconciles do not reconnect each time.
import { jetstreamManager } from '@nats-io/jetstream';
import { Counter, type Registry } from 'prom-client';
import { parseStreamConfig } from '../api/stream-config.ts';
import { BusConnection } from '../bus/connection.ts';
import { deleteConsumers } from '../bus/consumer.ts';
import { type DropLimits, headDrops, type StreamSample, sampleStream } from '../bus/drops.ts';
import { deleteOrphanConsumers, deleteSensorState, provisionSensorState } from '../bus/sensor-state.ts';
import { calendarBucket, deleteBuckets, provisionBuckets } from '../bus/source-state.ts';
import { deleteStreams, ensureStreams } from '../bus/streams.ts';
import { consumerSensor, eventStreamName } from '../bus/subjects.ts';
import type { Logger } from '../observability/logger.ts';
import type { BusOperations, BusConnection as Conn, StreamOutcome } from './reconcile/context.ts';

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
  timer: NodeJS.Timeout;
  prev?: StreamSample;
}

export function busOperations(opts: BusOperationsOptions = {}): BusOperations {
  const conns = new Map<string, Promise<BusConnection>>();
  const watches = new Map<string, Watch>();
  const dropped = new Counter({
    name: 'sluice_bus_events_dropped_total',
    help: 'Accepted events the bus removed before every Sensor consumed them (maxAge, or discard: old on a full stream), by bus and reason.',
    labelNames: ['namespace', 'eventbus', 'reason'] as const,
    registers: opts.registry ? [opts.registry] : [],
  });
  const get = async (c: Conn): Promise<BusConnection> => {
    const key = `${c.url}\u0000${c.credential ?? ''}\u0000${c.tls?.ca ?? ''}`;
    let p = conns.get(key);
    if (!p) {
      p = BusConnection.open({
        url: c.url,
        ...(c.credential ? { credential: c.credential } : {}),
        ...(c.tls ? { tls: c.tls } : {}),
        name: 'sluice-controller',
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

  const look = async (c: Conn, limits: DropLimits, w: Watch) => {
    const cur = await sampleStream(await jsmOf(c), eventStreamName(ref(c)));
    if (!cur) return;
    const prev = w.prev;
    w.prev = cur;
    if (!prev) return;
    const d = headDrops(prev, cur, limits);
    if (d.dropped > 0) {
      dropped.inc({ namespace: c.namespace, eventbus: c.busName, reason: d.reason ?? 'unknown' }, d.dropped);
      opts.log?.warn(
        { eventbus: busKey(c), dropped: d.dropped, reason: d.reason, backlog: cur.messages },
        'the bus dropped accepted events before every Sensor consumed them',
      );
    }
  };

  return {
    async ensureStreams(c: Conn): Promise<StreamOutcome> {
      const parsed = parseStreamConfig(c.streamConfig);
      if (!parsed.ok) return { ok: false, reason: 'InvalidStreamConfig', message: parsed.errors.join('; ') };
      const r = await ensureStreams(await jsmOf(c), ref(c), parsed.settings, c.replicas);
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
        replicas: c.replicas,
      });
    },
    async deleteSensorState(c, sensor) {
      return deleteSensorState(await jsmOf(c), ref(c), sensor);
    },
    async provisionEventSource(c, _eventSource, buckets) {
      if (buckets.length) await provisionBuckets((await get(c)).nc, buckets, c.replicas);
    },
    async deleteEventSourceState(c, eventSource) {
      return deleteBuckets(await jsmOf(c), [calendarBucket(c.namespace, eventSource)]);
    },
    async deleteOrphanConsumers(c, live) {
      return deleteOrphanConsumers(await jsmOf(c), ref(c), live);
    },
    monitor(c: Conn) {
      const parsed = parseStreamConfig(c.streamConfig);
      if (!parsed.ok) return;
      const s = parsed.settings;
      const limits: DropLimits = {
        retention: s.retention,
        discard: s.discard,
        maxMsgs: s.maxMsgs,
        maxBytes: s.maxBytes,
        maxAgeMs: s.maxAge,
      };
      const key = busKey(c);
      const id = `${c.url}|${c.credential ?? ''}|${JSON.stringify(limits)}`;
      const have = watches.get(key);
      if (have?.key === id) return;
      if (have) clearInterval(have.timer);
      const w: Watch = {
        key: id,
        timer: setInterval(() => {
          look(c, limits, w).catch(() => {
            // unreachable for now: the next look tries again
          });
        }, opts.monitorEveryMs ?? 10_000),
      };
      w.timer.unref();
      watches.set(key, w);
      void look(c, limits, w).catch(() => {});
    },
    unmonitor(c) {
      const w = watches.get(busKey(c));
      if (w) clearInterval(w.timer);
      watches.delete(busKey(c));
    },
    async close(): Promise<void> {
      for (const w of watches.values()) clearInterval(w.timer);
      watches.clear();
      const all = [...conns.values()];
      conns.clear();
      await Promise.allSettled(all.map(async (p) => (await p).close()));
    },
  };
}
