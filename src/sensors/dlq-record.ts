// A dead-letter record always fits in one bus message. An event near the NATS server's
// max_payload (the webhook accepts bodies up to it) cannot be stored inside a record that also
// carries the envelope, error and outcomes, and a record that cannot be stored leaves its message
// in neither state. So when the encoded record is over the limit, the data of its largest events
// is replaced, largest first, by a marker with the data's size, SHA-256 and first characters; the
// record lists those dependencies in `truncated`, and `sluice dlq replay` keeps such a record
// instead of running the trigger on cut data. The dlqTrigger, which runs before the record is
// written, still gets the whole events.
import { createHash } from 'node:crypto';
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
 * cut as described above when needed (the record passed in is not changed).
 * Throws when even the record without any event data does not fit (an absurdly small limit).
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
  throw new Error(
    `the dead-letter record is ${bytes.length} bytes without its events' data, over the bus limit of ${limit}`,
  );
}
