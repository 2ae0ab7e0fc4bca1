// Creates or updates a bus's event stream and its dead-letter stream, idempotently. Limits are
// changed in place; a change JetStream cannot apply in place (storage, a retention switch) is
// reported instead of attempted.
import {
  DiscardPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import type { StreamSettings } from '../api/stream-config.ts';
import {
  type BusRef,
  dlqStreamName,
  dlqStreamSubjects,
  eventStreamName,
  eventStreamSubjects,
} from './subjects.ts';

const ms2ns = (ms: number) => Math.round(ms * 1e6);

export interface EnsureResult {
  stream: string;
  action: 'created' | 'updated' | 'unchanged' | 'blocked';
  /** Fields changed (updated) or that could not be changed (blocked). */
  fields: string[];
  message: string;
}

export function desiredStreamConfig(bus: BusRef, s: StreamSettings, replicas: number): Partial<StreamConfig> {
  return {
    name: eventStreamName(bus),
    subjects: eventStreamSubjects(bus),
    storage: StorageType.File,
    retention: s.retention as RetentionPolicy,
    discard: s.discard === 'new' ? DiscardPolicy.New : DiscardPolicy.Old,
    max_msgs: s.maxMsgs,
    max_bytes: s.maxBytes,
    max_age: ms2ns(s.maxAge),
    max_msg_size: s.maxMsgSize,
    num_replicas: replicas,
    duplicate_window: ms2ns(Math.min(s.duplicates, s.maxAge || s.duplicates)),
    allow_direct: true,
  };
}

const COMPARED: Array<keyof StreamConfig> = [
  'subjects',
  'retention',
  'discard',
  'max_msgs',
  'max_bytes',
  'max_age',
  'max_msg_size',
  'num_replicas',
  'duplicate_window',
];
/** Fields JetStream refuses to change on an existing stream. */
const IMMUTABLE: Array<keyof StreamConfig> = ['storage', 'retention'];

async function ensureOne(jsm: JetStreamManager, want: Partial<StreamConfig>): Promise<EnsureResult> {
  const name = want.name!;
  let info: StreamInfo | undefined;
  try {
    info = await jsm.streams.info(name);
  } catch (err) {
    if (!/not found/i.test((err as Error).message)) throw err;
  }
  if (!info) {
    await jsm.streams.add({ ...want, name });
    return { stream: name, action: 'created', fields: [], message: `stream ${name} created` };
  }
  const have = info.config as unknown as Record<string, unknown>;
  const differs = (k: keyof StreamConfig) =>
    JSON.stringify(have[k]) !== JSON.stringify((want as Record<string, unknown>)[k]);
  const blocked = IMMUTABLE.filter((k) => want[k] !== undefined && differs(k));
  if (blocked.length) {
    return {
      stream: name,
      action: 'blocked',
      fields: blocked,
      message: `stream ${name} cannot change ${blocked.join(', ')} in place (have ${blocked.map((k) => `${k}=${JSON.stringify(have[k])}`).join(', ')}); recreate the stream to apply it`,
    };
  }
  const changed = COMPARED.filter(differs);
  if (!changed.length)
    return { stream: name, action: 'unchanged', fields: [], message: `stream ${name} up to date` };
  await jsm.streams.update(name, { ...info.config, ...want } as StreamConfig);
  return {
    stream: name,
    action: 'updated',
    fields: changed,
    message: `stream ${name} updated: ${changed.join(', ')}`,
  };
}

/** Ensures the event stream and the DLQ stream of a bus. */
export async function ensureStreams(
  jsm: JetStreamManager,
  bus: BusRef,
  settings: StreamSettings,
  replicas: number,
): Promise<{ events: EnsureResult; dlq: EnsureResult }> {
  const events = await ensureOne(jsm, desiredStreamConfig(bus, settings, replicas));
  // Dead letters are kept until purged: no age limit, never discarded silently.
  const dlq = await ensureOne(jsm, {
    name: dlqStreamName(bus),
    subjects: dlqStreamSubjects(bus),
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.New,
    max_msgs: -1,
    max_bytes: -1,
    max_age: 0,
    max_msg_size: -1,
    num_replicas: replicas,
    duplicate_window: ms2ns(120_000),
  });
  return { events, dlq };
}

export async function deleteStreams(jsm: JetStreamManager, bus: BusRef): Promise<void> {
  for (const name of [eventStreamName(bus), dlqStreamName(bus)]) {
    try {
      await jsm.streams.delete(name);
    } catch (err) {
      if (!/not found/i.test((err as Error).message)) throw err;
    }
  }
}
