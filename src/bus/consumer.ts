// Durable pull consumers, one per (Sensor, dependency), filtered to that dependency's
// EventSource and event: explicit acks, bounded ack-pending, explicit ack_wait and max_deliver,
// batched pulls with bounded concurrent handling, a heartbeat that keeps slow work from being
// redelivered, settle helpers, and removal of consumers whose dependency is gone.
//
// Delivery is at-least-once: after a server crash the ack floor can move back and acked messages
// come again (see test/integration/restart.test.ts), so handlers must be idempotent (the Sensor
// uses the processed-set in kv.ts).
import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type { SensorSpec } from '../api/sensor.ts';
import { isNotFound } from './errors.ts';
import { type BusRef, consumerName, consumerSensor, eventStreamName, subjectFor } from './subjects.ts';

const ms2ns = (ms: number) => Math.round(ms * 1e6);

export interface ConsumerTuning {
  /** Redeliver a message not settled (or heartbeated) within this long (default 30 s). */
  ackWaitMs?: number;
  /**
   * Deliveries before the server gives up on a message (default -1: never; dependency consumers
   * default to sensorMaxDeliver()). The Sensor dead-letters by delivery count itself; this is a
   * backstop after which the message sits un-acked in the stream and is not delivered again.
   */
  maxDeliver?: number;
  /** Most messages delivered and not yet settled (default 1000): the consumer's in-flight bound. */
  maxAckPending?: number;
  /**
   * Where a consumer that does not exist yet starts: "new" (default) — events published from now
   * on — or "all" retained events. Ignored for an existing consumer (it keeps its position).
   */
  deliver?: 'new' | 'all';
}

export interface ConsumerSettings extends ConsumerTuning {
  stream: string;
  durable: string;
  filterSubject: string;
  description?: string;
  metadata?: Record<string, string>;
}

/** The JetStream config for `s` (pure). */
export function consumerConfig(s: ConsumerSettings): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: s.durable,
    ack_policy: AckPolicy.Explicit,
    filter_subject: s.filterSubject,
    ack_wait: ms2ns(s.ackWaitMs ?? 30_000),
    max_deliver: s.maxDeliver ?? -1,
    max_ack_pending: s.maxAckPending ?? 1000,
    deliver_policy: s.deliver === 'all' ? DeliverPolicy.All : DeliverPolicy.New,
    ...(s.description ? { description: s.description } : {}),
    ...(s.metadata ? { metadata: s.metadata } : {}),
  };
}

/** Settings that may change on an existing consumer (deliver_policy may not). */
const MUTABLE = [
  'filter_subject',
  'ack_wait',
  'max_deliver',
  'max_ack_pending',
  'description',
  'metadata',
] as const;

