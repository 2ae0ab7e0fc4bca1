// EventSource metrics: upstream's names (argo-events pkg/metrics) for events sent, failed and
// their processing time, plus sluice's filtered-out counter. One set per registry; several
// EventSources in one process (`sluice dev`) share it, told apart by their labels.
import { Counter, Histogram, type Registry } from 'prom-client';
import { adopt } from '../observability/metrics.ts';

/** Registers (or finds) the EventSource metrics on `registry`. Durations are in milliseconds, as upstream's. */
export function eventSourceMetrics(registry: Registry) {
  return {
    sent: adopt(
      registry,
      new Counter({
        name: 'argo_events_events_sent_total',
        help: 'Events published to the bus.',
        labelNames: ['namespace', 'eventsource_name', 'event_name'],
        registers: [],
      }),
    ),
    sentFailed: adopt(
      registry,
      new Counter({
        name: 'argo_events_events_sent_failed_total',
        help: 'Events that could not be published (the sender was told to retry).',
        labelNames: ['namespace', 'eventsource_name', 'event_name'],
        registers: [],
      }),
    ),
    processingFailed: adopt(
      registry,
      new Counter({
        name: 'argo_events_events_processing_failed_total',
        help: 'Events rejected or lost before publishing (bad input, auth, size, capacity, source errors).',
        labelNames: ['namespace', 'eventsource_name', 'event_name', 'status'],
        registers: [],
      }),
    ),
    filteredOut: adopt(
      registry,
      new Counter({
        name: 'sluice_eventsource_events_filtered_total',
        help: 'Events dropped by filter.expression.',
        labelNames: ['namespace', 'eventsource_name', 'event_name'],
        registers: [],
      }),
    ),
    duration: adopt(
      registry,
      new Histogram({
        name: 'argo_events_event_processing_duration_milliseconds',
        help: 'Time from receiving an event to the bus confirming it.',
        labelNames: ['namespace', 'eventsource_name', 'event_name'],
        buckets: [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
        registers: [],
      }),
    ),
    running: adopt(
      registry,
      new Counter({
        name: 'argo_events_event_service_running_total',
        help: 'Event services started, by source type.',
        labelNames: ['namespace', 'eventsource_name', 'event_type'],
        registers: [],
      }),
    ),
  };
}

export type EventSourceMetrics = ReturnType<typeof eventSourceMetrics>;
