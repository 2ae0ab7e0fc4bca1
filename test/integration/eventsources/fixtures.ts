// Shared by the EventSource tests: a bus of its own (fresh namespace) with streams on the shared
// nats-server, and a reader of every event stored in it.
import { Writable } from 'node:stream';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import type { Registry } from 'prom-client';
import { EventSourceSpec } from '../../../src/api/eventsource.ts';
import type { SecretKeySelector } from '../../../src/api/k8s.ts';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import type { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { type BusRef, eventStreamName } from '../../../src/bus/subjects.ts';
import { type CloudEvent, decodeEvent } from '../../../src/eventsources/envelope.ts';
import {
  type EventSourceRuntimeOptions,
  type RunningEventSource,
  startEventSource,
} from '../../../src/eventsources/runtime.ts';
import { createLogger, type Logger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
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

/** What `sourceBed` needs beside the connection: the EventSource's name and its runtime's parts. */
export interface SourceBedOptions {
  /** Namespace prefix of the bus (a fresh namespace per bed). */
  prefix: string;
  /** The EventSource's name. */
  name: string;
  log: Logger;
  streamConfig?: string;
  resolveSecret?: (sel: SecretKeySelector) => Promise<string>;
  /** One registry for every start (default: a fresh one per start). */
  registry?: Registry;
  /** Further runtime options (limits, host, …). */
  runtime?: Partial<EventSourceRuntimeOptions>;
}

/**
 * A bus of its own (busWithStreams) and `start(spec)`, which runs the EventSource `o.name` on it
 * over `conn` with a publisher that waits 2 s for each PubAck.
 */
export async function sourceBed(
  conn: BusConnection,
  o: SourceBedOptions,
): Promise<TestBus & { start(spec: Record<string, unknown>): Promise<RunningEventSource> }> {
  const t = await busWithStreams(conn, o.prefix, o.streamConfig);
  const start = (spec: Record<string, unknown>) =>
    startEventSource({
      name: o.name,
      namespace: t.bus.namespace,
      spec: EventSourceSpec.parse(spec),
      bus: t.bus,
      publisher: new Publisher(conn.nc, { timeoutMs: 2000 }),
      nc: conn.nc,
      registry: o.registry ?? newRegistry(),
      log: o.log,
      resolveSecret: o.resolveSecret ?? (async () => ''),
      ...o.runtime,
    });
  return { ...t, start };
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

/** A logger at `info` whose JSON lines are kept, parsed, in `lines` (for asserting on what it logged). */
export function recordingLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  });
  return { log, lines };
}
