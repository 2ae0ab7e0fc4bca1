// The CloudEvents 1.0 envelope every event travels in, plus the trace context that follows it to
// triggers and log lines. `id` is stable when the source provides one, so a retried delivery is
// the same event (and the bus drops the repeat).
import { randomFillSync, randomUUID } from 'node:crypto';
import { encodeJson } from './raw-json.ts';

export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  /** EventSource name. */
  source: string;
  /** Source type, e.g. "webhook". */
  type: string;
  /** Event name inside the EventSource. */
  subject: string;
  time: string;
  datacontenttype: string;
  data: T;
  /** W3C trace context; started here when the sender did not send one. */
  traceparent: string;
}

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Random bytes drawn from the CSPRNG a pool at a time (one call per 170 trace ids, not two per id). */
const POOL_BYTES = 4080;
const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let poolAt = POOL_BYTES;

/** A new W3C traceparent: version 00, a random 16-byte trace id and 8-byte span id, sampled. */
export function newTraceparent(): string {
  if (poolAt + 24 > POOL_BYTES) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const at = poolAt;
  poolAt += 24;
  return `00-${pool.toString('hex', at, at + 16)}-${pool.toString('hex', at + 16, at + 24)}-01`;
}

/**
 * The CloudEvent for `data`: `id` random when absent, `time` now when absent, `datacontenttype`
 * application/json when absent, `traceparent` new when absent or not a valid W3C traceparent.
 */
export function envelope<T>(args: {
  id?: string | undefined;
  source: string;
  type: string;
  subject: string;
  data: T;
  time?: Date | undefined;
  traceparent?: string | undefined;
  datacontenttype?: string | undefined;
}): CloudEvent<T> {
  return {
    specversion: '1.0',
    id: args.id ?? randomUUID(),
    source: args.source,
    type: args.type,
    subject: args.subject,
    time: (args.time ?? new Date()).toISOString(),
    datacontenttype: args.datacontenttype ?? 'application/json',
    data: args.data,
    traceparent: args.traceparent && TRACEPARENT.test(args.traceparent) ? args.traceparent : newTraceparent(),
  };
}

/**
 * The event's bytes (UTF-8 JSON); JSON a source carried as sent (RawJson) is written exactly as
 * sent. A Buffer: small events share Node's buffer pool instead of an allocation each.
 */
export const encodeEvent = (ev: CloudEvent): Uint8Array => Buffer.from(encodeJson(ev), 'utf8');
export const decodeEvent = (b: Uint8Array): CloudEvent =>
  JSON.parse(new TextDecoder().decode(b)) as CloudEvent;
