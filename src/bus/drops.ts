// Noticing when the bus drops accepted events. JetStream sends no advisory when a limit removes
// a message, so the controller samples each event stream and reads drops off its head: under
// interest retention every stored event is still wanted by some Sensor, and the two limits that
// drop events (maxAge, and a full stream with `discard: old`) both remove the oldest first. A head
// that moves on while the oldest event had outlived maxAge, or while the stream was full with
// discard old, moved by drops. Acks of the oldest events in the same interval also move the head,
// so the count can be high (never low) when both happen between two samples.
import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import { Counter, type Registry } from 'prom-client';
import { isNotFound } from './errors.ts';

/** One look at a stream's state. Times in epoch milliseconds. */
export interface StreamSample {
  at: number;
  firstSeq: number;
  /** Time the oldest stored event was accepted (0 when the stream is empty). */
  firstTs: number;
  lastSeq: number;
  messages: number;
  bytes: number;
}

export interface DropLimits {
  retention: 'limits' | 'interest' | 'workqueue';
  discard: 'old' | 'new';
  maxMsgs: number;
  maxBytes: number;
  /** 0: no age limit. */
  maxAgeMs: number;
}

export type DropReason = 'maxAge' | 'discardOld';

/** The sample of a stream from its info. */
export function sampleOf(info: StreamInfo, at = Date.now()): StreamSample {
  const s = info.state;
  return {
    at,
    firstSeq: s.first_seq,
    firstTs: s.messages > 0 && s.first_ts ? Date.parse(s.first_ts) : 0,
    lastSeq: s.last_seq,
    messages: s.messages,
    bytes: s.bytes,
  };
}

const full = (s: StreamSample, l: DropLimits) =>
  (l.maxMsgs > 0 && s.messages >= l.maxMsgs) || (l.maxBytes > 0 && s.bytes >= l.maxBytes * 0.99);

/**
 * Accepted events dropped by a limit between `prev` and `cur` (pure). Only interest and
 * workqueue retention can tell (under limits retention consumed history goes the same way).
 */
export function headDrops(
  prev: StreamSample,
  cur: StreamSample,
  l: DropLimits,
): { dropped: number; reason?: DropReason } {
  if (l.retention === 'limits') return { dropped: 0 };
  const arrived = Math.max(0, cur.lastSeq - prev.lastSeq);
  // Events stored at `prev` or since that are gone from the head now.
  const advance = Math.min(cur.firstSeq - prev.firstSeq, prev.messages + arrived);
  if (advance <= 0) return { dropped: 0 };
  if (l.discard === 'old' && (full(prev, l) || full(cur, l))) {
    // Each drop made room for one new event.
    const dropped = Math.min(advance, arrived);
    if (dropped > 0) return { dropped, reason: 'discardOld' };
  }
  if (l.maxAgeMs > 0 && prev.messages > 0 && prev.firstTs + l.maxAgeMs <= cur.at) {
    return { dropped: advance, reason: 'maxAge' };
  }
  return { dropped: 0 };
}

/** Samples `stream`; undefined when it does not exist. */
export async function sampleStream(jsm: JetStreamManager, stream: string): Promise<StreamSample | undefined> {
  try {
    return sampleOf(await jsm.streams.info(stream));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The limits drops depend on, from stream settings. */
export function dropLimits(s: {
  retention: DropLimits['retention'];
  discard: DropLimits['discard'];
  maxMsgs: number;
  maxBytes: number;
  maxAge: number;
}): DropLimits {
  return {
    retention: s.retention,
    discard: s.discard,
    maxMsgs: s.maxMsgs,
    maxBytes: s.maxBytes,
    maxAgeMs: s.maxAge,
  };
}

/**
 * Samples `stream` every `everyMs` and calls `onDrop` with each interval's drops (an unreachable
 * bus just skips a sample). Returns a function that stops watching.
 */
export function watchDrops(
  jsm: () => Promise<JetStreamManager>,
  stream: string,
  limits: DropLimits,
  onDrop: (d: { dropped: number; reason: DropReason; backlog: number }) => void,
  everyMs = 10_000,
): () => void {
  let prev: StreamSample | undefined;
  const look = async () => {
    const cur = await sampleStream(await jsm(), stream);
    if (!cur) return;
    const before = prev;
    prev = cur;
    if (!before) return;
    const d = headDrops(before, cur, limits);
    if (d.dropped > 0 && d.reason) onDrop({ dropped: d.dropped, reason: d.reason, backlog: cur.messages });
  };
  const tick = () => {
    look().catch(() => {
      // unreachable for now: the next look tries again
    });
  };
  const timer = setInterval(tick, everyMs);
  timer.unref();
  tick();
  return () => clearInterval(timer);
}

/** The counter of accepted events the bus dropped (one per registry). */
export function droppedCounter(registry?: Registry): Counter<'namespace' | 'eventbus' | 'reason'> {
  const existing = registry?.getSingleMetric('sluice_bus_events_dropped_total');
  if (existing) return existing as Counter<'namespace' | 'eventbus' | 'reason'>;
  return new Counter({
    name: 'sluice_bus_events_dropped_total',
    help: 'Accepted events the bus removed before every Sensor consumed them (maxAge, or discard: old on a full stream), by bus and reason.',
    labelNames: ['namespace', 'eventbus', 'reason'] as const,
    registers: registry ? [registry] : [],
  });
}
