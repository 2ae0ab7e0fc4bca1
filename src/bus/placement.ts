// Where a bus keeps what it stores, decided in one place: the event stream, the DLQ stream and
// every KV bucket (a Sensor's processed set and partial matches, a calendar's last fire) get the
// same number of copies and the same storage, derived from the EventBus.
import type { EventBusSpec } from '../api/eventbus.ts';
import type { StreamSettings } from '../api/stream-config.ts';

/** Most copies worth keeping: 3 survives one server loss during a rolling restart of another. */
const MAX_DEFAULT_REPLICAS = 3;

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
export function busStorage(spec: EventBusSpec): 'persistent' | 'ephemeral' | 'external' {
  if (!spec.jetstream) return 'external';
  return spec.jetstream.persistence ? 'persistent' : 'ephemeral';
}
