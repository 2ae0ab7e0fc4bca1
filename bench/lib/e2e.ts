// Shared by the webhook end-to-end benchmarks, S3 (bench/webhook.ts) and the side-by-side with
// upstream Argo Events (bench/upstream.ts): the Sensor they run, one load level with its drain
// wait, and process memory read from /proc.
import { readdirSync, readFileSync } from 'node:fs';
import type { Child } from './child.ts';
import { round, waitUntil } from './common.ts';
import type { LoadResult, LoadSpec } from './loadgen.ts';
import type { SinkStats } from './sink.ts';

/** Size of every POST body the load generator sends (bytes). */
export const BODY_BYTES = 1024;

export const rateLabel = (rate: number) => (rate > 0 ? `${rate}/s` : 'unbounded');

/**
 * The Sensor of the webhook scenarios, as an Argo Events `Sensor.spec`: one dependency on
 * `<eventSourceName>/<eventName>`, one HTTP trigger POSTing to `sinkUrl` a body with the load
 * generator's `tag` and `sent` (body fields of the webhook event), the event `time` and `id`
 * (context), retried 5 times from 100 ms. `atLeastOnce` is set only when given (upstream's
 * trigger field; sluice always settles after the effect).
 */
export function sinkSensorSpec(o: {
  sinkUrl: string;
  eventSourceName: string;
  eventName?: string;
  atLeastOnce?: boolean;
}): Record<string, unknown> {
  const dependencyName = 'd';
  return {
    dependencies: [
      { name: dependencyName, eventSourceName: o.eventSourceName, eventName: o.eventName ?? 'hook' },
    ],
    triggers: [
      {
        template: {
          name: 'sink',
          http: {
            url: o.sinkUrl,
            method: 'POST',
            payload: [
              { src: { dependencyName, dataKey: 'body.tag' }, dest: 'tag' },
              { src: { dependencyName, dataKey: 'body.sent' }, dest: 'sent' },
              { src: { dependencyName, contextKey: 'time' }, dest: 'time' },
              { src: { dependencyName, contextKey: 'id' }, dest: 'id' },
            ],
          },
        },
        retryStrategy: { steps: 5, duration: '100ms', factor: 2 },
        ...(o.atLeastOnce === undefined ? {} : { atLeastOnce: o.atLeastOnce }),
      },
    ],
  };
}

/** Runs the load generator child: `rate` POSTs/s (0 = unbounded) at `url` for `durationMs`. */
export type Load = (url: string, rate: number, tag: string, durationMs: number) => Promise<LoadResult>;

export function loadWith(loadgen: Child, connections: number): Load {
  return (url, rate, tag, durationMs) =>
    loadgen.call<LoadResult>('run', {
      url,
      rate,
      durationMs,
      connections,
      bodyBytes: BODY_BYTES,
      tag,
    } satisfies LoadSpec);
}

/** One offered rate: what the ingress accepted, what the sink got by the end of the drain wait. */
export interface Level {
  load: LoadResult;
  sink: SinkStats;
  drainedInMs: number;
  /** Accepted but not delivered when the drain wait ended. */
  pendingAfterDrain: number;
  /** CPU time of the `ingressPid` process per accepted request while the load ran (µs), when asked. */
  ingressCpuUs?: number;
  /** CPU time of the `egressPid` process per delivered event, load and drain wait (µs), when asked. */
  egressCpuUs?: number;
}

/**
 * Offers `rate` at `url` for `durationMs` under `tag`, then waits up to `drainMs` for the sink
 * group `${sinkPath}#${tag}` to hold every accepted event, and returns the level's figures.
 */
export async function runLevel(o: {
  load: Load;
  sink: Child;
  url: string;
  sinkPath: string;
  rate: number;
  tag: string;
  durationMs: number;
  drainMs: number;
  /** The process that answers `url` (its CPU time per accepted request is measured). */
  ingressPid?: number | undefined;
  /** The process that delivers to the sink (its CPU time per delivered event is measured). */
  egressPid?: number | undefined;
}): Promise<Level> {
  const group = `${o.sinkPath}#${o.tag}`;
  const cpu0 = cpuMs(o.ingressPid);
  const egress0 = cpuMs(o.egressPid);
  const r = await o.load(o.url, o.rate, o.tag, o.durationMs);
  const ingressCpuUs =
    o.ingressPid === undefined
      ? undefined
      : round(((cpuMs(o.ingressPid) - cpu0) * 1000) / Math.max(1, r.accepted));
  const t0 = performance.now();
  await waitUntil(
    `${r.accepted} deliveries at ${rateLabel(o.rate)}`,
    async () => (await o.sink.call<number>('unique', group)) >= r.accepted,
    o.drainMs,
    10,
  );
  const drainedInMs = round(performance.now() - t0);
  const s = await o.sink.call<SinkStats>('stats', group);
  const egressCpuUs =
    o.egressPid === undefined
      ? undefined
      : round(((cpuMs(o.egressPid) - egress0) * 1000) / Math.max(1, s.unique));
  return {
    load: r,
    sink: s,
    drainedInMs,
    pendingAfterDrain: r.accepted - s.unique,
    ...(ingressCpuUs === undefined ? {} : { ingressCpuUs }),
    ...(egressCpuUs === undefined ? {} : { egressCpuUs }),
  };
}

/** CPU time (ms, user + system, all threads) a process has used so far, from /proc; 0 when gone. */
export function cpuMs(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in clock ticks of 10 ms
  } catch {
    return 0;
  }
}

/**
 * A process's memory from /proc/<pid>/status in MiB: `VmRSS` (resident now) or `VmHWM` (the
 * most it has been resident since it started). 0 when the process is gone.
 */
export function memMiB(pid: number | undefined, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? round(Number(m[1]) / 1024, 1) : 0;
  } catch {
    return 0;
  }
}

/** Open file descriptors of a process and its soft limit (`Max open files`), from /proc; 0 when gone. */
export function openFds(pid: number | undefined): { open: number; limit: number } {
  try {
    const m = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return { open: readdirSync(`/proc/${pid}/fd`).length, limit: m ? Number(m[1]) : 0 };
  } catch {
    return { open: 0, limit: 0 };
  }
}
