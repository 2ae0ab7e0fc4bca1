// S4 triggers: the Sensor runtime calling an HTTP sink in a separate process, over pre-published
// events, on a private nats-server.
//
//   (a) all succeed          N events → delivered/s
//   (b) failures             same N; the sink fails i % 10 == 0 once and i % 100 == 5 always;
//                            retryStrategy steps 3 (10 ms) and a dlqTrigger → delivered/s, retries
//                            (sluice_sensor_trigger_retries_total) and DLQ records, each checked
//                            against the exact expected count
//   (c) rateLimit 500/s      M events → achieved rate at the sink vs the limit (and the most in
//                            any 1 s window)
//
// Times run from starting the Sensor until the sink has every expected success and the consumer
// has acked everything. Usage: node bench/triggers.ts [--count N] [--rate-count M]
import { parseArgs } from 'node:util';
import { Publisher } from '../src/bus/publisher.ts';
import {
  type BusRef,
  consumerName,
  dlqStreamName,
  eventStreamName,
  subjectFor,
} from '../src/bus/subjects.ts';
import { encodeEvent, envelope } from '../src/eventsources/envelope.ts';
import { startChild } from './lib/child.ts';
import {
  machine,
  nowMs,
  nullLogger,
  openNats,
  printTable,
  round,
  SMOKE,
  waitUntil,
  writeResult,
} from './lib/common.ts';
import { metricValue, runSensor } from './lib/runtime.ts';
import type { SinkStats } from './lib/sink.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: SMOKE ? '400' : '20000' },
    'rate-count': { type: 'string', default: SMOKE ? '250' : '5000' },
    'rate-limit': { type: 'string', default: SMOKE ? '100' : '500' },
  },
});
const N = Number(values.count);
const M = Number(values['rate-count']);
const LIMIT = Number(values['rate-limit']);
const ES = 'hooks';
const EV = 'order';
const tStart = performance.now();

const nats = await openNats();
const sink = await startChild<{ url: string }>(new URL('./lib/sink.ts', import.meta.url));
const publisher = new Publisher(nats.conn, { maxInFlight: 1024 });
const pad = 'x'.repeat(800);

async function publishEvents(bus: BusRef, n: number): Promise<void> {
  const subject = subjectFor(bus, ES, EV);
  const batch: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const ev = envelope({ id: `e-${i}`, source: ES, type: 'webhook', subject: EV, data: { i, pad } });
    batch.push(publisher.publish(subject, encodeEvent(ev), { msgId: `e-${i}` }));
    if (batch.length >= 1000) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
}

const httpTo = (path: string) => ({
  url: `${sink.ready.url}${path}`,
  method: 'POST',
  payload: [{ src: { dependencyName: 'd', dataKey: 'i' }, dest: 'i' }],
});

interface CaseResult {
  seconds: number;
  deliveredPerSec: number;
  sink: SinkStats;
  retries: number;
  failedAttempts: number;
  dlqRecords: number;
  dlqTriggerCalls: number;
}

/** Starts a Sensor over `n` pre-published events and waits for `expectOk` unique successes at `path`. */
async function runCase(
  tag: string,
  n: number,
  path: string,
  trigger: Record<string, unknown>,
  expectOk: number,
  expectDlq = 0,
): Promise<CaseResult> {
  const bus = await nats.freshBus(tag);
  await publishEvents(bus, n);
  const name = `t-${tag}`;
  const spec = {
    dependencies: [{ name: 'd', eventSourceName: ES, eventName: EV }],
    triggers: [{ template: { name: 'call', http: httpTo(path) }, ...trigger }],
  };
  const t0 = nowMs();
  const s = await runSensor({
    name,
    bus,
    nc: nats.conn.nc,
    spec,
    log: nullLogger(),
    extra: { deliver: 'all', ackWaitMs: 30_000 },
  });
  const dlqCount = async () => (await nats.jsm.streams.info(dlqStreamName(bus))).state.messages;
  await waitUntil(
    `${expectOk} successes at ${path}`,
    async () =>
      (await sink.call<number>('unique', path)) >= expectOk &&
      (expectDlq === 0 || (await dlqCount()) >= expectDlq),
    300_000,
    10,
  );
  const delivered = nowMs();
  await waitUntil(
    `${name} to ack everything`,
    async () => {
      const ci = await nats.jsm.consumers.info(eventStreamName(bus), consumerName(name, 'd'));
      return ci.num_pending === 0 && ci.num_ack_pending === 0;
    },
    30_000,
    10,
  );
  const seconds = (delivered - t0) / 1000;
  const result: CaseResult = {
    seconds: round(seconds, 2),
    deliveredPerSec: round(expectOk / seconds),
    sink: await sink.call<SinkStats>('stats', path),
    retries: await metricValue(s.registry, 'sluice_sensor_trigger_retries_total', { trigger_name: 'call' }),
    failedAttempts: await metricValue(s.registry, 'argo_events_action_failed_total', {
      trigger_name: 'call',
    }),
    dlqRecords: await dlqCount(),
    dlqTriggerCalls: (await sink.call<SinkStats>('stats', '/dlq')).unique,
  };
  await s.stop();
  return result;
}

