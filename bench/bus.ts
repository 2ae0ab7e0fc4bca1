// Bus micro-benchmark: the sluice Publisher and consume() against the raw @nats-io/jetstream
// ceiling, in one run, on one nats-server (started here), over one connection.
//
//   publish   raw: a window of in-flight js.publish() promises (msgID set)      vs
//             sluice: Publisher.publish() driven by the same caller window
//             (also shown: sluice with every publish started at once and only its own bound)
//   consume   raw: consumer.consume() + ack() per message                         vs
//             sluice: consume() with its defaults (batch 256, concurrency 64), ack in the handler
//
// Both sides of a pair use identical streams and consumer configs; runs alternate which side goes
// first, after a warm-up of each, and the median of the rounds is reported.
// Usage: node bench/bus.ts [--count N] [--rounds R] [--window W]
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { parseStreamConfig } from '../src/api/stream-config.ts';
import { BusConnection } from '../src/bus/connection.ts';
import { consume, ensureDependencyConsumer } from '../src/bus/consumer.ts';
import { Publisher } from '../src/bus/publisher.ts';
import { ensureStreams } from '../src/bus/streams.ts';
import { type BusRef, eventStreamName, subjectFor } from '../src/bus/subjects.ts';
import { startNats } from '../test/harness/nats.ts';
import { requireTool } from '../test/harness/tools.ts';
import { machineInfo } from './machine.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '50000' },
    rounds: { type: 'string', default: '3' },
    window: { type: 'string', default: '1024' },
  },
});
const N = Number(values.count);
const ROUNDS = Number(values.rounds);
const WINDOW = Number(values.window);
const payload = new Uint8Array(1024).fill(120);

const server = await startNats();
const conn = await BusConnection.open({ url: server.url, name: 'bench' });
const jsm = await jetstreamManager(conn.nc);
const js = jetstream(conn.nc);
const parsed = parseStreamConfig('maxMsgs: -1\nmaxAge: 1h\nretention: limits');
if (!parsed.ok) throw new Error(parsed.errors.join('; '));
const settings = parsed.settings;

let busCounter = 0;
async function freshBus(): Promise<BusRef> {
  const bus = { namespace: 'bench', busName: `b${busCounter++}` };
  await ensureStreams(jsm, bus, settings);
  return bus;
}

const rate = (t0: number, n = N) => n / ((performance.now() - t0) / 1000);

/** Keeps `WINDOW` publishes in flight: the same caller loop for raw and sluice. */
async function windowed(publish: (i: number) => Promise<unknown>): Promise<number> {
  let inflight = 0;
  let wake: (() => void) | undefined;
  let failure: unknown;
  const done = () => {
    inflight--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  const failed = (err: unknown) => {
    failure ??= err;
    done();
  };
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    while (inflight >= WINDOW) await new Promise<void>((r) => (wake = r));
    inflight++;
    publish(i).then(done, failed);
  }
  while (inflight > 0) await new Promise<void>((r) => (wake = r));
  if (failure) throw failure;
  return rate(t0);
}

const rawPublish = (bus: BusRef, tag: string) => {
  const subject = subjectFor(bus, 'es', 'ev');
  return windowed((i) => js.publish(subject, payload, { msgID: `${tag}${i}` }));
};

const sluicePublish = (bus: BusRef, tag: string) => {
  const pub = new Publisher(conn, { maxInFlight: WINDOW });
  const subject = subjectFor(bus, 'es', 'ev');
  return windowed((i) => pub.publish(subject, payload, { msgId: `${tag}${i}` }));
};

/** Every publish started at once; the Publisher's own bound does the pacing. */
async function sluicePublishAllAtOnce(bus: BusRef, tag: string): Promise<number> {
  const pub = new Publisher(conn, { maxInFlight: WINDOW });
  const subject = subjectFor(bus, 'es', 'ev');
  const t0 = performance.now();
  const all: Promise<unknown>[] = new Array(N);
  for (let i = 0; i < N; i++) all[i] = pub.publish(subject, payload, { msgId: `${tag}${i}` });
  await Promise.all(all);
  return rate(t0);
}

async function dependency(bus: BusRef, name: string) {
  return ensureDependencyConsumer(jsm, {
    bus,
    sensor: 'bench',
    dependency: name,
    eventSourceName: 'es',
    eventName: 'ev',
    deliver: 'all',
  });
}

