// Exclusive sources (schedules, watches, broker subscriptions: adapter.exclusive) of an EventSource
// with `replicas > 1` run only in the replica that holds its Lease (`<name>-eventsource`): started
// when this replica becomes the leader, stopped when it stops leading.
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { LeaderElector } from '../controller/leader.ts';
import type { Logger } from '../observability/logger.ts';
import type { StartedSource } from './adapter.ts';
import { type SourceEntry, stopAll } from './entries.ts';

export interface LeadingOptions {
  /** The EventSource's name and namespace (the Lease is `<name>-eventsource` in `leaseNamespace ?? namespace`). */
  name: string;
  namespace: string;
  leaseNamespace?: string | undefined;
  /** This replica's identity in the Lease (default: hostname + pid). */
  identity?: string | undefined;
  leaseDurationMs?: number | undefined;
  renewDeadlineMs?: number | undefined;
  retryPeriodMs?: number | undefined;
  /** Kubernetes access; throws when there is none. */
  kubeConfig(): KubeConfig;
  log: Logger;
}

/** The exclusive sources of one replica, run while it leads. */
export interface Leading {
  /**
   * The sources running now, once their start finished ([] when not leading or it failed). Once
   * the process stops (`stopping` aborted) it waits neither for the next try nor for a start
   * under way: that one's sources are stopped when it finishes.
   */
  sources(): Promise<StartedSource[]>;
  /** Leaves the election (the Lease is released; see LeaderElector.stop). */
  stop(): Promise<void>;
}

/** First and longest wait between tries of a failed start while leading (ms). */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

/**
 * Runs `start` until it succeeds or `signal` aborts (the lead is lost, or the process stops),
 * logging each failure and waiting 1 s, 2 s, ... up to 30 s between tries. Never rejects: it
 * resolves with the started sources, or [] once aborted. Without it a source that failed to start
 * (a broker not reachable yet) left a rejected promise nobody handled, and the leader held the
 * Lease with nothing running.
 */
async function startWhileLeading(
  log: Logger,
  start: () => Promise<StartedSource[]>,
  signal: AbortSignal,
): Promise<StartedSource[]> {
  for (let wait = RETRY_FIRST_MS; !signal.aborted; wait = Math.min(wait * 2, RETRY_MAX_MS)) {
    try {
      const starting = start();
      const started = await untilAborted(starting, signal);
      if (started) return started;
      // Aborted while starting: what still starts is stopped once it has.
      void starting.then(stopAll, () => {});
      break;
    } catch (err) {
      if (signal.aborted) break;
      log.error(
        { err: (err as Error).message, retryInMs: wait },
        'leading: sources failed to start; trying again',
      );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, wait);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
  return [];
}

/** `p`'s value, or undefined as soon as `signal` aborts (p's rejection is rethrown before that). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * Competes for the Lease and runs `exclusive` (started with `start`, aborted through the signal it
 * gets: the lead ended, or `stopping` aborted) while this replica holds it. Throws when there is
 * no Kubernetes access.
 */
export function leadExclusive(
  o: LeadingOptions,
  exclusive: readonly SourceEntry[],
  start: (list: readonly SourceEntry[], signal: AbortSignal) => Promise<StartedSource[]>,
  stopping?: AbortSignal,
): Leading {
  let leading: Promise<StartedSource[]> | undefined;
  const elector = new LeaderElector({
    kubeConfig: o.kubeConfig(),
    namespace: o.leaseNamespace ?? o.namespace,
    name: `${o.name}-eventsource`,
    ...(o.leaseDurationMs ? { leaseDurationMs: o.leaseDurationMs } : {}),
    ...(o.renewDeadlineMs ? { renewDeadlineMs: o.renewDeadlineMs } : {}),
    ...(o.retryPeriodMs ? { retryPeriodMs: o.retryPeriodMs } : {}),
    identity: o.identity ?? `${hostname()}-${process.pid}`,
    logger: o.log,
    onStartedLeading: (lead) => {
      o.log.info({ sources: exclusive.map((e) => `${e.type}/${e.eventName}`) }, 'leading: starting sources');
      // The process stopping ends the tries too: stop() waits for sources() before it leaves the
      // election (which is what ends the lead), so a start that kept failing held it up for ever.
      const signal = stopping ? AbortSignal.any([lead, stopping]) : lead;
      leading = startWhileLeading(o.log, () => start(exclusive, signal), signal);
      lead.addEventListener(
        'abort',
        () => {
          const was = leading;
          leading = undefined;
          void was?.then((s) => stopAll(s));
        },
        { once: true },
      );
    },
  });
  elector.start();
  return {
    sources: async () => (leading ? await leading : []),
    stop: () => elector.stop(),
  };
}
