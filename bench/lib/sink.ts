// The HTTP sink the benchmark triggers call, in its own process. It records every request by
// group (the path, plus `#<tag>` when the JSON body has a `tag`): arrivals, successes, unique
// idempotency keys, and end-to-end latency when the body carries the event `time` (ISO, set at
// ingress) or `sent` (ms since the epoch, set by the load generator).
//
// Answers by path:
//   /flaky     body `i`: i % 10 == 0 fails once (500) then succeeds; i % 100 == 5 always fails (500)
//   /empty/…   200 with an empty body (Content-Length: 0): upstream Argo Events' HTTP trigger never
//              closes response bodies, so only an empty one lets its client reuse the connection
//   other      200 `ok`
// `node sink.ts [host] [keepAliveMs]` listens on host (default loopback; bench/upstream.ts serves
// other network namespaces from 0.0.0.0 inside its own) and closes a connection idle for
// keepAliveMs (default 30 s).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveParent } from './child.ts';
import { HOST, nowMs, percentile, round } from './common.ts';

interface Group {
  requests: number;
  ok: number;
  failed: number;
  keys: Set<string>;
  duplicates: number;
  firstOkAt: number;
  lastOkAt: number;
  /** Arrival − event time (ms), successful requests only. */
  fromEventTime: number[];
  /** Arrival − load generator send time (ms), successful requests only. */
  fromSent: number[];
  /** Arrival times of successful requests (ms since the epoch). */
  arrivals: number[];
}

export interface SinkStats {
  requests: number;
  ok: number;
  failed: number;
  unique: number;
  duplicates: number;
  firstOkAt: number;
  lastOkAt: number;
  /** Successes per second between the first and the last success. */
  okPerSec: number;
  latencyFromEventTimeMs: { p50: number; p99: number; max: number; n: number };
  latencyFromSentMs: { p50: number; p99: number; max: number; n: number };
  /** Most successes in any window of 1 s (sliding). */
  maxInAnySecond: number;
  /** Most successes in any window of 100 ms (how bursty the arrivals are). */
  maxInAny100ms: number;
  /** Long-run success rate: least-squares slope of the success count over arrival time (per s). */
  okPerSecFitted: number;
}

const groups = new Map<string, Group>();
const flakyAttempts = new Map<number, number>();

function group(key: string): Group {
  let g = groups.get(key);
  if (!g) {
    g = {
      requests: 0,
      ok: 0,
      failed: 0,
      keys: new Set(),
      duplicates: 0,
      firstOkAt: 0,
      lastOkAt: 0,
      fromEventTime: [],
      fromSent: [],
      arrivals: [],
    };
    groups.set(key, g);
  }
  return g;
}

function answer(path: string, body: Record<string, unknown> | undefined): number {
  if (path === '/flaky') {
    const i = Number(body?.i);
    const n = (flakyAttempts.get(i) ?? 0) + 1;
    flakyAttempts.set(i, n);
    if (i % 100 === 5) return 500;
    if (i % 10 === 0 && n === 1) return 500;
  }
  return 200;
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const at = nowMs();
    const path = (req.url ?? '/').split('?')[0]!;
    let body: Record<string, unknown> | undefined;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    const g = group(typeof body?.tag === 'string' ? `${path}#${body.tag}` : path);
    g.requests++;
    const status = answer(path, body);
    if (status < 300) {
      g.ok++;
      const key = String(req.headers['idempotency-key'] ?? body?.id ?? '');
      if (g.keys.has(key)) g.duplicates++;
      else g.keys.add(key);
      if (g.firstOkAt === 0) g.firstOkAt = at;
      g.lastOkAt = at;
      g.arrivals.push(at);
      const t = typeof body?.time === 'string' ? Date.parse(body.time) : Number.NaN;
      if (!Number.isNaN(t)) g.fromEventTime.push(at - t);
      const sent = Number(body?.sent);
      if (Number.isFinite(sent) && sent > 0) g.fromSent.push(at - sent);
    } else g.failed++;
    // An explicit Content-Length: 0 (Node would otherwise send an empty chunked body, which a
    // client must still read to its end before it can reuse the connection).
    if (status < 300 && path.startsWith('/empty/')) res.writeHead(status, { 'content-length': '0' }).end();
    else
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'failing on purpose');
  });
});
server.keepAliveTimeout = Number(process.argv[3] ?? 30_000);

const lat = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return {
    p50: round(percentile(s, 50), 2),
    p99: round(percentile(s, 99), 2),
    max: round(s.at(-1) ?? Number.NaN, 2),
    n: s.length,
  };
};

function maxInWindow(sorted: readonly number[], windowMs: number): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/** Slope of i over t_i (least squares): the rate whether arrivals come evenly or in bursts. */
function fittedRate(ts: readonly number[]): number {
  const n = ts.length;
  if (n < 2) return Number.NaN;
  const t0 = ts[0]!;
  let st = 0;
  let si = 0;
  for (let i = 0; i < n; i++) {
    st += ts[i]! - t0;
    si += i;
  }
  const mt = st / n;
  const mi = si / n;
  let cov = 0;
  let vt = 0;
  for (let i = 0; i < n; i++) {
    const dt = ts[i]! - t0 - mt;
    cov += dt * (i - mi);
    vt += dt * dt;
  }
  return vt > 0 ? round((cov / vt) * 1000, 1) : Number.NaN;
}

function stats(key: string): SinkStats {
  const g = group(key);
  const span = (g.lastOkAt - g.firstOkAt) / 1000;
  return {
    requests: g.requests,
    ok: g.ok,
    failed: g.failed,
    unique: g.keys.size,
    duplicates: g.duplicates,
    firstOkAt: g.firstOkAt,
    lastOkAt: g.lastOkAt,
    okPerSec: span > 0 ? round((g.ok - 1) / span, 1) : Number.NaN,
    latencyFromEventTimeMs: lat(g.fromEventTime),
    latencyFromSentMs: lat(g.fromSent),
    maxInAnySecond: maxInWindow(g.arrivals, 1000),
    maxInAny100ms: maxInWindow(g.arrivals, 100),
    okPerSecFitted: fittedRate(g.arrivals),
  };
}

const host = process.argv[2] ?? HOST;
server.listen(0, host, () => {
  serveParent(
    { url: `http://${host}:${(server.address() as AddressInfo).port}` },
    {
      /** Unique successful keys of a group (cheap; polled while waiting). */
      unique: (key: string) => group(key).keys.size,
      stats: (key: string) => stats(key),
      groups: () => [...groups.keys()],
    },
  );
});
