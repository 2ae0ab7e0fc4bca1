// A dead-letter record always fits in one bus message. An event near the NATS server's
// max_payload (the webhook accepts bodies up to it) cannot be stored inside a record that also
// carries the envelope, error and outcomes, and a record that cannot be stored leaves its message
// in neither state. So when the encoded record is over the limit, the data of its largest events
// is replaced, largest first, by a marker with the data's size, SHA-256 and first characters; the
// record lists those dependencies in `truncated`, and `sluice dlq replay` keeps such a record
// instead of running the trigger on cut data. The dlqTrigger, which runs before the record is
// written, still gets the whole events.
import { createHash } from 'node:crypto';
import type { CloudEvent } from '../eventsources/envelope.ts';
import type { DeadLetterRecord } from './settle.ts';

/** Room kept under max_payload for the message headers (Nats-Msg-Id, subject) (bytes). */
const HEADROOM = 8 * 1024;
/** Characters of cut data kept in its marker, to recognise the event. */
const HEAD_CHARS = 2048;

/** What replaces the data of an event cut from a record. */
export interface TruncatedData {
  'sluice.truncated': { bytes: number; sha256: string; head: string };
}

/**
 * The record encoded as JSON bytes of at most `maxPayload - 8 KiB`, with the largest events' data
 * cut as described above when needed (the record passed in is not changed). When the record is
 * still over the limit without any event data, each event keeps only its identity (id, source,
 * subject, type, time, content type), then its error message and dlqTrigger outcomes are cut to
 * their first 1,024 characters. Throws only when even that does not fit (a limit of a few KiB).
 */
export function encodeDeadLetter(record: DeadLetterRecord, maxPayload: number): Uint8Array {
  const limit = Math.max(1024, maxPayload - HEADROOM);
  let bytes = Buffer.from(JSON.stringify(record));
  if (bytes.length <= limit) return bytes;
  const events = { ...record.events };
  const sizes = Object.entries(events)
    .map(([dep, ev]) => [dep, Buffer.from(JSON.stringify(ev.data ?? null)).length] as const)
    .sort((a, b) => b[1] - a[1]);
  const truncated: string[] = [];
  for (const [dep, size] of sizes) {
    const text = JSON.stringify(events[dep]!.data ?? null);
    const marker: TruncatedData = {
      'sluice.truncated': {
        bytes: size,
        sha256: createHash('sha256').update(text).digest('hex'),
        head: text.slice(0, HEAD_CHARS),
      },
    };
    events[dep] = { ...events[dep]!, data: marker };
    truncated.push(dep);
    bytes = Buffer.from(JSON.stringify({ ...record, events, truncated }));
    if (bytes.length <= limit) return bytes;
  }
  // Still too large (many events, or large attributes besides data): keep each event's identity.
  for (const dep of Object.keys(events)) events[dep] = identityOf(events[dep]!);
  bytes = Buffer.from(JSON.stringify({ ...record, events, truncated }));
  if (bytes.length <= limit) return bytes;
  // Then the free text (error message, dlqTrigger outcomes), cut to their first characters.
  const cut = (t: string) => (t.length > HEAD_CHARS / 2 ? `${t.slice(0, HEAD_CHARS / 2)}…` : t);
  const short: DeadLetterRecord = {
    ...record,
    events,
    truncated,
    error: { code: record.error.code, message: cut(record.error.message) },
    ...(record.dlqTrigger
      ? { dlqTrigger: { ...record.dlqTrigger, outcome: cut(record.dlqTrigger.outcome) } }
      : {}),
    ...(record.dlqTriggers
      ? { dlqTriggers: record.dlqTriggers.map((d) => ({ ...d, outcome: cut(d.outcome) })) }
      : {}),
  };
  bytes = Buffer.from(JSON.stringify(short));
  if (bytes.length <= limit) return bytes;
  throw new Error(
    `the dead-letter record is ${bytes.length} bytes at its smallest, over the bus limit of ${limit}`,
  );
}

/** An event reduced to what names it (the marker of its data stays). */
function identityOf(e: CloudEvent): CloudEvent {
  return {
    specversion: e.specversion,
    id: e.id,
    source: e.source,
    type: e.type,
    subject: e.subject,
    time: e.time,
    datacontenttype: e.datacontenttype,
    data: e.data,
  } as CloudEvent;
}