async function rawConsume(bus: BusRef, name: string): Promise<number> {
  const { stream, durable } = await dependency(bus, name);
  const c = await js.consumers.get(stream, durable);
  const t0 = performance.now();
  let n = 0;
  const msgs = await c.consume({ max_messages: 256 });
  for await (const m of msgs) {
    m.ack();
    if (++n === N) break;
  }
  return rate(t0);
}

async function sluiceConsume(bus: BusRef, name: string): Promise<number> {
  const { stream, durable } = await dependency(bus, name);
  const t0 = performance.now();
  let n = 0;
  const ac = new AbortController();
  await consume(
    js,
    stream,
    durable,
    (m: JsMsg) => {
      m.ack();
      if (++n === N) ac.abort();
    },
    { signal: ac.signal },
  );
  return rate(t0);
}

type Measure = 'rawPublish' | 'sluicePublish' | 'sluicePublishAllAtOnce' | 'rawConsume' | 'sluiceConsume';
const results: Record<Measure, number[]> = {
  rawPublish: [],
  sluicePublish: [],
  sluicePublishAllAtOnce: [],
  rawConsume: [],
  sluiceConsume: [],
};

const tStart = performance.now();
// Warm-up: each code path once (JIT, server caches), results discarded.
{
  const w = await freshBus();
  await rawPublish(w, 'w');
  await sluicePublish(w, 'v');
  await rawConsume(w, 'warm-raw');
  await sluiceConsume(w, 'warm-sluice');
  await jsm.streams.delete(eventStreamName(w));
}
for (let r = 0; r < ROUNDS; r++) {
  const a = await freshBus();
  const b = await freshBus();
  const c = await freshBus();
  const rawFirst = r % 2 === 0;
  const pubs = [
    async () => results.rawPublish.push(await rawPublish(a, 'r')),
    async () => results.sluicePublish.push(await sluicePublish(b, 's')),
  ];
  for (const run of rawFirst ? pubs : pubs.reverse()) await run();
  results.sluicePublishAllAtOnce.push(await sluicePublishAllAtOnce(c, 'x'));
  // Each consumer reads a stream of N events written above; a and b swap roles every round.
  const cons = [
    async () => results.rawConsume.push(await rawConsume(rawFirst ? a : b, `raw${r}`)),
    async () => results.sluiceConsume.push(await sluiceConsume(rawFirst ? b : a, `sluice${r}`)),
  ];
  for (const run of rawFirst ? cons : cons.reverse()) await run();
  for (const bus of [a, b, c]) await jsm.streams.delete(eventStreamName(bus));
  process.stdout.write(`round ${r + 1}/${ROUNDS} done\n`);
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(median(v))])) as Record<
  Measure,
  number
>;
const summary = {
  scenario: 'bus',
  messages: N,
  payloadBytes: payload.length,
  window: WINDOW,
  rounds: ROUNDS,
  medianMsgsPerSec: m,
  allRunsMsgsPerSec: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.map(Math.round)])),
  ratios: {
    publish: Number((m.sluicePublish / m.rawPublish).toFixed(3)),
    publishAllAtOnce: Number((m.sluicePublishAllAtOnce / m.rawPublish).toFixed(3)),
    consume: Number((m.sluiceConsume / m.rawConsume).toFixed(3)),
  },
  targets: { publish: 0.8, consume: 0.7 },
  durationSec: Math.round((performance.now() - tStart) / 1000),
  machine: machineInfo(requireTool('nats-server')),
};
console.log(`bus micro-benchmark: ${N} x 1 KiB events, window ${WINDOW}, ${ROUNDS} rounds (median msgs/s)`);
console.log(
  `  publish  raw ${m.rawPublish}  sluice ${m.sluicePublish}  ratio ${summary.ratios.publish} (target 0.8)`,
);
console.log(
  `           sluice, all started at once: ${m.sluicePublishAllAtOnce}  ratio ${summary.ratios.publishAllAtOnce}`,
);
console.log(
  `  consume  raw ${m.rawConsume}  sluice ${m.sluiceConsume}  ratio ${summary.ratios.consume} (target 0.7)`,
);
console.log(`  machine  ${JSON.stringify(summary.machine)}`);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/bus.json', import.meta.url), `${JSON.stringify(summary, null, 2)}\n`);
await conn.close();
await server.stop();
