// A dead-letter record always fits on the bus. It carries the events it is about, so with its
// other fields it can be larger than the largest message the bus takes (the server's max_payload,
// 1 MiB by default) even when every event fitted: one event near the limit, or the events of a
// join. Such a record could never be stored, so the message it settles would come back and be
// handled again without end (its trigger fired again on every delivery). Fitting drops the `data`
// of the record's largest events first (id, source, subject, type, time and the other attributes
// stay), then, if that is not enough, everything of an event but its identity, and names what was
// dropped in `omittedData`. A record with omitted data cannot be replayed (`sluice dlq replay`
// counts it as not replayable); the event's identity says which one to send again.
import type { CloudEvent } from '../eventsources/envelope.ts';
import type { DeadLetterRecord } from './settle.ts';

/** Bytes kept free for the message's headers (Nats-Msg-Id) and protocol framing. */
export const HEADER_ROOM = 4096;

/** One event whose data was left out of a dead-letter record. */
export interface OmittedData {
  dependency: string;
  /** Bytes of the event as JSON, before anything was left out. */
  bytes: number;
}

const size = (v: unknown): number => Buffer.byteLength(JSON.stringify(v));

/** The identity of an event: what a record keeps when even the event without data is too large. */
const identity = (e: CloudEvent): CloudEvent => ({
  specversion: e.specversion,
  id: e.id,
  source: e.source,
  type: e.type,
  subject: e.subject,
  time: e.time,
  datacontenttype: e.datacontenttype,
  data: null,
  traceparent: e.traceparent,
});

/**
 * The JSON bytes of `record`, at most `maxPayload - HEADER_ROOM` long when that can be reached
 * (pure). Events are cut largest first: first their `data`, then all but their identity.
 */
export function encodeDeadLetter(record: DeadLetterRecord, maxPayload: number): Buffer {
  const limit = maxPayload - HEADER_ROOM;
  let out = Buffer.from(JSON.stringify(record));
  if (out.length <= limit) return out;
  const events = { ...record.events };
  const omitted: OmittedData[] = [];
  const largest = Object.entries(events).sort(([, a], [, b]) => size(b) - size(a));
  for (const cut of [(e: CloudEvent) => ({ ...e, data: null }) as CloudEvent, identity]) {
    for (const [dep, ev] of largest) {
      if (!omitted.some((o) => o.dependency === dep)) omitted.push({ dependency: dep, bytes: size(ev) });
      events[dep] = cut(ev);
      out = Buffer.from(JSON.stringify({ ...record, events, omittedData: omitted }));
      if (out.length <= limit) return out;
    }
  }
  return out;
}
