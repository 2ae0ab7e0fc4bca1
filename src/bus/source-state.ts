// What an EventSource keeps on the bus: a KV bucket for the calendar sources that persist their
// last fire. The controller creates it (with the bus's replicas) and deletes it with the
// EventSource; the calendar adapter only opens it.
import type { JetStreamManager } from '@nats-io/jetstream';
import { isNotFound } from './errors.ts';
import { ensureKv } from './kv.ts';
import { DEFAULT_KV_MAX_BYTES } from './placement.ts';
import { kvBucketName } from './subjects.ts';

/** The calendar bucket name of an EventSource (the one the calendar adapter opens). */
export function calendarBucket(namespace: string, eventSource: string): string {
  return kvBucketName(namespace, eventSource, 'calendar');
}

/** KV buckets an EventSource spec needs (pure): the calendar bucket when a calendar persists. */
export function eventSourceBuckets(namespace: string, eventSource: string, spec: unknown): string[] {
  const calendar = (spec as { calendar?: Record<string, { persistence?: unknown } | undefined> })?.calendar;
  const persists = Object.values(calendar ?? {}).some((c) => c?.persistence);
  return persists ? [calendarBucket(namespace, eventSource)] : [];
}

/** Creates (or brings in line) an EventSource's buckets: bounded, refusing writes when full. */
export async function provisionBuckets(
  jsm: JetStreamManager,
  buckets: string[],
  replicas: number,
  maxBytes = DEFAULT_KV_MAX_BYTES,
): Promise<void> {
  for (const b of buckets) await ensureKv(jsm, b, { history: 1, replicas, maxBytes, whenFull: 'refuse' });
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
