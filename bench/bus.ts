// Bus micro-benchmark: the sluice Publisher and consumer against a raw pipelined
// @nats-io/jetstream publisher and a raw consume+ack loop, in the same run on the same server.
// Usage: node bench/bus.ts [--count N] [--rounds R]
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AckPolicy, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { parseStreamConfig } from '../src/api/stream-config.ts';
import { consume, ensureConsumer } from '../src/bus/consumer.ts';
import { Publisher } from '../src/bus/publisher.ts';
import { ensureStreams } from '../src/bus/streams.ts';
import { type BusRef, eventStreamName, eventSubject } from '../src/bus/subjects.ts';
import { startNats } from '../test/harness/nats.ts';
import { requireTool } from '../test/harness/tools.ts';
import { machineInfo } from './machine.ts';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '50000' }, rounds: { type: 'string', default: '3' } },
});
const N = Number(values.count);
const ROUNDS = Number(values.rounds);
const WINDOW = 2048;
const payload = new Uint8Array(1024).fill(120);

const server = await startNats();
const nc = await connect({ servers: server.url });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
const settings = parseStreamConfig('maxMsgs: -1\nmaxAge: 1h');
if (!settings.ok) throw new Error('bad settings');

let busCounter = 0;
async function freshBus(): Promise<BusRef> {
  const bus = { namespace: 'bench', busName: `b${busCounter++}` };
  await ensureStreams(jsm, bus, settings.ok ? settings.settings : ({} as never), 1);
  return bus;
}

/** The same caller loop for both sides: keep WINDOW publishes in flight. */
async function windowed(publish: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  const inflight = new Set<Promise<unknown>>();
  for (let i = 0; i < N; i++) {
    const p: Promise<unknown> = publish(i).then(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= WINDOW) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  return N / ((performance.now() - t0) / 1000);
}

async function rawPublish(bus: BusRef): Promise<number> {
  const subject = eventSubject(bus, 'es', 'ev');
  return windowed((i) => js.publish(subject, payload, { msgID: `r${i}` }));
}

async function sluicePublish(bus: BusRef): Promise<number> {
  const pub = new Publisher(nc, { maxInFlight: WINDOW });
  const subject = eventSubject(bus, 'es', 'ev');
  return windowed((i) => pub.publish(subject, payload, { msgId: `s${i}` }));
}

async function rawConsume(bus: BusRef): Promise<number> {
  const stream = eventStreamName(bus);
  await jsm.consumers.add(stream, {
    durable_name: 'raw',
    ack_policy: AckPolicy.Explicit,
    max_ack_pending: 10_000,
  });
  const c = await js.consumers.get(stream, 'raw');
  const t0 = performance.now();
  let n = 0;
  const msgs = await c.consume({ max_messages: 256 });
  for await (const m of msgs) {
    m.ack();
    if (++n === N) break;
  }
  return N / ((performance.now() - t0) / 1000);
}

async function sluiceConsume(bus: BusRef): Promise<number> {
  const stream = eventStreamName(bus);
  await ensureConsumer(jsm, {
    stream,
    durable: 'sluice',
    filterSubject: eventSubject(bus, 'es', 'ev'),
    deliver: 'all',
    maxAckPending: 10_000,
  });
  const t0 = performance.now();
  let n = 0;
  const ac = new AbortController();
  await consume(
    js,
    stream,
    'sluice',
    async (m: JsMsg) => {
      m.ack();
      if (++n === N) ac.abort();
    },
    { signal: ac.signal, batch: 256, concurrency: 256 },
  );
  return N / ((performance.now() - t0) / 1000);
}

const results: Record<string, number[]> = {
  rawPublish: [],
  sluicePublish: [],
  rawConsume: [],
  sluiceConsume: [],
};
// Warm-up, then alternate so neither side always runs on a warmer server.
await rawPublish(await freshBus());
for (let r = 0; r < ROUNDS; r++) {
  const a = await freshBus();
  const b = await freshBus();
  if (r % 2 === 0) {
    results.rawPublish!.push(await rawPublish(a));
    results.sluicePublish!.push(await sluicePublish(b));
  } else {
    results.sluicePublish!.push(await sluicePublish(b));
    results.rawPublish!.push(await rawPublish(a));
  }
  if (r % 2 === 0) {
    results.rawConsume!.push(await rawConsume(a));
    results.sluiceConsume!.push(await sluiceConsume(b));
  } else {
    results.sluiceConsume!.push(await sluiceConsume(b));
    results.rawConsume!.push(await rawConsume(a));
  }
  await jsm.streams.delete(eventStreamName(a));
  await jsm.streams.delete(eventStreamName(b));
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(median(v))]));
const summary = {
  scenario: 'bus',
  messages: N,
  payloadBytes: payload.length,
  rounds: ROUNDS,
  medianMsgsPerSec: m,
  ratios: {
    publish: Number((m.sluicePublish! / m.rawPublish!).toFixed(3)),
    consume: Number((m.sluiceConsume! / m.rawConsume!).toFixed(3)),
  },
  machine: machineInfo(requireTool('nats-server')),
};
console.log(`bus micro-benchmark: ${N} x 1 KiB, ${ROUNDS} rounds (median msgs/s)`);
console.log(`  publish  raw ${m.rawPublish}  sluice ${m.sluicePublish}  ratio ${summary.ratios.publish}`);
console.log(`  consume  raw ${m.rawConsume}  sluice ${m.sluiceConsume}  ratio ${summary.ratios.consume}`);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/bus.json', import.meta.url), `${JSON.stringify(summary, null, 2)}\n`);
await nc.close();
await server.stop();
