// What an EventSource keeps on the bus: a KV bucket for the calendar sources that persist their
// last fire, and one for the webhook front door's unconfirmed request ids (shared by its replicas
// so a sender's retry after a 503 reuses the id). The controller creates them (with the bus's
// replicas and limits) and deletes them with the EventSource; the EventSource only opens them (its
// credential may not create streams or consumers).
import type { JetStreamManager } from '@nats-io/jetstream';
import { isNotFound } from './errors.ts';
import { ensureKv } from './kv.ts';
import { DEFAULT_KV_MAX_BYTES } from './placement.ts';
import { kvBucketName } from './subjects.ts';

/** The calendar bucket name of an EventSource (the one the calendar adapter opens). */
export function calendarBucket(namespace: string, eventSource: string): string {
  return kvBucketName(namespace, eventSource, 'calendar');
}

/** The bucket of a webhook EventSource's unconfirmed request ids (the one the webhook opens). */
export function webhookIdsBucket(namespace: string, eventSource: string): string {
  return kvBucketName(namespace, eventSource, 'webhook-ids');
}

/** Source types served by the webhook front door (src/eventsources/adapters.ts). */
export const WEBHOOK_SOURCE_TYPES: readonly string[] = [
  'bitbucket',
  'bitbucketserver',
  'github',
  'gitlab',
  'slack',
  'stripe',
  'webhook',
];

const hasEntries = (v: unknown) => !!v && typeof v === 'object' && Object.keys(v).length > 0;

/**
 * KV buckets an EventSource spec needs (pure): the calendar bucket when a calendar persists, the
 * webhook-ids bucket when it serves webhooks.
 */
export function eventSourceBuckets(namespace: string, eventSource: string, spec: unknown): string[] {
  const s = (spec ?? {}) as Record<string, unknown>;
  const calendar = s.calendar as Record<string, { persistence?: unknown } | undefined> | undefined;
  const persists = Object.values(calendar ?? {}).some((c) => c?.persistence);
  return [
    ...(persists ? [calendarBucket(namespace, eventSource)] : []),
    ...(WEBHOOK_SOURCE_TYPES.some((t) => hasEntries(s[t])) ? [webhookIdsBucket(namespace, eventSource)] : []),
  ];
}

/** Every bucket an EventSource may have had (for its deletion). */
export function allEventSourceBuckets(namespace: string, eventSource: string): string[] {
  return [calendarBucket(namespace, eventSource), webhookIdsBucket(namespace, eventSource)];
}

/**
 * Creates (or brings in line) an EventSource's buckets. The calendar's last fire refuses writes
 * when full; the webhook ids (`ids.bucket`) expire after the bus's duplicates window `ids.ttlMs`
 * (past it the bus would store a repeat anyway) and, when full, forget the oldest.
 */
export async function provisionBuckets(
  jsm: JetStreamManager,
  buckets: string[],
  replicas: number,
  maxBytes = DEFAULT_KV_MAX_BYTES,
  ids?: { bucket: string; ttlMs: number },
): Promise<void> {
  for (const b of buckets) {
    const isIds = b === ids?.bucket;
    await ensureKv(jsm, b, {
      history: 1,
      replicas,
      maxBytes,
      ...(isIds ? { ttl: ids.ttlMs, whenFull: 'forget-oldest' as const } : { whenFull: 'refuse' as const }),
    });
  }
}

/** Deletes the named KV buckets (absent ones are fine); returns the streams removed. */
export async function deleteBuckets(jsm: JetStreamManager, buckets: string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const b of buckets) {
    try {
      await jsm.streams.delete(`KV_${b}`);
      removed.push(`KV_${b}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return removed;
}