// Warm-up: a small all-succeed run (JIT, connections), discarded.
await runCase('warm', Math.max(50, Math.floor(N / 20)), '/warm', {}, Math.max(50, Math.floor(N / 20)));

const a = await runCase('ok', N, '/ok', {}, N);

let failOnce = 0;
let alwaysFail = 0;
for (let i = 0; i < N; i++) {
  if (i % 100 === 5) alwaysFail++;
  else if (i % 10 === 0) failOnce++;
}
const expectedRetries = failOnce * 1 + alwaysFail * 2;
const b = await runCase(
  'flaky',
  N,
  '/flaky',
  {
    retryStrategy: { steps: 3, duration: '10ms' },
    dlqTrigger: { template: { name: 'dlq', http: httpTo('/dlq') } },
  },
  N - alwaysFail,
  alwaysFail,
);
// Let stragglers of the DLQ trigger land before judging exactness.
const bChecks = {
  retriesExact: b.retries === expectedRetries,
  dlqRecordsExact: b.dlqRecords === alwaysFail,
  dlqTriggerCallsExact: b.dlqTriggerCalls === alwaysFail,
  noDuplicateEffects: b.sink.duplicates === 0,
  everyOtherEventDelivered: b.sink.unique === N - alwaysFail,
};

const c = await runCase('rl', M, '/rl', { rateLimit: { unit: 'Second', requestsPerUnit: LIMIT } }, M);
// The limit is a sliding window: a window may start `LIMIT` calls at once, so the achieved rate
// is the fitted long-run slope of deliveries over time, checked with the busiest 1 s window.
const achieved = c.sink.okPerSecFitted;
const deviation = round(Math.abs(achieved - LIMIT) / LIMIT, 4);
const busiestOk = c.sink.maxInAnySecond <= LIMIT;

printTable(
  `S4 triggers: HTTP sink in a separate process (events of ~1 KiB, pre-published)`,
  ['case', 'events', 'delivered/s', 'seconds', 'retries', 'DLQ', 'dup effects'],
  [
    ['(a) all succeed', N, a.deliveredPerSec, a.seconds, a.retries, a.dlqRecords, a.sink.duplicates],
    [
      '(b) 10% fail once, 1% always',
      N,
      b.deliveredPerSec,
      b.seconds,
      b.retries,
      b.dlqRecords,
      b.sink.duplicates,
    ],
    [`(c) rateLimit ${LIMIT}/s`, M, c.deliveredPerSec, c.seconds, c.retries, c.dlqRecords, c.sink.duplicates],
  ],
);
console.log(
  `  (b) retries ${b.retries} (expected ${expectedRetries}: ${failOnce} x 1 + ${alwaysFail} x 2) ${bChecks.retriesExact ? 'EXACT' : 'MISMATCH'}; ` +
    `DLQ records ${b.dlqRecords} (expected ${alwaysFail}) ${bChecks.dlqRecordsExact ? 'EXACT' : 'MISMATCH'}; ` +
    `dlqTrigger calls ${b.dlqTriggerCalls} ${bChecks.dlqTriggerCallsExact ? 'EXACT' : 'MISMATCH'}`,
);
console.log(
  `  (c) achieved ${achieved}/s (fitted long-run rate at the sink) vs limit ${LIMIT}/s: ` +
    `${(deviation * 100).toFixed(1)}% off (target within 5%: ${deviation <= 0.05 ? 'yes' : 'NO'}); ` +
    `first to last ${c.sink.okPerSec}/s; most in any 1 s window ${c.sink.maxInAnySecond} ` +
    `(${busiestOk ? 'never above the limit' : 'ABOVE THE LIMIT'}); most in any 100 ms ${c.sink.maxInAny100ms}`,
);

writeResult('triggers', {
  events: N,
  rateLimitEvents: M,
  allSucceed: { deliveredPerSec: a.deliveredPerSec, seconds: a.seconds, sink: a.sink },
  failures: {
    deliveredPerSec: b.deliveredPerSec,
    seconds: b.seconds,
    failOnceIds: failOnce,
    alwaysFailIds: alwaysFail,
    retries: b.retries,
    expectedRetries,
    failedAttempts: b.failedAttempts,
    expectedFailedAttempts: failOnce + alwaysFail * 3,
    dlqRecords: b.dlqRecords,
    dlqTriggerCalls: b.dlqTriggerCalls,
    checks: bChecks,
    sink: b.sink,
  },
  rateLimit: {
    limitPerSec: LIMIT,
    achievedPerSec: achieved,
    firstToLastPerSec: c.sink.okPerSec,
    deviation,
    neverAboveLimitInAnySecond: busiestOk,
    maxInAny100ms: c.sink.maxInAny100ms,
    withinFivePercent: deviation <= 0.05,
    maxInAnySecond: c.sink.maxInAnySecond,
    seconds: c.seconds,
  },
  durationSec: round((performance.now() - tStart) / 1000),
  machine: machine(),
});
await sink.stop();
await nats.close();
if (!Object.values(bChecks).every(Boolean)) {
  console.error('  S4 (b): a count is not exact (see above)');
  process.exitCode = 1;
}
