// The CloudEvents 1.0 envelope every event travels in, plus the trace context that follows it to
// triggers and log lines. `id` is stable when the source provides one, so a retried delivery is
// the same event (and the bus drops the repeat).
import { randomBytes, randomUUID } from 'node:crypto';
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

export function newTraceparent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
}

export function envelope<T>(args: {
  id?: string;
  source: string;
  type: string;
  subject: string;
  data: T;
  time?: Date;
  traceparent?: string;
  datacontenttype?: string;
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

const encoder = new TextEncoder();
/** The event's bytes; JSON a source carried as sent (RawJson) is written exactly as sent. */
export const encodeEvent = (ev: CloudEvent): Uint8Array => encoder.encode(encodeJson(ev));
export const decodeEvent = (b: Uint8Array): CloudEvent =>
  JSON.parse(new TextDecoder().decode(b)) as CloudEvent;
