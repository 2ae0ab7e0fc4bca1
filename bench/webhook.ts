// S3 webhook end to end, every part in its own process on loopback:
//
//   load generator ──HTTP──▶ webhook EventSource ──▶ nats-server ──▶ Sensor ──HTTP──▶ sink
//   (bench/lib/loadgen.ts)   (bench/lib/role.ts)                   (role.ts)        (lib/sink.ts)
//
// At fixed offered rates (1k, 2k, 5k events/s) and unbounded, for a few seconds each: accepted/s
// and non-2xx at the EventSource, end-to-end latency p50/p99 (event `time` in the CloudEvent,
// set at ingress, to arrival at the sink: the http trigger sends it as a payload parameter with
// contextKey `time`), and events accepted but not delivered after a drain period. Every accepted
// event must reach the sink exactly once (zero loss, no duplicate). Baseline: a bare Node HTTP
// server answering 202, under the same load from the same generator.
// Usage: node bench/webhook.ts [--seconds S] [--drain S] [--rates 1000,2000,5000,0] [--connections C]
import { parseArgs } from 'node:util';
import { startChild } from './lib/child.ts';
import { machine, openNats, printTable, round, SMOKE, sleep, waitUntil, writeResult } from './lib/common.ts';
import {
  BODY_BYTES,
  type Level,
  rateLabel as label,
  loadWith,
  memMiB,
  runLevel,
  sinkSensorSpec,
} from './lib/e2e.ts';
import type { LoadResult } from './lib/loadgen.ts';
import type { RoleConfig } from './lib/role.ts';
import type { SinkStats } from './lib/sink.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: SMOKE ? '1' : '5' },
    drain: { type: 'string', default: SMOKE ? '10' : '15' },
    rates: { type: 'string', default: SMOKE ? '200,0' : '1000,2000,5000,0' },
    connections: { type: 'string', default: '256' },
  },
});
const DURATION_MS = Number(values.seconds) * 1000;
const DRAIN_MS = Number(values.drain) * 1000;
const RATES = values.rates.split(',').map(Number);
const CONNECTIONS = Number(values.connections);
const tStart = performance.now();

const nats = await openNats();
const bus = await nats.freshBus('wh');
const role = new URL('./lib/role.ts', import.meta.url);
const sink = await startChild<{ url: string }>(new URL('./lib/sink.ts', import.meta.url));
const sensorCfg: RoleConfig = {
  natsUrl: nats.server.url,
  bus,
  name: 'deliver',
  spec: sinkSensorSpec({ sinkUrl: `${sink.ready.url}/e2e`, eventSourceName: 'hooks' }),
};
const esCfg: RoleConfig = {
  natsUrl: nats.server.url,
  bus,
  name: 'hooks',
  spec: { webhook: { hook: { port: '0', endpoint: '/hook', method: 'POST' } } },
};
const sensor = await startChild(role, ['sensor', JSON.stringify(sensorCfg)]);
const es = await startChild<{ ports: Record<string, number> }>(role, ['eventsource', JSON.stringify(esCfg)]);
const hookUrl = `http://127.0.0.1:${es.ready.ports['0']}/hook`;
const loadgen = await startChild(new URL('./lib/loadgen.ts', import.meta.url));
const bare = await startChild<{ url: string }>(new URL('./lib/bare.ts', import.meta.url));

const loadFor = loadWith(loadgen, CONNECTIONS);
const load = (url: string, rate: number, tag: string, durationMs = DURATION_MS) =>
  loadFor(url, rate, tag, durationMs);
let sensorRssPeak = 0;
let esRssPeak = 0;
const rssSampler = setInterval(() => {
  sensorRssPeak = Math.max(sensorRssPeak, memMiB(sensor.proc.pid));
  esRssPeak = Math.max(esRssPeak, memMiB(es.proc.pid));
}, 100);
const sensorRssStart = memMiB(sensor.proc.pid);
const esRssStart = memMiB(es.proc.pid);

// Warm-up of both paths (JIT, connections, consumer), discarded.
await load(`${bare.ready.url}/`, 500, 'warm-bare', 1000);
const warm = await load(hookUrl, 500, 'warm', 1000);
await waitUntil(
  'warm-up deliveries',
  async () => (await sink.call<number>('unique', '/e2e#warm')) >= warm.accepted,
  DRAIN_MS,
);

// Baseline first: the bare server under the same load.
const baseline: LoadResult[] = [];
for (const rate of RATES) baseline.push(await load(`${bare.ready.url}/`, rate, `bare-${rate}`));

// A rate offered twice (--rates 1000,1000) gets a tag of its own each time: the same
// Idempotency-Key with other content would be refused (422).
const levelTags = RATES.map((r, i) => (RATES.indexOf(r) === i ? `r${r}` : `r${r}-${i}`));
const levels: Level[] = [];
for (const [i, rate] of RATES.entries()) {
  const l = await runLevel({
    load: loadFor,
    sink,
    url: hookUrl,
    sinkPath: '/e2e',
    rate,
    tag: levelTags[i]!,
    durationMs: DURATION_MS,
    drainMs: DRAIN_MS,
    ingressPid: es.proc.pid,
    egressPid: sensor.proc.pid,
  });
  levels.push(l);
  process.stdout.write(`  ${label(rate)} done: accepted ${l.load.accepted}, delivered ${l.sink.unique}\n`);
}

