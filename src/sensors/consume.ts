// The consume step of a Sensor: one pull loop per dependency on its durable consumer, each
// message handed to the receiver (receive.ts). With `replicas > 1` the loops run only while this
// process holds the Sensor's Lease; a new term forgets the partial matches held in memory and
// reads them from the bus again (another leader may have changed them).
import { hostname } from 'node:os';
import type { JsMsg } from '@nats-io/jetstream';
import { jetstream } from '@nats-io/jetstream';
import type { EventDependency } from '../api/sensor.ts';
import { consume, InFlight } from '../bus/consumer.ts';
import { eventStreamName } from '../bus/subjects.ts';
import { LeaderElector } from '../controller/leader.ts';
import type { Logger } from '../observability/logger.ts';
import type { JoinStore } from './join-store.ts';
import type { SensorRuntimeOptions } from './options.ts';

/** One dependency's consumer and the messages it is handling (for the lag poller). */
export interface DependencyConsumer {
  dependency: string;
  durable: string;
  inFlight: InFlight;
  /**
   * The consumer's delivered stream sequence when this process last bound to it (Infinity until
   * then): a message at or below it may have been handled by an earlier process.
   */
  boundAt: number;
}

export interface Consuming {
  consumers: DependencyConsumer[];
  /** True while this process is the only one consuming (replicas 1, or it holds the Lease). */
  sole(): boolean;
  /** Resolves once every loop has stopped (after `signal` aborts) and the Lease is released. */
  stopped(): Promise<void>;
}

/**
 * Starts the pull loops of `o.spec`'s dependencies (`durables[i]` for dependency i), each running
 * `receive` for its messages, at most `o.concurrency` (default 64) at a time per dependency. A
 * failed handler's message is redelivered after 1 s (logged, with `redact` applied).
 */
export function startConsumers(
  o: SensorRuntimeOptions,
  durables: readonly string[],
  receive: (dep: EventDependency, msg: JsMsg, release: () => void) => Promise<void>,
  parts: {
    joins: JoinStore;
    log: Logger;
    redact(text: string): string;
    signal: AbortSignal;
    /** Called when this process stops leading (replicas > 1), before the next leader may consume. */
    onLeadLost?: () => void;
  },
): Consuming {
  const { log, signal: lifetime } = parts;
  const js = jetstream(o.nc);
  const deps = o.spec.dependencies ?? [];
  const consumers = deps.map((dep, i) => ({
    dependency: dep.name,
    durable: durables[i]!,
    inFlight: new InFlight(),
    boundAt: Number.POSITIVE_INFINITY,
  }));
  const loop = (c: DependencyConsumer, dep: EventDependency, signal: AbortSignal) =>
    consume(js, eventStreamName(o.bus), c.durable, (msg, release) => receive(dep, msg, release), {
      inFlight: c.inFlight,
      concurrency: o.concurrency ?? 64,
      batch: 256,
      expiresMs: 5000,
      signal,
      errorDelayMs: 1000,
      onBind: (info) => {
        c.boundAt = Math.max(info.delivered.stream_seq, info.ack_floor.stream_seq);
      },
      onError: (err, msg) => {
        const fields = { dependency: c.dependency, seq: msg.seq, err: parts.redact((err as Error).message) };
        // Work a stop (or a lost Lease) cut short is handed back on purpose: not an error.
        if (signal.aborted) log.info(fields, 'stopping: event handed back for the next process');
        else log.error(fields, 'event handling failed; redelivering');
      },
    }).catch((err: unknown) => {
      if (!signal.aborted)
        log.error({ dependency: c.dependency, err: (err as Error).message }, 'consumer stopped');
    });
  const startAll = (signal: AbortSignal) => consumers.map((c, i) => loop(c, deps[i]!, signal));

  const loops: Promise<void>[] = [];
  let elector: LeaderElector | undefined;
  if ((o.spec.replicas ?? 1) > 1) {
    if (!o.kubeConfig) throw new Error('a Sensor with replicas > 1 needs Kubernetes access for its Lease');
    elector = new LeaderElector({
      kubeConfig: o.kubeConfig(),
      namespace: o.leaseNamespace ?? o.namespace,
      name: `${o.name}-sensor`,
      identity: o.identity ?? `${hostname()}-${process.pid}`,
      logger: log,
      ...(o.leaseDurationMs ? { leaseDurationMs: o.leaseDurationMs } : {}),
      ...(o.renewDeadlineMs ? { renewDeadlineMs: o.renewDeadlineMs } : {}),
      ...(o.retryPeriodMs ? { retryPeriodMs: o.retryPeriodMs } : {}),
      onStartedLeading: (signal) => {
        log.info('leading: consuming');
        // Partial matches may have changed under another leader: read them from the bus again.
        parts.joins.clear();
        signal.addEventListener('abort', () => parts.onLeadLost?.(), { once: true });
        loops.push(...startAll(AbortSignal.any([signal, lifetime])));
      },
    });
    elector.start();
  } else {
    loops.push(...startAll(lifetime));
  }
  return {
    consumers,
    sole: () => (elector ? elector.isLeader() : true),
    async stopped() {
      await Promise.allSettled(loops);
      await elector?.stop();
    },
  };
}
