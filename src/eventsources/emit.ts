// What `SourceContext.emit` does for one entry: `filter.expression`, the CloudEvent envelope, the
// publish that resolves only once the bus confirmed it (confirm.ts), and the upstream metrics
// (events sent, failed, filtered out, time to confirmation).
import { BusError } from '../bus/errors.ts';
import type { Publisher } from '../bus/publisher.ts';
import type { Logger } from '../observability/logger.ts';
import type { EmitOptions, EmitResult } from './adapter.ts';
import { publishConfirmed } from './confirm.ts';
import { type CloudEvent, encodeEvent, envelope } from './envelope.ts';
import { publishableId } from './event-id.ts';
import { validDate } from './fields.ts';
import { compileFilter } from './filter.ts';
import type { EventSourceMetrics } from './metrics.ts';
import { inTurn } from './turn.ts';

/** One entry's emit: see SourceContext.emit. */
export type Emit = (data: unknown, opts?: EmitOptions) => Promise<EmitResult>;

export interface EmitterOptions {
  /** The EventSource's name: the events' `source` and the first part of their Nats-Msg-Id. */
  eventSourceName: string;
  /** The source type (the events' `type`). */
  type: string;
  /** The event name (the events' `subject`, and the last token of `busSubject`). */
  eventName: string;
  /** The entry's `filter.expression`, if any (compiled here; throws FilterError when invalid). */
  filterExpression?: string | undefined;
  /** Where the events are published. */
  busSubject: string;
  publisher: Publisher;
  /** How long (ms) one event may take to be confirmed before emit rejects. */
  publishDeadlineMs: number;
  /** True once the bus connection is closed for good (no retry can succeed). */
  closed: () => boolean;
  metrics: EventSourceMetrics;
  /** The series' labels: namespace, eventsource_name, event_name. */
  labels: { namespace: string; eventsource_name: string; event_name: string };
  log: Logger;
}

/** The event's bytes; a BusError `Invalid` (not retryable: the same input fails again) when it cannot be encoded. */
function encodeOrRefuse(ce: CloudEvent): Uint8Array {
  try {
    return encodeEvent(ce);
  } catch (err) {
    throw new BusError('Invalid', `the event cannot be encoded: ${(err as Error).message}`);
  }
}

/**
 * The emit of one entry. It resolves `filtered` when the filter is false (nothing published),
 * `published` once the bus stored the event; it rejects with the BusError of the last attempt
 * (counted in events_sent_failed and logged at warn) when the bus did not confirm in time or
 * refused the event.
 */
export function entryEmitter(o: EmitterOptions): Emit {
  const filter = o.filterExpression ? compileFilter(o.filterExpression) : undefined;
  const sent = o.metrics.sent.labels(o.labels);
  const sentFailed = o.metrics.sentFailed.labels(o.labels);
  const filteredOut = o.metrics.filteredOut.labels(o.labels);
  const duration = o.metrics.duration.labels(o.labels);
  const confirm = { deadlineMs: o.publishDeadlineMs, closed: o.closed };
  return async (data, opts = {}) => {
    const start = performance.now();
    if (filter && !filter.matches(data)) {
      filteredOut.inc();
      return 'filtered';
    }
    const ce = envelope({
      // An id from outside that cannot travel in a NATS header becomes a digest of itself.
      id: opts.id ? publishableId(opts.id) : undefined,
      source: o.eventSourceName,
      type: o.type,
      subject: o.eventName,
      data,
      // A source's out-of-range time (an invalid Date) falls back to now, never throws.
      time: validDate(opts.time),
      traceparent: opts.traceparent || undefined,
      datacontenttype: opts.datacontenttype || undefined,
    });
    try {
      const bytes = encodeOrRefuse(ce);
      await inTurn(() =>
        publishConfirmed(
          o.publisher,
          o.busSubject,
          bytes,
          {
            msgId: `${o.eventSourceName}/${o.eventName}/${ce.id}`,
            headers: { traceparent: ce.traceparent, 'ce-id': ce.id },
          },
          confirm,
        ),
      );
    } catch (err) {
      sentFailed.inc();
      o.log.warn({ id: ce.id, err: (err as Error).message }, 'event not published; source told to retry');
      throw err;
    }
    sent.inc();
    duration.observe(performance.now() - start);
    return 'published';
  };
}
