// What an EventSource keeps on the bus: a KV bucket for the calendar sources that persist their
// last fire, one for the webhook family's unconfirmed request ids (shared by its replicas so a
// sender's retry after a 503 reuses the id; entries kept for the stream's duplicates window) and
// one for the sftp sources' directory listings. The controller creates them (with the bus's
// replicas and limits) and deletes them with the EventSource; the adapters only open them, so an
// EventSource's credential never needs to create or change a stream, nor make a consumer (the
// webhook follows its bucket with stored-message gets, see followKv).
import type { JetStreamManager } from '@nats-io/jetstream';
import { WEBHOOK_SOURCE_TYPES } from '../api/eventsource/index.ts';
import { isNotFound } from './errors.ts';
import { ensureKv } from './kv.ts';
import { DEFAULT_KV_MAX_BYTES } from './placement.ts';
import { kvBucketName } from './subjects.ts';

/** A KV bucket to create: its name, and how long entries live (ms; unset: for ever). */
export interface BucketSpec {
  name: string;
  ttlMs?: number;
}

/** The calendar bucket name of an EventSource (the one the calendar adapter opens). */
export function calendarBucket(namespace: string, eventSource: string): string {
  return kvBucketName(namespace, eventSource, 'calendar');
}

/** The bucket where an EventSource's webhook servers share unconfirmed request ids. */
export function webhookIdsBucket(namespace: string, eventSource: string): string {
  return kvBucketName(namespace, eventSource, 'webhook-ids');
}

/** The sftp bucket name of an EventSource (last listing per sftp entry). */
export function sftpBucket(namespace: string, eventSource: string): string {
  return kvBucketName(namespace, eventSource, 'sftp');
}

/** Every bucket an EventSource may have, whatever its spec (for deletion). */
export function allEventSourceBuckets(namespace: string, eventSource: string): string[] {
  return [
    calendarBucket(namespace, eventSource),
    webhookIdsBucket(namespace, eventSource),
    sftpBucket(namespace, eventSource),
  ];
}

/**
 * KV buckets an EventSource spec needs (pure): the calendar bucket when a calendar persists, the
 * request-id bucket when a webhook-family source receives HTTP requests (entries live for
 * `duplicatesMs`, the event stream's duplicates window), the sftp bucket when there is an sftp
 * entry.
 */
export function eventSourceBucketSpecs(
  namespace: string,
  eventSource: string,
  spec: unknown,
  duplicatesMs: number,
): BucketSpec[] {
  const s = (spec ?? {}) as Record<string, Record<string, { persistence?: unknown } | undefined> | undefined>;
  const used = (type: string) => Object.keys(s[type] ?? {}).length > 0;
  const out: BucketSpec[] = [];
  if (Object.values(s.calendar ?? {}).some((c) => c?.persistence))
    out.push({ name: calendarBucket(namespace, eventSource) });
  if ([...WEBHOOK_SOURCE_TYPES].some(used))
    out.push({ name: webhookIdsBucket(namespace, eventSource), ttlMs: duplicatesMs });
  if (used('sftp')) out.push({ name: sftpBucket(namespace, eventSource) });
  return out;
}

/** Names of the KV buckets an EventSource spec needs (pure; see eventSourceBucketSpecs). */
export function eventSourceBuckets(namespace: string, eventSource: string, spec: unknown): string[] {
  return eventSourceBucketSpecs(namespace, eventSource, spec, 0).map((b) => b.name);
}

/**
 * Creates (or brings in line) an EventSource's buckets, each bounded to `maxBytes`. A bucket with
 * a TTL (the request ids: past the duplicates window the bus would store a repeat anyway) forgets
 * its oldest entries when full; one without (the calendar's last fire) refuses the write.
 */
export async function provisionBuckets(
  jsm: JetStreamManager,
  buckets: Array<string | BucketSpec>,
  replicas: number,
  maxBytes = DEFAULT_KV_MAX_BYTES,
): Promise<void> {
  for (const b of buckets) {
    const { name, ttlMs } = typeof b === 'string' ? { name: b, ttlMs: undefined } : b;
    await ensureKv(jsm, name, {
      history: 1,
      replicas,
      maxBytes,
      ...(ttlMs ? { ttl: ttlMs, whenFull: 'forget-oldest' as const } : { whenFull: 'refuse' as const }),
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
