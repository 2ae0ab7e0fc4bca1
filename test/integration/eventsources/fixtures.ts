// Shared by the EventSource tests: a bus of its own (fresh namespace) with streams on the shared
// nats-server, and a reader of every event stored in it.
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import type { BusConnection } from '../../../src/bus/connection.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { type BusRef, eventStreamName } from '../../../src/bus/subjects.ts';
import { type CloudEvent, decodeEvent } from '../../../src/eventsources/envelope.ts';
import { uniqueName } from '../../harness/shared.ts';

export interface TestBus {
  bus: BusRef;
  jsm: JetStreamManager;
  /** Every event in the bus's stream, oldest first. */
  stored(): Promise<CloudEvent[]>;
}

export async function busWithStreams(
  conn: BusConnection,
  prefix: string,
  streamConfig = '',
): Promise<TestBus> {
  const bus: BusRef = { namespace: uniqueName(prefix), busName: 'default' };
  // These tests read what was published with no Sensor attached: keep it as history (the default
  // interest retention keeps only what a consumer still needs).
  const cfg = parseStreamConfig(
    /retention/i.test(streamConfig) ? streamConfig : `retention: limits\n${streamConfig}`,
  );
  if (!cfg.ok) throw new Error(cfg.errors.join());
  const jsm = await jetstreamManager(conn.nc);
  await ensureStreams(jsm, bus, cfg.settings, 1);
  return {
    bus,
    jsm,
    stored: () => storedEvents(jsm, bus),
  };
}

/** Every event in `bus`'s stream, oldest first. */
export async function storedEvents(jsm: JetStreamManager, bus: BusRef): Promise<CloudEvent[]> {
  const info = await jsm.streams.info(eventStreamName(bus));
  const out: CloudEvent[] = [];
  for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(eventStreamName(bus), { seq }).catch(() => null);
    if (m) out.push(decodeEvent(m.data));
  }
  return out;
}

/** The stored messages of `bus`'s stream as the exact text stored, oldest first. */
export async function storedTexts(jsm: JetStreamManager, bus: BusRef): Promise<string[]> {
  const info = await jsm.streams.info(eventStreamName(bus));
  const out: string[] = [];
  for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(eventStreamName(bus), { seq }).catch(() => null);
    if (m) out.push(new TextDecoder().decode(m.data));
  }
  return out;
}
