// Where a bus keeps what it stores, decided in one place: the event stream, the DLQ stream and
// every KV bucket (a Sensor's processed set and partial matches, a calendar's last fire) get the
// same number of copies and the same storage, derived from the EventBus; and how much of the
// JetStream store each of them may take.
//
// Storage budget of a managed bus. Each server's JetStream store is 75% of its volume (the
// persistence claim, or the emptyDir's size limit without persistence), set explicitly so the
// server never sizes itself from the node's disk. Every stream sluice makes has a byte limit the
// server reserves on creation, and the server refuses a stream whose reservation does not fit:
//   event stream   half of the store (its maxBytes, unless streamConfig sets one)
//   dead letters   a tenth of the store (dlqMaxBytes)
//   each KV bucket 16MB (kvMaxBytes); the rest of the store holds them
// A bounded stream cannot grow past its limit, so one role filling its own bucket (or a flood of
// dead letters) never takes the room of events or of another role's state; and the event stream
// cannot take the room the buckets need to record what Sensors did, which would stall them.
import type { EventBusSpec } from '../api/eventbus.ts';
import type { StreamSettings } from '../api/stream-config.ts';
import type { StorageLimits } from './server-config.ts';

/** Most copies worth keeping: 3 survives one server loss during a rolling restart of another. */
const MAX_DEFAULT_REPLICAS = 3;
/** Volume of a persistent managed bus when `persistence.volumeSize` is not set. */
export const DEFAULT_VOLUME_SIZE = '20Gi';
/** emptyDir size limit of a managed bus without persistence. */
export const EPHEMERAL_STORE_SIZE = '4Gi';
/** Share of the volume JetStream may fill (the rest: filesystem, raft logs, snapshots). */
const STORE_SHARE = 0.75;
/** Memory store: sluice keeps nothing in memory streams; a small explicit cap. */
const MEMORY_STORE_BYTES = 64 * 1024 ** 2;
/** Each KV bucket unless streamConfig.kvMaxBytes says otherwise. */
export const DEFAULT_KV_MAX_BYTES = 16 * 1024 ** 2;
/**
 * Dead letters on a server whose store size sluice does not know (reserved on creation, so kept
 * modest: set dlqMaxBytes for more).
 */
const EXTERNAL_DLQ_MAX_BYTES = 64 * 1024 ** 2;

/**
 * Copies of each stored event or KV entry (pure): `streamConfig.replicas` when set, else on a
 * managed bus as many as its servers allow up to 3 (R3 on a 3-server bus, R1 on one server), on
 * an existing server 1 (sluice cannot see its cluster size; set `replicas` there).
 */
export function busReplicas(spec: EventBusSpec, settings: Pick<StreamSettings, 'replicas'>): number {
  if (settings.replicas !== undefined) return settings.replicas;
  if (spec.jetstream) return Math.min(spec.jetstream.replicas ?? 3, MAX_DEFAULT_REPLICAS);
  return 1;
}

/** Whether the managed bus keeps its store on a volume claim ("persistent") or an emptyDir. */
export function busStorage(spec: Pick<EventBusSpec, 'jetstream'>): 'persistent' | 'ephemeral' | 'external' {
  if (!spec.jetstream) return 'external';
  return spec.jetstream.persistence ? 'persistent' : 'ephemeral';
}

const SUFFIX: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
  Pi: 1024 ** 5,
  Ei: 1024 ** 6,
};

/** Bytes of a Kubernetes quantity ("20Gi", "10G", "5e9", 1073741824); undefined if not one. */
export function quantityBytes(q: string | number): number | undefined {
  if (typeof q === 'number') return Number.isFinite(q) && q > 0 ? Math.floor(q) : undefined;
  const m =
    /^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E))?\s*$/.exec(q);
  if (!m) return undefined;
  const n = Number(m[1]) * (m[2] !== undefined ? 10 ** Number(m[2]) : SUFFIX[m[3] ?? '']!);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : undefined;
}

/**
 * Each server's JetStream limits on a managed bus (pure): 75% of the volume claim
 * (`persistence.volumeSize`, default 20Gi) or of the emptyDir size limit (4Gi); undefined for a
 * server sluice does not run.
 */
export function busStoreLimits(spec: Pick<EventBusSpec, 'jetstream'>): StorageLimits | undefined {
  const storage = busStorage(spec);
  if (storage === 'external') return undefined;
  const size = quantityBytes(
    storage === 'persistent'
      ? (spec.jetstream?.persistence?.volumeSize ?? DEFAULT_VOLUME_SIZE)
      : EPHEMERAL_STORE_SIZE,
  );
  return size ? { fileBytes: Math.floor(size * STORE_SHARE), memoryBytes: MEMORY_STORE_BYTES } : undefined;
}

/** What a bus may store, resolved from the EventBus and its streamConfig (pure). */
export interface BusLimits {
  /** Each server's JetStream limits, when sluice runs the servers (a managed bus). */
  store?: StorageLimits;
  /** emptyDir size limit of a managed bus without persistence. */
  ephemeralSize?: string;
  /** The event stream's max_bytes (-1: none). */
  eventMaxBytes: number;
  dlqMaxBytes: number;
  /** 0: kept until purged. */
  dlqMaxAgeMs: number;
  /** Each KV bucket's max_bytes. */
  kvMaxBytes: number;
}

/**
 * The storage budget of a bus (pure; see the header). `{}` for a server sluice does not run:
 * the streamConfig's own limits, dead letters up to 64MB, buckets of kvMaxBytes.
 */
export function busLimits(spec: Pick<EventBusSpec, 'jetstream'>, settings: StreamSettings): BusLimits {
  const store = busStoreLimits(spec);
  const fileBytes = store?.fileBytes;
  return {
    ...(store ? { store } : {}),
    ...(busStorage(spec) === 'ephemeral' ? { ephemeralSize: EPHEMERAL_STORE_SIZE } : {}),
    eventMaxBytes: settings.maxBytes > 0 || !fileBytes ? settings.maxBytes : Math.floor(fileBytes / 2),
    dlqMaxBytes: settings.dlqMaxBytes ?? (fileBytes ? Math.floor(fileBytes / 10) : EXTERNAL_DLQ_MAX_BYTES),
    dlqMaxAgeMs: settings.dlqMaxAge,
    kvMaxBytes: settings.kvMaxBytes ?? DEFAULT_KV_MAX_BYTES,
  };
}
