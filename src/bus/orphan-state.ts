// KV buckets whose Sensor or EventSource no longer exists: left when an object was deleted while
// no controller could clean after it (a namespaced controller that was not running, a finalizer
// removed by hand, an uninstall attempt that timed out). Recognised by name only —
// sluice_<namespace>_<owner>_<purpose> with a purpose sluice uses, in the namespace asked about —
// and only when older than a minute; anything else on the server is left alone.
import type { JetStreamManager } from '@nats-io/jetstream';
import { sensorBuckets } from './sensor-state.ts';
import { allEventSourceBuckets, deleteBuckets } from './source-state.ts';
import { kvNamePart } from './subjects.ts';

/** The purposes of sluice's KV buckets (Sensors: processed, conditions; EventSources: the rest). */
const PURPOSES = new Set(['processed', 'conditions', 'calendar', 'webhook-ids', 'sftp'].map(kvNamePart));

/** The Sensors and EventSources of one namespace that exist (their buckets are kept). */
export interface LiveOwners {
  sensors: Iterable<string>;
  eventSources: Iterable<string>;
}

/**
 * Which of `buckets` (bucket names, without the `KV_` of their stream) are sluice's Sensor or
 * EventSource buckets in `namespace` whose owner is not in `live` (pure).
 */
export function orphanBuckets(buckets: Iterable<string>, namespace: string, live: LiveOwners): string[] {
  const keep = new Set<string>();
  for (const s of live.sensors) for (const b of Object.values(sensorBuckets(namespace, s))) keep.add(b);
  for (const e of live.eventSources) for (const b of allEventSourceBuckets(namespace, e)) keep.add(b);
  const ns = kvNamePart(namespace);
  const out: string[] = [];
  for (const b of buckets) {
    const p = b.split('_');
    if (p.length === 4 && p[0] === 'sluice' && p[1] === ns && PURPOSES.has(p[3]!) && !keep.has(b))
      out.push(b);
  }
  return out.sort();
}

/**
 * Deletes the orphaned KV buckets of `namespace` on this server (see orphanBuckets), leaving those
 * created less than `minAgeMs` ago (default 60 s: a bucket provisioned by another controller
 * process whose object this one has not seen yet). Returns the streams removed.
 */
export async function deleteOrphanBuckets(
  jsm: JetStreamManager,
  namespace: string,
  live: LiveOwners,
  minAgeMs = 60_000,
): Promise<string[]> {
  const old: string[] = [];
  const now = Date.now();
  for await (const si of jsm.streams.list('$KV.>')) {
    const name = si.config.name;
    if (name.startsWith('KV_') && now - Date.parse(si.created) >= minAgeMs) old.push(name.slice(3));
  }
  return deleteBuckets(jsm, orphanBuckets(old, namespace, live));
}
