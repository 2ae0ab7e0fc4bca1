// Small helpers shared by the bus integration tests.
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import type { EventDependency } from '../../../src/api/sensor.ts';
import { parseStreamConfig, type StreamSettings } from '../../../src/api/stream-config.ts';
import type { BusConnection } from '../../../src/bus/connection.ts';
import { provisionSensorState } from '../../../src/bus/sensor-state.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import type { BusRef } from '../../../src/bus/subjects.ts';
import { type NatsCluster, startNatsCluster } from '../../harness/nats-cluster.ts';
import { uniqueName } from '../../harness/shared.ts';

/**
 * Stream settings from streamConfig YAML. These tests look at what the stream stores with no
 * consumer attached, so unless the YAML says otherwise they keep history (retention: limits);
 * interest retention, the default, has tests of its own (retention.test.ts).
 */
export const settings = (yaml = ''): StreamSettings => {
  const r = parseStreamConfig(/retention/i.test(yaml) ? yaml : `retention: limits\n${yaml}`);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.settings;
};

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A bus in a namespace of its own, so tests sharing one server never meet. */
export const newBus = (busName = 'default'): BusRef => ({ namespace: uniqueName('ns'), busName });

/** Every message body stored in `stream`, in sequence order. */
export async function storedBodies(jsm: JetStreamManager, stream: string): Promise<string[]> {
  const info = await jsm.streams.info(stream);
  const out: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (m) out.push(m.string());
  }
  return out;
}

/**
 * A one-server secured bus (per-role accounts, test/harness/nats-cluster.ts) with `bus`'s streams
 * and, per Sensor named in `sensors`, its consumers and KV state made as the controller makes them;
 * `admin` is connected with the admin credential. Credentials are the caller's (cl.setUsers).
 */
export async function securedBusWithSensors(
  bus: BusRef,
  sensors: Record<string, EventDependency[]>,
): Promise<{ cl: NatsCluster; admin: BusConnection }> {
  const cl = await startNatsCluster(1);
  const admin = await cl.connect(cl.admin.seed);
  const jsm = await jetstreamManager(admin.nc);
  const cfg = parseStreamConfig('');
  if (!cfg.ok) throw new Error(cfg.errors.join());
  await ensureStreams(jsm, bus, cfg.settings, 1);
  for (const [sensor, dependencies] of Object.entries(sensors))
    await provisionSensorState(jsm, admin.nc, { bus, sensor, dependencies });
  return { cl, admin };
}
