// Creating and updating a bus's event stream and dead-letter stream, idempotently. Limits change
// in place; a change JetStream cannot make to an existing stream (storage type, switching to or
// from workqueue retention) is returned as a `blocked` result naming the fields, never attempted
// blindly and never thrown, so a reconciler can put it in a status condition. Switching from
// limits to interest retention (the upgrade of a stream made by an older sluice) happens in place,
// then the history every consumer has acknowledged is trimmed so it stops counting as backlog.
import {
  DiscardPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { duplicatesWindowMs, type StreamSettings } from '../api/stream-config.ts';
import { BusError, isNotFound, ServerCode, serverCode } from './errors.ts';
import { versionAtLeast } from './kv-group.ts';
import { type BusLimits, busLimits } from './placement.ts';
import {
  type BusRef,
  dlqStreamName,
  dlqStreamSubjects,
  eventStreamName,
  eventStreamSubjects,
} from './subjects.ts';

const ms2ns = (ms: number) => Math.round(ms * 1e6);

/** The stream config to ensure: a name plus whichever settings sluice manages. */
export type DesiredStream = Partial<StreamConfig> & Pick<StreamConfig, 'name'>;

export interface EnsureResult {
  stream: string;
  action: 'created' | 'updated' | 'unchanged' | 'blocked';
  /** Fields changed (updated) or that cannot be changed in place (blocked). */
  fields: string[];
  message: string;
}

/**
 * The event stream of a bus for the given settings; its byte limit from `limits` (busLimits:
 * half the store on a managed bus when streamConfig sets none).
 */
export function eventStreamConfig(
  bus: BusRef,
  s: StreamSettings,
  replicas = s.replicas ?? 1,
  limits: Pick<BusLimits, 'eventMaxBytes'> = busLimits({}, s),
): DesiredStream {
  const perSubject = s.maxMsgsPerSubject > 0;
  return {
    name: eventStreamName(bus),
    description: `sluice events of EventBus ${bus.namespace}/${bus.busName}`,
    subjects: eventStreamSubjects(bus),
    storage: StorageType.File,
    retention: s.retention as RetentionPolicy,
    discard: s.discard === 'new' ? DiscardPolicy.New : DiscardPolicy.Old,
    max_msgs: s.maxMsgs,
    max_bytes: limits.eventMaxBytes,
    max_age: ms2ns(s.maxAge),
    // Per-event backlog: a full subject refuses only its own events (fairness between sources).
    max_msgs_per_subject: perSubject ? s.maxMsgsPerSubject : -1,
    discard_new_per_subject: perSubject && s.discard === 'new',
    max_msg_size: s.maxMsgSize,
    num_replicas: replicas,
    duplicate_window: ms2ns(duplicatesWindowMs(s)),
    allow_direct: true,
  };
}

/**
 * The dead-letter stream of a bus: bounded in bytes (a full one refuses new dead letters, the
 * Sensor keeps the event and retries; it never drops old ones to make room) and in age
 * (`dlqMaxAgeMs`, 0: until purged; expiries are counted by the drop monitor).
 */
export function dlqStreamConfig(
  bus: BusRef,
  replicas = 1,
  limits: Pick<BusLimits, 'dlqMaxBytes' | 'dlqMaxAgeMs'> = { dlqMaxBytes: -1, dlqMaxAgeMs: 0 },
): DesiredStream {
  const window = 120_000;
  return {
    name: dlqStreamName(bus),
    description: `sluice dead letters of EventBus ${bus.namespace}/${bus.busName}`,
    subjects: dlqStreamSubjects(bus),
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.New,
    max_msgs: -1,
    max_bytes: limits.dlqMaxBytes,
    max_age: ms2ns(limits.dlqMaxAgeMs),
    max_msg_size: -1,
    num_replicas: replicas,
    duplicate_window: ms2ns(limits.dlqMaxAgeMs > 0 ? Math.min(window, limits.dlqMaxAgeMs) : window),
    allow_direct: true,
  };
}

/** Fields compared to decide whether an update is needed (the ones sluice sets). */
const MANAGED: Array<keyof StreamConfig> = [
  'description',
  'subjects',
  'storage',
  'retention',
  'discard',
  'max_msgs',
  'max_bytes',
  'max_age',
  'max_msg_size',
  'num_replicas',
  'duplicate_window',
  'allow_direct',
  'max_msgs_per_subject',
  'discard_new_per_subject',
  'allow_rollup_hdrs',
  'allow_atomic',
  'max_consumers',
];

/** Changes JetStream refuses on an existing stream, checked before trying. */
function blockedFields(have: StreamConfig, want: DesiredStream): string[] {
  const out: string[] = [];
  if (want.storage !== undefined && want.storage !== have.storage) out.push('storage');
  if (
    want.retention !== undefined &&
    want.retention !== have.retention &&
    (want.retention === RetentionPolicy.Workqueue || have.retention === RetentionPolicy.Workqueue)
  )
    out.push('retention');
  return out;
}

/** Equal settings; the server leaves a false flag out of the config it returns. */
const same = (a: unknown, b: unknown) => JSON.stringify(a ?? false) === JSON.stringify(b ?? false);

function invalid(name: string, err: unknown): BusError {
  const msg = err instanceof Error ? err.message : String(err);
  const code = serverCode(err);
  return new BusError('Invalid', `stream ${name}: the server refused the configuration: ${msg}`, {
    cause: err,
    ...(code !== undefined ? { serverCode: code } : {}),
  });
}

/**
 * Creates the stream, or brings an existing one to `want` in place. Throws BusError 'Invalid'
 * when the server refuses the config itself (e.g. 3 replicas on a single server, subjects
 * overlapping another stream); other failures (connection) are thrown as they come.
 */
export async function ensureStream(jsm: JetStreamManager, want: DesiredStream): Promise<EnsureResult> {
  const name = want.name;
  let info: StreamInfo | undefined;
  try {
    info = await jsm.streams.info(name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (!info) {
    try {
      await jsm.streams.add(want);
    } catch (err) {
      if (serverCode(err) === undefined) throw err;
      throw invalid(name, err);
    }
    return { stream: name, action: 'created', fields: [], message: `stream ${name} created` };
  }
  const have = info.config;
  const blocked = blockedFields(have, want);
  if (blocked.length) return blockedResult(name, have, blocked);
  // A server before 2.12 knows no atomic batches and drops the flag: asking again would update
  // the stream on every call.
  const knowsAtomic = versionAtLeast(
    (jsm as unknown as { nc?: { info?: { version?: string } } }).nc?.info?.version,
    2,
    12,
  );
  const changed = MANAGED.filter(
    (k) => want[k] !== undefined && !same(have[k], want[k]) && (k !== 'allow_atomic' || knowsAtomic),
  );
  if (!changed.length)
    return { stream: name, action: 'unchanged', fields: [], message: `stream ${name} up to date` };
  try {
    await jsm.streams.update(name, { ...have, ...want });
  } catch (err) {
    // The server's own list of immutable changes may be longer than ours.
    if (serverCode(err) === ServerCode.StreamInvalidConfig && /can ?not change/i.test(String(err))) {
      return {
        stream: name,
        action: 'blocked',
        fields: changed,
        message: `stream ${name} cannot be changed in place: ${(err as Error).message}; delete and recreate the stream to apply it`,
      };
    }
    if (serverCode(err) === undefined) throw err;
    throw invalid(name, err);
  }
  let trimmed = '';
  if (changed.includes('retention') && want.retention === RetentionPolicy.Interest) {
    const n = await trimConsumed(jsm, name);
    trimmed = `; ${n} event(s) every consumer had already acknowledged were removed`;
  }
  return {
    stream: name,
    action: 'updated',
    fields: changed,
    message: `stream ${name} updated: ${changed.join(', ')}${trimmed}`,
  };
}

/**
 * Removes the events below the lowest ack floor of the stream's consumers (all of them when it
 * has none): after a switch from limits to interest retention these are consumed history the
 * server would otherwise keep until maxAge, counting against maxMsgs. Returns how many went.
 */
export async function trimConsumed(jsm: JetStreamManager, stream: string): Promise<number> {
  let floor = Number.POSITIVE_INFINITY;
  for await (const ci of jsm.consumers.list(stream)) floor = Math.min(floor, ci.ack_floor.stream_seq);
  const r =
    floor === Number.POSITIVE_INFINITY
      ? await jsm.streams.purge(stream)
      : floor > 0
        ? await jsm.streams.purge(stream, { seq: floor + 1 })
        : { purged: 0 };
  return r.purged;
}

function blockedResult(name: string, have: StreamConfig, fields: string[]): EnsureResult {
  const current = fields.map((k) => `${k}=${JSON.stringify(have[k as keyof StreamConfig])}`).join(', ');
  return {
    stream: name,
    action: 'blocked',
    fields,
    message: `stream ${name} cannot change ${fields.join(', ')} in place (currently ${current}); delete and recreate the stream to apply it (its stored events go with it)`,
  };
}

/** Ensures a bus's event stream and its DLQ stream (limits: busLimits of the bus). */
export async function ensureStreams(
  jsm: JetStreamManager,
  bus: BusRef,
  settings: StreamSettings,
  replicas = settings.replicas ?? 1,
  limits: BusLimits = busLimits({}, settings),
): Promise<{ events: EnsureResult; dlq: EnsureResult }> {
  const events = await ensureStream(jsm, eventStreamConfig(bus, settings, replicas, limits));
  const dlq = await ensureStream(jsm, dlqStreamConfig(bus, replicas, limits));
  return { events, dlq };
}

/** Deletes a bus's streams (absent ones are fine). */
export async function deleteStreams(jsm: JetStreamManager, bus: BusRef): Promise<void> {
  for (const name of [eventStreamName(bus), dlqStreamName(bus)]) {
    try {
      await jsm.streams.delete(name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
