// The controller's view of the bus: ensure/delete a bus's streams and prune a Sensor's consumers,
// over connections cached per (url, credential) so reconciles do not reconnect each time.
import { jetstreamManager } from '@nats-io/jetstream';
import { parseStreamConfig } from '../api/stream-config.ts';
import { BusConnection } from '../bus/connection.ts';
import { deleteConsumers } from '../bus/consumer.ts';
import { deleteStreams, ensureStreams } from '../bus/streams.ts';
import { consumerSensor, eventStreamName } from '../bus/subjects.ts';
import type { BusOperations, BusConnection as Conn, StreamOutcome } from './reconcile/context.ts';

export function busOperations(opts: { connectTimeoutMs?: number } = {}): BusOperations {
  const conns = new Map<string, Promise<BusConnection>>();
  const get = async (c: Conn): Promise<BusConnection> => {
    const key = `${c.url}\u0000${c.credential ?? ''}`;
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
  const ref = (c: Conn) => ({ namespace: c.namespace, busName: c.busName });
  return {
    async ensureStreams(c: Conn): Promise<StreamOutcome> {
      const parsed = parseStreamConfig(c.streamConfig);
      if (!parsed.ok) return { ok: false, reason: 'InvalidStreamConfig', message: parsed.errors.join('; ') };
      const conn = await get(c);
      const jsm = await jetstreamManager(conn.nc);
      const replicas = parsed.settings.replicas ?? 1;
      const r = await ensureStreams(jsm, ref(c), parsed.settings, replicas);
      if (r.events.action === 'blocked')
        return { ok: false, reason: 'StreamChangeBlocked', message: r.events.message };
      return { ok: true, reason: 'StreamReady', message: `${r.events.message}; ${r.dlq.message}` };
    },
    async deleteStreams(c: Conn): Promise<void> {
      const conn = await get(c);
      await deleteStreams(await jetstreamManager(conn.nc), ref(c));
    },
    async pruneSensorState(c, sensor, keep) {
      const conn = await get(c);
      const jsm = await jetstreamManager(conn.nc);
      const keepNames = new Set<string>();
      const removed = await deleteConsumers(
        jsm,
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
    async close(): Promise<void> {
      const all = [...conns.values()];
      conns.clear();
      await Promise.allSettled(all.map(async (p) => (await p).close()));
    },
  };
}
