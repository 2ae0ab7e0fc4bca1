// Dead letters on the bus's DLQ stream: list with filters, show one, purge, and replay. A replay
// runs the trigger again (from the Sensor's current spec) with the record's own idempotency key,
// so an effect that already happened is skipped by the processed-set and a replay run twice does
// nothing the second time; a replayed record is removed from the stream only after success.
// Concurrent replays (and a Sensor firing the same key) are kept apart by owner-and-lease claims
// (claims.ts): a live claim held by someone else is waited for, never run alongside; a record that
// someone else already removed counts as already replayed.
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Registry } from 'prom-client';
import type { SensorSpec } from '../api/sensor.ts';
import { serverCode } from '../bus/errors.ts';
import { ProcessedSet } from '../bus/kv.ts';
import { Publisher } from '../bus/publisher.ts';
import { type BusRef, dlqStreamName, kvBucketName, parseDlqSubject } from '../bus/subjects.ts';
import type { Logger } from '../observability/logger.ts';
import { Claims } from './claims.ts';
import { sensorMetrics } from './metrics.ts';
import type { SensorRuntimeOptions } from './options.ts';
import { triggerPreparer } from './prepare.ts';
import { Redactor } from './redact.ts';
import { type DeadLetterRecord, type Outcome, type SettleEnv, settle } from './settle.ts';

export interface DlqFilter {
  sensor?: string;
  trigger?: string;
  /** Only records dead-lettered at or after this time. */
  since?: Date;
  /** Only records dead-lettered before this time. */
  until?: Date;
}

export interface StoredDeadLetter {
  seq: number;
  time: Date;
  record: DeadLetterRecord;
}

const DEFAULT_PROCESSED_TTL = 7 * 24 * 3600 * 1000;

/** Records of `bus` matching `f`, oldest first. Throws when the DLQ stream does not exist. */
export async function* listDeadLetters(
  jsm: JetStreamManager,
  bus: BusRef,
  f: DlqFilter = {},
): AsyncGenerator<StoredDeadLetter> {
  const stream = dlqStreamName(bus);
  const info = await jsm.streams.info(stream).catch((err: unknown) => {
    if (serverCode(err) !== 10059 && !/stream not found/i.test((err as Error)?.message ?? '')) throw err;
    throw new Error(
      `the DLQ stream ${stream} does not exist: no dead letter can be listed or stored until the EventBus ${bus.namespace}/${bus.busName} is reconciled (Sensors keep the failed messages until then)`,
      { cause: err },
    );
  });
  if (info.state.messages === 0) return;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (!m) continue; // deleted (replayed or purged)
    const where = parseDlqSubject(m.subject);
    if (f.sensor !== undefined && where?.sensor !== f.sensor) continue;
    if (f.trigger !== undefined && where?.trigger !== f.trigger) continue;
    if (f.since && m.time < f.since) continue;
    if (f.until && m.time >= f.until) continue;
    let record: DeadLetterRecord;
    try {
      record = m.json<DeadLetterRecord>();
    } catch {
      continue; // not ours
    }
    yield { seq, time: m.time, record };
  }
}

export async function getDeadLetter(
  jsm: JetStreamManager,
  bus: BusRef,
  seq: number,
): Promise<StoredDeadLetter> {
  const m = await jsm.streams.getMessage(dlqStreamName(bus), { seq }).catch(() => null);
  if (!m) throw new Error(`no dead letter with sequence ${seq} in ${dlqStreamName(bus)}`);
  return { seq, time: m.time, record: m.json<DeadLetterRecord>() };
}

/**
 * Removes the records `seqs` of `bus`'s DLQ stream (e.g. the ones a user confirmed); a record
 * someone else removed first (a replay) is skipped. Returns how many this call removed.
 */
export async function removeDeadLetters(
  jsm: JetStreamManager,
  bus: BusRef,
  seqs: number[],
  onProgress?: (done: number) => void,
): Promise<number> {
  let n = 0;
  let done = 0;
  for (const seq of seqs) {
    try {
      await jsm.streams.deleteMessage(dlqStreamName(bus), seq, false);
      n++;
    } catch (err) {
      if (!alreadyRemoved(err)) throw err;
    }
    onProgress?.(++done);
  }
  return n;
}

export async function purgeDeadLetters(
  jsm: JetStreamManager,
  bus: BusRef,
  f: DlqFilter,
  onProgress?: (done: number) => void,
): Promise<number> {
  const seqs: number[] = [];
  for await (const d of listDeadLetters(jsm, bus, f)) seqs.push(d.seq);
  return removeDeadLetters(jsm, bus, seqs, onProgress);
}

export interface ReplayOptions
  extends Pick<
    SensorRuntimeOptions,
    'runners' | 'params' | 'resolveSecret' | 'resolveConfigMap' | 'kubeConfig'
  > {
  nc: NatsConnection;
  jsm: JetStreamManager;
  bus: BusRef;
  namespace: string;
  sensorName: string;
  spec: SensorSpec;
  log: Logger;
  filter?: Omit<DlqFilter, 'sensor'>;
  /** Called after each record: its outcome in words, and which record it was and how it ended. */
  onProgress?: (done: number, total: number, outcome: string, record: ReplayedRecord) => void;
  /** Longest to wait on a record someone else is replaying right now (default: two claim leases). */
  maxClaimWaitMs?: number;
}

/** How one record's replay ended (the keys of ReplaySummary except `total`). */
export type ReplayResult = Exclude<keyof ReplaySummary, 'total'>;

/** One record as `onProgress` reports it. */
export interface ReplayedRecord {
  seq: number;
  trigger: string;
  result: ReplayResult;
}

