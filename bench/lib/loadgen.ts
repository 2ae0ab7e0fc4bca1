// The S3 load generator, in its own process: POSTs ~1 KiB JSON bodies over keep-alive
// connections on loopback, either at a fixed offered rate (open loop: requests are due at
// start + n/rate; a due request waits only for a free connection) or unbounded (every connection
// busy all the time). Each request carries a unique Idempotency-Key `<tag>-<n>` and, in the body,
// `tag` and `sent` (ms since the epoch) for the sink's accounting.
import { Agent, request } from 'node:http';
import { serveParent } from './child.ts';
import { nowMs, percentile, round } from './common.ts';

export interface LoadSpec {
  url: string;
  /** Offered requests per second; 0 = unbounded. */
  rate: number;
  durationMs: number;
  connections: number;
  bodyBytes: number;
  tag: string;
}

export interface LoadResult {
  tag: string;
  offeredRate: number;
  sent: number;
  accepted: number;
  non2xx: number;
  statuses: Record<string, number>;
  errors: number;
  /** Requests that were due but never sent (all connections busy until the end). */
  notSent: number;
  elapsedMs: number;
  acceptedPerSec: number;
  /** Client-side response time of accepted requests (ms). */
  responseMs: { p50: number; p99: number };
}

function run(spec: LoadSpec): Promise<LoadResult> {
  // BENCH_NO_KEEPALIVE=1: a new connection per request, as many webhook senders do.
  const agent = new Agent({
    keepAlive: process.env.BENCH_NO_KEEPALIVE !== '1',
    maxSockets: spec.connections,
  });
  const url = new URL(spec.url);
  const pad = 'x'.repeat(Math.max(0, spec.bodyBytes - 80));
  const statuses: Record<string, number> = {};
  const times: number[] = [];
  let sent = 0;
  let accepted = 0;
  let errors = 0;
  let inFlight = 0;
  const start = nowMs();
  const end = start + spec.durationMs;

  return new Promise((resolve) => {
    let finished = false;
    const finish = () => {
      if (finished || inFlight > 0 || nowMs() < end) return;
      finished = true;
      clearInterval(ticker);
      agent.destroy();
      const elapsedMs = nowMs() - start;
      const due = spec.rate > 0 ? Math.floor((spec.durationMs * spec.rate) / 1000) : sent;
      times.sort((a, b) => a - b);
      resolve({
        tag: spec.tag,
        offeredRate: spec.rate,
        sent,
        accepted,
        non2xx: Object.entries(statuses)
          .filter(([s]) => !s.startsWith('2'))
          .reduce((a, [, n]) => a + n, 0),
        statuses,
        errors,
        notSent: Math.max(0, due - sent),
        elapsedMs: round(elapsedMs),
        acceptedPerSec: round(accepted / (Math.min(elapsedMs, spec.durationMs) / 1000)),
        responseMs: { p50: round(percentile(times, 50), 2), p99: round(percentile(times, 99), 2) },
      });
    };
    const fire = () => {
      const n = sent++;
      inFlight++;
      const sentAt = nowMs();
      const body = Buffer.from(JSON.stringify({ tag: spec.tag, n, sent: sentAt, pad }));
      const req = request(
        url,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': String(body.length),
            'idempotency-key': `${spec.tag}-${n}`,
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            const s = String(res.statusCode);
            statuses[s] = (statuses[s] ?? 0) + 1;
            if (res.statusCode && res.statusCode >= 200 && res.statusCode < 300) {
              accepted++;
              times.push(nowMs() - sentAt);
            }
            inFlight--;
            pump();
          });
        },
      );
      req.on('error', () => {
        errors++;
        inFlight--;
        pump();
      });
      req.end(body);
    };
    const pump = () => {
      const now = nowMs();
      if (now < end) {
        const due = spec.rate > 0 ? Math.floor(((now - start) * spec.rate) / 1000) : Number.POSITIVE_INFINITY;
        while (sent < due && inFlight < spec.connections) fire();
      }
      finish();
    };
    const ticker = setInterval(pump, 1);
    pump();
  });
}

serveParent({ pid: process.pid }, { run: (spec: LoadSpec) => run(spec) });
