// What an EventSource keeps on the bus: a KV bucket for the calendar sources that persist their
// last fire, and one for the sftp sources' directory listings. The controller creates them (with
// the bus's replicas) and deletes them with the EventSource; the adapters only open them.
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { isNotFound } from './errors.ts';
import { openKv } from './kv.ts';
import { kvBucketName } from './subjects.ts';

/** The calendar bucket name of an EventSource (the one the calendar adapter opens). */
export function calendarBucket(namespace: string, eventSource: string): string {
  return kvBucketName(namespace, eventSource, 'calendar');
}

/** The sftp bucket name of an EventSource (last listing per sftp entry). */
export function sftpBucket(namespace: string, eventSource: string): string {
  return kvBucketName(namespace, eventSource, 'sftp');
}

/** Every bucket an EventSource may own, for deletion (absent ones are skipped). */
export function allEventSourceBuckets(namespace: string, eventSource: string): string[] {
  return [calendarBucket(namespace, eventSource), sftpBucket(namespace, eventSource)];
}

/**
 * KV buckets an EventSource spec needs (pure): the calendar bucket when a calendar persists, the
 * sftp bucket when there is an sftp entry.
 */
export function eventSourceBuckets(namespace: string, eventSource: string, spec: unknown): string[] {
  const s = spec as {
    calendar?: Record<string, { persistence?: unknown } | undefined>;
    sftp?: Record<string, unknown>;
  };
  const persists = Object.values(s?.calendar ?? {}).some((c) => c?.persistence);
  return [
    ...(persists ? [calendarBucket(namespace, eventSource)] : []),
    ...(Object.keys(s?.sftp ?? {}).length ? [sftpBucket(namespace, eventSource)] : []),
  ];
}

export async function provisionBuckets(
  nc: NatsConnection,
  buckets: string[],
  replicas: number,
): Promise<void> {
  for (const b of buckets) await openKv(nc, b, { history: 1, replicas });
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