export interface ReplaySummary {
  total: number;
  delivered: number;
  alreadyDone: number;
  failed: number;
  /** Records whose trigger no longer exists in the Sensor. */
  orphaned: number;
  /** Event records (dead-lettered before any trigger): fix the spec or the sender, then purge. */
  notReplayable: number;
  /** Records still claimed by another live replay after waiting (left for it). */
  deferred: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True for "no message found": someone else removed the record first. */
const alreadyRemoved = (err: unknown): boolean =>
  serverCode(err) === 10037 || /no message found/i.test((err as Error)?.message ?? '');

/** Settles one record, waiting while another process holds a live claim on its key. */
async function replayOne(
  env: SettleEnv,
  t: Parameters<typeof settle>[1],
  d: StoredDeadLetter,
  maxWaitMs: number,
) {
  const end = Date.now() + maxWaitMs;
  for (;;) {
    const r: Outcome = await settle(env, { ...t, dlq: undefined }, d.record.events, Date.now(), {
      key: d.record.idempotencyKey,
      replay: true,
    });
    if (r.kind !== 'defer' || Date.now() >= end) return r;
    await sleep(Math.max(50, Math.min(r.delayMs, 500)));
  }
}

export async function replayDeadLetters(o: ReplayOptions): Promise<ReplaySummary> {
  const metrics = sensorMetrics(new Registry());
  const { prepare, runners } = triggerPreparer({
    namespace: o.namespace,
    name: o.sensorName,
    runners: o.runners,
    params: o.params,
    metrics,
    log: o.log,
  });
  const triggers = new Map(
    (o.spec.triggers ?? []).map((t, i) => {
      const p = prepare(t, `trigger-${i}`);
      return [p.name, p] as const;
    }),
  );
  const processed = await ProcessedSet.open(
    o.nc,
    kvBucketName(o.namespace, o.sensorName, 'processed'),
    DEFAULT_PROCESSED_TTL,
  );
  const todo: StoredDeadLetter[] = [];
  for await (const d of listDeadLetters(o.jsm, o.bus, { ...o.filter, sensor: o.sensorName })) todo.push(d);
  const summary: ReplaySummary = {
    total: todo.length,
    delivered: 0,
    alreadyDone: 0,
    failed: 0,
    orphaned: 0,
    notReplayable: 0,
    deferred: 0,
  };
  const lifetime = new AbortController();
  const claims = new Claims(processed);
  const redactor = new Redactor((m) => o.log.warn(m));
  const resolveSecret = async (sel: Parameters<ReplayOptions['resolveSecret']>[0]) => {
    const v = await o.resolveSecret(sel);
    redactor.add(v);
    return v;
  };
  const maxWait = o.maxClaimWaitMs ?? 2 * claims.leaseMs;
  const base: SettleEnv = {
    namespace: o.namespace,
    sensorName: o.sensorName,
    bus: o.bus,
    processed,
    claims,
    redact: (s) => redactor.redact(s),
    publisher: new Publisher(o.nc),
    metrics,
    signal: lifetime.signal,
    callSignal: lifetime.signal,
    context: {
      namespace: o.namespace,
      sensorName: o.sensorName,
      log: o.log,
      buildPayload: () => ({}),
      applyParameters: (x) => x,
      resolveSecret,
      resolveConfigMap: o.resolveConfigMap,
      kubeConfig: () => {
        if (!o.kubeConfig) throw new Error('this trigger needs Kubernetes access, and none is configured');
        return o.kubeConfig();
      },
    },
  };
  let done = 0;
  try {
    for (const d of todo) {
      const t = triggers.get(d.record.trigger);
      let outcome: string;
      let result: ReplayResult;
      if (d.record.kind === 'event') {
        result = 'notReplayable';
        outcome = `event record (${d.record.reason ?? 'failed before any trigger'}); kept`;
      } else if (d.record.reason === 'join-too-large') {
        result = 'notReplayable';
        outcome = 'the event could not wait for the other dependencies (join-too-large); kept';
      } else if (d.record.truncated?.length) {
        result = 'notReplayable';
        outcome = `event data of ${d.record.truncated.join(', ')} was cut to fit the record; kept`;
      } else if (!t) {
        result = 'orphaned';
        outcome = `trigger ${d.record.trigger} is no longer in the Sensor; kept`;
      } else {
        const events = d.record.events;
        const env: SettleEnv = {
          ...base,
          context: {
            ...base.context,
            buildPayload: (params) => o.params.buildPayload(params, events),
            applyParameters: (target, params) => o.params.applyParameters(target, params, events),
          },
        };
        const r = await replayOne(env, t, d, maxWait);
        if (r.kind === 'done' || r.kind === 'duplicate') {
          let removedByOther = false;
          try {
            await o.jsm.streams.deleteMessage(dlqStreamName(o.bus), d.seq, false);
          } catch (err) {
            if (!alreadyRemoved(err)) throw err;
            removedByOther = true;
          }
          result = r.kind === 'done' ? 'delivered' : 'alreadyDone';
          outcome = r.kind === 'done' ? r.detail : removedByOther ? 'already replayed' : 'already delivered';
        } else if (r.kind === 'defer') {
          result = 'deferred';
          outcome = `left to the replay holding it (${r.reason})`;
        } else {
          result = 'failed';
          outcome = `failed again: ${r.error}`;
        }
      }
      summary[result]++;
      o.onProgress?.(++done, todo.length, outcome, { seq: d.seq, trigger: d.record.trigger, result });
    }
  } finally {
    lifetime.abort();
    await Promise.allSettled([...runners.values()].map((r) => r.close?.()));
  }
  return summary;
}