// Final drain: every accepted event must arrive (zero loss), once (no duplicate effect).
const tags = ['warm', ...levelTags];
const acceptedTotal = warm.accepted + levels.reduce((a, l) => a + l.load.accepted, 0);
const deliveredTotal = async () => {
  let n = 0;
  for (const t of tags) n += await sink.call<number>('unique', `/e2e#${t}`);
  return n;
};
await waitUntil(
  'every accepted event delivered',
  async () => (await deliveredTotal()) >= acceptedTotal,
  60_000,
  50,
);
await sleep(SMOKE ? 200 : 1000); // anything extra (a duplicate) would arrive now
const finalStats = await Promise.all(tags.map((t) => sink.call<SinkStats>('stats', `/e2e#${t}`)));
const delivered = finalStats.reduce((a, s) => a + s.unique, 0);
clearInterval(rssSampler);
await sleep(SMOKE ? 200 : 3000); // idle: what the Sensor keeps after the burst
const sensorRss = { startMiB: sensorRssStart, peakMiB: sensorRssPeak, afterMiB: memMiB(sensor.proc.pid) };
const eventSourceRss = { startMiB: esRssStart, peakMiB: esRssPeak, afterMiB: memMiB(es.proc.pid) };
const duplicates = finalStats.reduce((a, s) => a + s.duplicates, 0);
const zeroLoss = delivered === acceptedTotal && duplicates === 0;

printTable(
  `S3 webhook end to end: ${BODY_BYTES} B POSTs, ${DURATION_MS / 1000} s per rate, ${CONNECTIONS} connections, all on loopback`,
  [
    'offered',
    'bare 202 acc/s',
    'sluice acc/s',
    'ratio',
    'non-2xx',
    'e2e p50 ms',
    'e2e p99 ms',
    'resp p99 ms (bare/sluice)',
    'pending after drain',
  ],
  levels.map((l, i) => {
    const b = baseline[i]!;
    return [
      label(l.load.offeredRate),
      b.acceptedPerSec,
      l.load.acceptedPerSec,
      round(l.load.acceptedPerSec / b.acceptedPerSec, 3),
      l.load.non2xx + l.load.errors,
      l.sink.latencyFromEventTimeMs.p50,
      l.sink.latencyFromEventTimeMs.p99,
      `${b.responseMs.p99} / ${l.load.responseMs.p99}`,
      `${l.pendingAfterDrain} (${round(l.drainedInMs / 1000, 1)} s)`,
    ];
  }),
);
console.log(
  `  zero loss: ${zeroLoss ? 'HELD' : 'NOT HELD'}: accepted ${acceptedTotal}, delivered once ${delivered}, duplicate effects ${duplicates}`,
);
console.log(
  `  Sensor RSS: ${sensorRss.startMiB} MiB at start, peak ${sensorRss.peakMiB} MiB under load, ${sensorRss.afterMiB} MiB after it (target <= 150 MiB)`,
);
console.log(
  `  EventSource CPU per accepted request: ${levels.map((l) => `${label(l.load.offeredRate)} ${l.ingressCpuUs} µs`).join(', ')} (all its threads, GC included)`,
);
console.log(
  `  Sensor CPU per delivered event: ${levels.map((l) => `${label(l.load.offeredRate)} ${l.egressCpuUs} µs`).join(', ')} (all its threads, GC included)`,
);
console.log(
  `  EventSource RSS: ${eventSourceRss.startMiB} MiB at start, peak ${eventSourceRss.peakMiB} MiB under load, ${eventSourceRss.afterMiB} MiB after it (target <= 150 MiB)`,
);
console.log(
  '  e2e latency = sink arrival - CloudEvent time (ISO, millisecond resolution: adds up to 1 ms); pending = accepted but not delivered when the drain wait ended',
);

writeResult('webhook', {
  secondsPerRate: DURATION_MS / 1000,
  drainSeconds: DRAIN_MS / 1000,
  connections: CONNECTIONS,
  bodyBytes: BODY_BYTES,
  baseline: baseline.map((b) => ({
    offeredRate: b.offeredRate,
    acceptedPerSec: b.acceptedPerSec,
    non2xx: b.non2xx,
    errors: b.errors,
    responseMs: b.responseMs,
  })),
  sluice: levels.map((l, i) => ({
    offeredRate: l.load.offeredRate,
    acceptedPerSec: l.load.acceptedPerSec,
    ratioToBare: round(l.load.acceptedPerSec / baseline[i]!.acceptedPerSec, 3),
    accepted: l.load.accepted,
    non2xx: l.load.non2xx,
    statuses: l.load.statuses,
    errors: l.load.errors,
    notSent: l.load.notSent,
    responseMs: l.load.responseMs,
    e2eLatencyMs: l.sink.latencyFromEventTimeMs,
    fromClientSendMs: l.sink.latencyFromSentMs,
    deliveredPerSec: l.sink.okPerSec,
    delivered: l.sink.unique,
    drainedInMs: l.drainedInMs,
    pendingAfterDrain: l.pendingAfterDrain,
    eventSourceCpuUsPerRequest: l.ingressCpuUs,
    sensorCpuUsPerEvent: l.egressCpuUs,
  })),
  zeroLoss: { held: zeroLoss, accepted: acceptedTotal, delivered, duplicates },
  sensorRss,
  eventSourceRss,
  targets: { sustainedEventsPerSec: 5000, p99AtThousandMs: 10 },
  durationSec: round((performance.now() - tStart) / 1000),
  machine: machine(),
});

for (const c of [loadgen, bare, es, sensor, sink]) await c.stop();
await nats.close();
if (!zeroLoss) process.exitCode = 1;
