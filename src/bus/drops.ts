// Noticing when the bus drops accepted events. JetStream sends no advisory when a limit removes
// a message, so the controller samples each event stream and reads drops off its head: under
// interest retention every stored event is still wanted by some Sensor, and the two limits that
// drop events (maxAge, and a full stream with `discard: old`) both remove the oldest first. A head
// that moves on while the oldest event had outlived maxAge, or while the stream was full with
// discard old, moved by drops. Acks of the oldest events in the same interval also move the head,
// so the count can be high (never low) when both happen between two samples.
//
// Removals by hand are counted from JetStream's API audit advisories ($JS.EVENT.ADVISORY.API,
// published in the account that owns the streams, where the controller's admin user is): a purge
// (the number it reports), a deleted message, a deleted stream (what it held at the last sample).
// Under interest retention everything stored is still wanted by a Sensor, so each of those is a
// loss; the controller's own purge of consumed history (after a switch from limits retention) is
// not counted. Dead letters that outlive dlqMaxAge are counted from the DLQ stream's head the same
// way (reason dlqMaxAge); records `sluice dlq replay|purge` removes are an operator's decision and
// not counted.
import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
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

export type DropReason = 'maxAge' | 'discardOld' | 'purged' | 'deleted' | 'streamDeleted' | 'dlqMaxAge';

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

interface AuditAdvisory {
  type?: string;
  subject?: string;
  client?: { name?: string; user?: string; acc?: string };
  response?: string;
}

/**
 * Events an API audit advisory says were removed from `stream` by hand (pure): a purge, a
 * deleted message, or the stream deleted while it held `held` events. Undefined for anything
 * else, for failed requests and for requests from the connection named `ignoreClient`.
 */
export function auditDrops(
  advisory: unknown,
  stream: string,
  held: number,
  ignoreClient?: string,
): { dropped: number; reason: DropReason; by: string } | undefined {
  const a = advisory as AuditAdvisory;
  if (a?.type !== 'io.nats.jetstream.advisory.v1.api_audit' || !a.subject) return undefined;
  if (ignoreClient !== undefined && a.client?.name === ignoreClient) return undefined;
  let r: { success?: boolean; purged?: number };
  try {
    r = JSON.parse(a.response ?? '{}') as typeof r;
  } catch {
    return undefined;
  }
  if (!r.success) return undefined;
  const by = [a.client?.user, a.client?.name].filter(Boolean).join(' ') || 'unknown';
  if (a.subject === `$JS.API.STREAM.PURGE.${stream}`)
    return (r.purged ?? 0) > 0 ? { dropped: r.purged!, reason: 'purged', by } : undefined;
  if (a.subject === `$JS.API.STREAM.MSG.DELETE.${stream}`) return { dropped: 1, reason: 'deleted', by };
  if (a.subject === `$JS.API.STREAM.DELETE.${stream}`)
    return held > 0 ? { dropped: held, reason: 'streamDeleted', by } : undefined;
  return undefined;
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

export interface Drop {
  dropped: number;
  reason: DropReason;
  /** Events stored at the last look. */
  backlog: number;
  /** Who removed them by hand (user and connection name), for purges and deletions. */
  by?: string;
}

/** Where the server publishes JetStream API audit advisories (in the account that made the call). */
const AUDIT_SUBJECT = '$JS.EVENT.ADVISORY.API';

/**
 * Whether `m` is an advisory the server published, not a stored message relayed to the audit
 * subject by a push consumer: a Sensor credential may make one on its own processed bucket (the
 * done-key follower's create permission cannot refuse a deliver subject), and it delivers the
 * bucket's values, which the Sensor writes, with their original subject and an ack reply. The
 * server's own advisories come on the audit subject itself, without a reply.
 */
function fromServer(m: { subject: string; reply?: string }): boolean {
  return m.subject === AUDIT_SUBJECT && !m.reply;
}

/**
 * Samples `stream` every `everyMs` and calls `onDrop` with each interval's drops (an unreachable
 * bus just skips a sample); with `audit`, also with every purge or deletion made by another
 * connection than `audit.ignoreClient`. Returns a function that stops watching.
 */
export function watchDrops(
  jsm: () => Promise<JetStreamManager>,
  stream: string,
  limits: DropLimits,
  onDrop: (d: Drop) => void,
  everyMs = 10_000,
  audit?: { nc: () => Promise<NatsConnection>; ignoreClient: string },
): () => void {
  let prev: StreamSample | undefined;
  let stopped = false;
  let sub: Subscription | undefined;
  if (audit)
    void audit
      .nc()
      .then((nc) => {
        if (stopped) return;
        sub = nc.subscribe(AUDIT_SUBJECT, {
          callback: (_err, m) => {
            if (!fromServer(m)) return;
            let body: unknown;
            try {
              body = m.json();
            } catch {
              return;
            }
            const d = auditDrops(body, stream, prev?.messages ?? 0, audit.ignoreClient);
            if (d) onDrop({ ...d, backlog: prev?.messages ?? 0 });
          },
        });
      })
      .catch(() => {
        // no connection yet: the sampler still counts what limits drop
      });
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
  return () => {
    stopped = true;
    clearInterval(timer);
    sub?.unsubscribe();
  };
}

/** The counter of accepted events the bus dropped (one per registry). */
export function droppedCounter(registry?: Registry): Counter<'namespace' | 'eventbus' | 'reason'> {
  const existing = registry?.getSingleMetric('sluice_bus_events_dropped_total');
  if (existing) return existing as Counter<'namespace' | 'eventbus' | 'reason'>;
  return new Counter({
    name: 'sluice_bus_events_dropped_total',
    help: 'Accepted events the bus removed before every Sensor consumed them, by bus and reason: maxAge, discardOld (a full stream with discard: old), purged / deleted / streamDeleted (by hand, from the API audit), dlqMaxAge (dead letters that expired).',
    labelNames: ['namespace', 'eventbus', 'reason'] as const,
    registers: registry ? [registry] : [],
  });
}
