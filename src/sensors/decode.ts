// The Sensor's boundary: a message from the bus is decoded and validated before anything reads
// it. Nothing on the bus is trusted (anyone with publish rights can put bytes there): a message
// that is not a JSON CloudEvent, or whose data is nested deeper than MAX_EVENT_DEPTH, is refused
// with a reason and dead-lettered by the caller. A message without an `id` gets one derived from
// its stream sequence, so it never shares an idempotency key with another id-less message.
import { z } from 'zod';
import { type CloudEvent, newTraceparent } from '../eventsources/envelope.ts';

/** Deepest nesting of arrays/objects accepted in an event (deeper bodies break recursive code). */
export const MAX_EVENT_DEPTH = 512;
/** Longest id accepted (ids go into idempotency and KV keys). */
export const MAX_ID_LENGTH = 512;

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const text = (max: number) => z.string().max(max);

/** What a bus message must look like; missing optional attributes are filled in by decodeBusEvent. */
export const BusEvent = z.object({
  specversion: z.string().max(16).optional(),
  id: text(MAX_ID_LENGTH).min(1).optional(),
  source: text(253).optional(),
  type: text(253).optional(),
  subject: text(253).optional(),
  time: text(64).optional(),
  datacontenttype: text(255).optional(),
  data: z.unknown(),
  traceparent: z.string().optional(),
});

export interface MessageFacts {
  /** Stream sequence of the message (stable across its redeliveries). */
  seq: number;
  /** When the stream stored it (ms). */
  timestampMs: number;
  /** Where the dependency says it comes from, used when the envelope leaves them out. */
  eventSourceName: string;
  eventName: string;
}

export type Decoded = { ok: true; event: CloudEvent } | { ok: false; message: string };

/**
 * True when the JSON text nests deeper than `max` (brackets outside strings). Scans bytes only
 * when the text is long enough to nest that deep, so small events cost nothing.
 */
export function nestedDeeperThan(b: Uint8Array, max: number): boolean {
  if (b.length <= 2 * max || !moreOpeningBracketsThan(b, max)) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** True when `b` holds more than `max` "[" and "{" bytes in all (native scans; few in most events). */
function moreOpeningBracketsThan(b: Uint8Array, max: number): boolean {
  let n = 0;
  for (const c of [0x5b, 0x7b]) {
    for (let i = b.indexOf(c); i !== -1; i = b.indexOf(c, i + 1)) if (++n > max) return true;
  }
  return false;
}

const decoder = new TextDecoder();

// A lone UTF-16 surrogate can only come from a "\\uD800"-style escape (TextDecoder already turns
// bad UTF-8 into U+FFFD). Go's JSON decoding and gjson read one as U+FFFD, so the Sensor does too,
// and only events whose text holds such an escape pay for the walk.
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `v` with every lone surrogate in its strings and keys replaced by U+FFFD (pairs kept). */
function wellFormed(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(LONE_SURROGATE, '\uFFFD');
  if (Array.isArray(v)) return v.map(wellFormed);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v))
    Object.defineProperty(out, wellFormed(k) as string, {
      value: wellFormed(x),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

/** Decodes and validates one bus message (never throws). */
export function decodeBusEvent(b: Uint8Array, m: MessageFacts): Decoded {
  if (nestedDeeperThan(b, MAX_EVENT_DEPTH))
    return { ok: false, message: `event nested deeper than ${MAX_EVENT_DEPTH} levels` };
  let raw: unknown;
  try {
    const text = decoder.decode(b);
    raw = JSON.parse(text);
    if (SURROGATE_ESCAPE.test(text)) raw = wellFormed(raw);
  } catch (e) {
    return { ok: false, message: `not JSON: ${(e as Error).message}` };
  }
  const r = BusEvent.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues[0];
    const where = first?.path.length ? `${first.path.join('.')}: ` : '';
    return { ok: false, message: `not a CloudEvent: ${where}${first?.message ?? 'invalid'}` };
  }
  const e = r.data;
  const time = e.time && !Number.isNaN(Date.parse(e.time)) ? e.time : new Date(m.timestampMs).toISOString();
  return {
    ok: true,
    event: {
      specversion: '1.0',
      id: e.id ?? `seq-${m.seq}`,
      source: e.source ?? m.eventSourceName,
      type: e.type ?? '',
      subject: e.subject ?? m.eventName,
      time,
      datacontenttype: e.datacontenttype ?? 'application/json',
      data: e.data === undefined ? null : e.data,
      // A malformed traceparent would end up in trigger headers and log lines: start a new trace.
      traceparent: e.traceparent && TRACEPARENT.test(e.traceparent) ? e.traceparent : newTraceparent(),
    },
  };
}