/** Creates the consumer, or updates its changeable settings when it exists. */
export async function ensureConsumer(
  jsm: JetStreamManager,
  s: ConsumerSettings,
): Promise<'created' | 'updated' | 'unchanged'> {
  const want = consumerConfig(s);
  let info: ConsumerInfo | undefined;
  try {
    info = await jsm.consumers.info(s.stream, s.durable);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (!info) {
    await jsm.consumers.add(s.stream, want);
    return 'created';
  }
  const have = info.config as Record<string, unknown>;
  // The server adds its own metadata keys (e.g. "_nats.*"): compare only ours.
  const differs = (k: (typeof MUTABLE)[number]) => {
    if (k === 'metadata') {
      const mine = want.metadata ?? {};
      const theirs = (have.metadata ?? {}) as Record<string, string>;
      return Object.entries(mine).some(([mk, mv]) => theirs[mk] !== mv);
    }
    return want[k] !== undefined && JSON.stringify(have[k]) !== JSON.stringify(want[k]);
  };
  const changed = MUTABLE.filter(differs);
  if (!changed.length) return 'unchanged';
  const update: Record<string, unknown> = {};
  for (const k of changed) update[k] = want[k];
  await jsm.consumers.update(s.stream, s.durable, update);
  return 'updated';
}

/** Deliveries of one message a Sensor handles by default (spec.maxDeliveries). */
export const DEFAULT_MAX_DELIVERIES = 5;
/** Deliveries past the handled ones: the Sensor dead-letters there (retried if the bus hiccups). */
const DEAD_LETTER_DELIVERIES = 3;
/**
 * Deliveries set aside for waits that hand a message back without handling it: an open circuit
 * breaker, or no free worker for a jq/Lua program (the Sensor does not count these).
 */
const WAIT_DELIVERIES = 1000;

/**
 * The server-side max_deliver of a Sensor's dependency consumers (finite, so no message can loop
 * forever): `maxDeliveries` handled deliveries, a few more in which the Sensor dead-letters the
 * message unhandled, and room for waits, which the Sensor does not count as deliveries: a bus
 * outage under any event (no quorum, no leader, a done mark that could not be stored), an open
 * circuitBreaker, no free jq/Lua worker.
 */
export function sensorMaxDeliver(
  spec: Pick<SensorSpec, 'maxDeliveries' | 'triggers' | 'dependencies'> = { triggers: [], dependencies: [] },
): number {
  return (spec.maxDeliveries ?? DEFAULT_MAX_DELIVERIES) + DEAD_LETTER_DELIVERIES + WAIT_DELIVERIES;
}

const META_SENSOR = 'sluice.argoproj.io/sensor';
const META_DEPENDENCY = 'sluice.argoproj.io/dependency';

export interface DependencyConsumerSpec extends ConsumerTuning {
  bus: BusRef;
  sensor: string;
  dependency: string;
  eventSourceName: string;
  eventName: string;
}

/** Stream, durable name, filter subject and metadata of a dependency's consumer (pure). */
export function dependencyConsumerSettings(d: DependencyConsumerSpec): ConsumerSettings {
  const { bus, sensor, dependency, eventSourceName, eventName, ...tuning } = d;
  return {
    ...tuning,
    maxDeliver: tuning.maxDeliver ?? sensorMaxDeliver(),
    stream: eventStreamName(bus),
    durable: consumerName(sensor, dependency),
    filterSubject: subjectFor(bus, eventSourceName, eventName),
    description: `sluice Sensor ${bus.namespace}/${sensor} dependency ${dependency}`,
    metadata: { [META_SENSOR]: sensor, [META_DEPENDENCY]: dependency },
  };
}

/** Ensures the consumer of one Sensor dependency; returns where to consume from. */
export async function ensureDependencyConsumer(
  jsm: JetStreamManager,
  d: DependencyConsumerSpec,
): Promise<{ stream: string; durable: string; action: 'created' | 'updated' | 'unchanged' }> {
  const s = dependencyConsumerSettings(d);
  const action = await ensureConsumer(jsm, s);
  return { stream: s.stream, durable: s.durable, action };
}

/** The (Sensor, dependency) a consumer belongs to: from its metadata, else from its name. */
export function consumerOwner(ci: ConsumerInfo): { sensor: string; dependency: string } | undefined {
  const md = ci.config.metadata;
  const sensor = md?.[META_SENSOR];
  const dependency = md?.[META_DEPENDENCY];
  if (sensor !== undefined && dependency !== undefined) return { sensor, dependency };
  return consumerSensor(ci.name);
}

/** Deletes consumers on `stream` accepted by `owned` but not listed in `keep`. */
export async function deleteConsumers(
  jsm: JetStreamManager,
  stream: string,
  owned: (name: string, info: ConsumerInfo) => boolean,
  keep: ReadonlySet<string>,
): Promise<string[]> {
  const doomed: string[] = [];
  for await (const ci of jsm.consumers.list(stream)) {
    if (owned(ci.name, ci) && !keep.has(ci.name)) doomed.push(ci.name);
  }
  const removed: string[] = [];
  for (const name of doomed) {
    try {
      await jsm.consumers.delete(stream, name);
      removed.push(name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return removed;
}

/**
 * Deletes the consumers of `sensor` on the bus's event stream except those of `keepDependencies`
 * (call with the Sensor's current dependency names; [] removes them all). A missing stream is fine.
 */
export async function deleteSensorConsumers(
  jsm: JetStreamManager,
  bus: BusRef,
  sensor: string,
  keepDependencies: readonly string[],
): Promise<string[]> {
  const keep = new Set(keepDependencies);
  try {
    return await deleteConsumers(
      jsm,
      eventStreamName(bus),
      (_name, ci) => {
        const owner = consumerOwner(ci);
        return owner?.sensor === sensor && !keep.has(owner.dependency);
      },
      new Set(),
    );
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/**
 * Runs `work` while telling the server every `everyMs` that `msg` is still being processed, so
 * slow work is not redelivered to someone else. Pick `everyMs` well below the consumer's ack_wait
 * (a third of it is a good choice). `onBeat` runs at each beat (e.g. to write a claim late).
 */
export async function working<T>(
  msg: JsMsg,
  work: () => Promise<T>,
  everyMs = 10_000,
  onBeat?: () => void,
): Promise<T> {
  const timer = setInterval(() => {
    try {
      onBeat?.();
    } catch {
      // A faulty listener must not stop the heartbeat.
    }
    try {
      msg.working();
    } catch {
      // The connection is down; the next beat tries again, and a redelivery is harmless anyway.
    }
  }, everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** How many times this message has been delivered (1 on the first delivery). */
export const deliveryCount = (msg: JsMsg): number => msg.info.deliveryCount;

/** True when this is not the first delivery. */
export const isRedelivery = (msg: JsMsg): boolean => msg.redelivered;

/** Done with the message. `confirmed` waits for the server to record the ack (false if it could not). */
export async function ack(msg: JsMsg, confirmed = false): Promise<boolean> {
  if (!confirmed) {
    msg.ack();
    return true;
  }
  return msg.ackAck();
}

/** Give the message back, to be redelivered after `delayMs` (immediately when 0). */
export function nak(msg: JsMsg, delayMs = 0): void {
  msg.nak(delayMs > 0 ? delayMs : undefined);
}

/** Never deliver this message again (the caller has dead-lettered or rejected it). */
export function term(msg: JsMsg, reason?: string): void {
  msg.term(reason);
}

/**
 * Messages a consume() loop is handling, with the time each was stored: the age of the oldest
 * one is the age of the oldest unsettled event, without reading the stream (which a Sensor's
 * credential may not).
 */
export class InFlight {
  private readonly stored = new Map<number, number>();

  add(msg: JsMsg): void {
    this.stored.set(msg.seq, Number(msg.info.timestampNanos / 1_000_000));
  }

  delete(msg: JsMsg): void {
    this.stored.delete(msg.seq);
  }

  get size(): number {
    return this.stored.size;
  }

  /** Seconds since the oldest message in hand was stored (0 when none). */
  oldestAgeSeconds(now = Date.now()): number {
    let oldest = Number.POSITIVE_INFINITY;
    for (const t of this.stored.values()) if (t < oldest) oldest = t;
    return oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, (now - oldest) / 1000);
  }
}

export interface ConsumeOptions {
  /** Messages pulled per request (default 256). */
  batch?: number;
  /** Handlers running at once (default 64); pulling pauses while all are busy. */
  concurrency?: number;
  /** How long one pull request waits on the server (default: the client's, 30 s). */
  expiresMs?: number;
  /** Server heartbeat interval for an open pull (default: the client's, half of expires). */
  idleHeartbeatMs?: number;
  /** A handler that throws or rejects: reported here, and the message is nak'ed with this delay. */
  onError?: (err: unknown, msg: JsMsg) => void;
  /** Tracks the messages being handled (for the age of the oldest unsettled event). */
  inFlight?: InFlight;
  /** Redelivery delay after a handler failure (default 1 s). */
  errorDelayMs?: number;
  signal?: AbortSignal;
  /** Called with the consumer's info as read when binding, before the first message. */
  onBind?: (info: ConsumerInfo) => void;
}

/**
 * Pulls from a durable consumer and runs `handle` for each message, at most `concurrency` at a
 * time. `handle` settles the message (ack, nak with delay, term). A handler that only waits for
 * the bus to confirm its work may call `release()` to give its slot to the next message early
 * (the server's max_ack_pending still bounds the messages in hand). Survives disconnects and server
 * restarts (the client re-pulls). Resolves after the signal aborts (or the connection closes)
 * and the running handlers have finished; messages pulled but not yet handled are left unacked
 * and come again after ack_wait.
 */
export async function consume(
  js: JetStreamClient,
  stream: string,
  durable: string,
  handle: (msg: JsMsg, release: () => void) => Promise<void> | void,
  opts: ConsumeOptions = {},
): Promise<void> {
  const consumer = await js.consumers.get(stream, durable);
  opts.onBind?.(await consumer.info(true));
  const slots = new HandlerSlots(handle, opts);
  let messages: ConsumerMessages | undefined;
  const stop = () => messages?.stop();
  opts.signal?.addEventListener('abort', stop, { once: true });
  try {
    messages = await consumer.consume({
      max_messages: opts.batch ?? 256,
      ...(opts.expiresMs ? { expires: opts.expiresMs } : {}),
      ...(opts.idleHeartbeatMs ? { idle_heartbeat: opts.idleHeartbeatMs } : {}),
    });
    if (opts.signal?.aborted) messages.stop();
    for await (const msg of messages) {
      await slots.free();
      // Stopping: the client still yields what it had buffered; leave that un-acked (it comes back
      // after ack_wait) rather than start handling it after the stop.
      if (opts.signal?.aborted) break;
      slots.run(msg);
    }
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    await slots.drained();
  }
}

/**
 * The handler slots of one consume() loop: at most `concurrency` handlers hold a slot, and
 * `running` counts handlers not finished (a handler may give its slot back early with `release`
 * while it only waits for the bus to confirm what it did). A handler that throws or rejects has
 * its message naked after `errorDelayMs` and reported to `onError`.
 */
class HandlerSlots {
  private active = 0;
  private running = 0;
  private freed: (() => void) | undefined;
  private whenDrained: (() => void) | undefined;
  private readonly limit: number;
  private readonly errorDelay: number;
  private readonly handle: (msg: JsMsg, release: () => void) => Promise<void> | void;
  private readonly opts: ConsumeOptions;

  constructor(handle: (msg: JsMsg, release: () => void) => Promise<void> | void, opts: ConsumeOptions) {
    this.handle = handle;
    this.opts = opts;
    this.limit = opts.concurrency ?? 64;
    this.errorDelay = opts.errorDelayMs ?? 1000;
  }

  /** Resolves once a slot is free. */
  async free(): Promise<void> {
    while (this.active >= this.limit) {
      await new Promise<void>((r) => {
        this.freed = r;
      });
    }
  }

  /** Resolves once every handler has finished. */
  async drained(): Promise<void> {
    if (this.running === 0) return;
    await new Promise<void>((r) => {
      this.whenDrained = r;
    });
  }

  private freeSlot(): void {
    this.active--;
    const f = this.freed;
    this.freed = undefined;
    f?.();
  }

  private failed(err: unknown, msg: JsMsg): void {
    try {
      this.opts.onError?.(err, msg);
    } catch {
      // A faulty reporter must not stall consumption.
    }
    try {
      msg.nak(this.errorDelay);
    } catch {
      // Connection down: ack_wait brings the message back anyway.
    }
  }

  /** Runs the handler for `msg` in a slot taken now. */
  run(msg: JsMsg): void {
    this.active++;
    this.opts.inFlight?.add(msg);
    this.running++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.freeSlot();
    };
    const settle = () => {
      this.opts.inFlight?.delete(msg);
      release();
      this.running--;
      if (this.running === 0) this.whenDrained?.();
    };
    let r: Promise<void> | void;
    try {
      r = this.handle(msg, release);
    } catch (err) {
      this.failed(err, msg);
      settle();
      return;
    }
    if (r && typeof r.then === 'function') {
      r.then(settle, (err: unknown) => {
        this.failed(err, msg);
        settle();
      });
    } else settle();
  }
}
