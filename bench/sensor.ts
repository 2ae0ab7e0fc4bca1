// S2 consume: the Sensor runtime against a raw @nats-io/jetstream consume+ack loop, over the same
// pre-published events (N × ~1 KiB CloudEvents), on a private nats-server.
//
//   one dependency   raw: consume() + ack() per message on a durable with the Sensor's consumer
//                    settings                                                              vs
//                    sluice: startSensor, one dependency with a passing data filter (when this
//                    build supports filters), a `log` trigger whose logger writes to /dev/null
//   AND of two       the same over two event streams (--and-count each, default N/10: this path
//                    is much slower): raw = two loops at once; sluice = one trigger whose
//                    condition is both dependencies (partial matches in KV)
//
// A run ends when every message is acked (consumer info: nothing pending, nothing unacked); the
// sluice time includes starting the Sensor (KV buckets, consumers). Events/s = messages / time.
// Usage: node bench/sensor.ts [--count N] [--and-count M] [--rounds R]   (BENCH_SMOKE=1: tiny counts)
import { parseArgs } from 'node:util';
import type { EventDependency } from '../src/api/sensor.ts';
import { ensureDependencyConsumer } from '../src/bus/consumer.ts';
import { Publisher } from '../src/bus/publisher.ts';
import { type BusRef, consumerName, eventStreamName, subjectFor } from '../src/bus/subjects.ts';
import { encodeEvent, envelope } from '../src/eventsources/envelope.ts';
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
import { dependencySupported, metricValue, runSensor } from './lib/runtime.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: SMOKE ? '300' : '20000' },
    'and-count': { type: 'string' },
    rounds: { type: 'string', default: '1' },
  },
});
const N = Number(values.count);
// The AND case runs slower (each event is checked against the used marks and changes the
// trigger's partial match, written behind to KV): fewer events.
const NAND = Number(values['and-count'] ?? Math.max(100, Math.floor(N / 10)));
const ROUNDS = Number(values.rounds);
const ES = 'hooks';
const tStart = performance.now();

const nats = await openNats();
const { jsm, js } = nats;
const publisher = new Publisher(nats.conn, { maxInFlight: 1024 });
const pad = 'x'.repeat(800);

/** N events of ~1 KiB (encoded envelope) on each event name, published before anyone consumes. */
async function publishEvents(bus: BusRef, eventNames: string[], n: number): Promise<number> {
  let bytes = 0;
  for (const ev of eventNames) {
    const subject = subjectFor(bus, ES, ev);
    const batch: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const data = encodeEvent(
        envelope({
          id: `${ev}-${i}`,
          source: ES,
          type: 'webhook',
          subject: ev,
          data: { kind: 'bench', n: i, pad },
        }),
      );
      bytes = data.length;
      batch.push(publisher.publish(subject, data, { msgId: `${ev}-${i}` }));
      if (batch.length >= 1000) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
  }
  return bytes;
}

/** Raw ceiling: one consume()+ack() loop per event name, all at once, on durables like the Sensor's. */
async function rawConsume(bus: BusRef, eventNames: string[], n: number, tag: string): Promise<number> {
  const t0 = nowMs();
  await Promise.all(
    eventNames.map(async (ev) => {
      const { stream, durable } = await ensureDependencyConsumer(jsm, {
        bus,
        sensor: `raw${tag}`,
        dependency: ev,
        eventSourceName: ES,
        eventName: ev,
        ackWaitMs: 30_000,
        maxAckPending: 1000,
        deliver: 'all',
      });
      const c = await js.consumers.get(stream, durable);
      const msgs = await c.consume({ max_messages: 256 });
      let got = 0;
      for await (const m of msgs) {
        m.ack();
        if (++got === n) break;
      }
    }),
  );
  return ((eventNames.length * n) / (nowMs() - t0)) * 1000;
}

const dataFilter = { data: [{ path: 'kind', type: 'string' as const, value: ['bench'] }] };
const probe: EventDependency = { name: 'd', eventSourceName: ES, eventName: 'ev', filters: dataFilter };
const filterCheck = dependencySupported(probe);
const withFilter = filterCheck.ok;

/** Time until the Sensor has acked every event of its dependencies; events/s. */
async function sensorConsume(
  bus: BusRef,
  eventNames: string[],
  n: number,
  tag: string,
): Promise<{ rate: number; fired: number; filtered: number }> {
  const name = `s${tag}`;
  const deps = eventNames.map((ev) => ({
    name: ev,
    eventSourceName: ES,
    eventName: ev,
    ...(withFilter ? { filters: dataFilter } : {}),
  }));
  const spec = { dependencies: deps, triggers: [{ template: { name: 'log', log: {} } }] };
  const t0 = nowMs();
  const s = await runSensor({
    name,
    bus,
    nc: nats.conn.nc,
    spec,
    log: nullLogger(),
    extra: { deliver: 'all', ackWaitMs: 30_000 },
  });
  const stream = eventStreamName(bus);
  await waitUntil(
    `sensor ${name} to ack ${n} events per dependency`,
    async () => {
      for (const ev of eventNames) {
        const ci = await jsm.consumers.info(stream, consumerName(name, ev));
        if (ci.num_pending > 0 || ci.num_ack_pending > 0 || ci.delivered.stream_seq === 0) return false;
      }
      return true;
    },
    300_000,
    10,
  );
  const rate = ((eventNames.length * n) / (nowMs() - t0)) * 1000;
  const fired = await metricValue(s.registry, 'argo_events_action_triggered_total');
  const filtered = await metricValue(s.registry, 'sluice_sensor_events_total', { result: 'filtered' });
  await s.stop();
  return { rate, fired, filtered };
}

// Warm-up (JIT, server caches): a tenth of the events through each path, results discarded.
{
  const warm = await nats.freshBus('warm');
  const w = Math.max(50, Math.floor(N / 10));
  await publishEvents(warm, ['ev'], w);
  await rawConsume(warm, ['ev'], w, 'w');
  await sensorConsume(warm, ['ev'], w, 'w');
  await jsm.streams.delete(eventStreamName(warm));
}

const runs = {
  raw1: [] as number[],
  sluice1: [] as number[],
  rawAnd: [] as number[],
  sluiceAnd: [] as number[],
};
let fired1 = 0;
let firedAnd = 0;
let filtered = 0;
let eventBytes = 0;
for (let r = 0; r < ROUNDS; r++) {
  const one = await nats.freshBus('one');
  eventBytes = await publishEvents(one, ['ev'], N);
  runs.raw1.push(await rawConsume(one, ['ev'], N, `${r}`));
  const s1 = await sensorConsume(one, ['ev'], N, `1x${r}`);
  runs.sluice1.push(s1.rate);
  fired1 = s1.fired;
  filtered += s1.filtered;
  await jsm.streams.delete(eventStreamName(one));

  const two = await nats.freshBus('and');
  await publishEvents(two, ['a', 'b'], NAND);
  runs.rawAnd.push(await rawConsume(two, ['a', 'b'], NAND, `${r}`));
  const s2 = await sensorConsume(two, ['a', 'b'], NAND, `and${r}`);
  runs.sluiceAnd.push(s2.rate);
  firedAnd = s2.fired;
  filtered += s2.filtered;
  await jsm.streams.delete(eventStreamName(two));
  process.stdout.write(`round ${r + 1}/${ROUNDS} done\n`);
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const m = {
  raw1: round(median(runs.raw1)),
  sluice1: round(median(runs.sluice1)),
  rawAnd: round(median(runs.rawAnd)),
  sluiceAnd: round(median(runs.sluiceAnd)),
};
const ratio1 = round(m.sluice1 / m.raw1, 3);
const ratioAnd = round(m.sluiceAnd / m.rawAnd, 3);
const filterNote = withFilter
  ? 'passing data filter (kind == "bench") on every dependency'
  : `no filter: this build refuses dependency filters (${(filterCheck as { reason: string }).reason})`;

printTable(
  `S2 consume: events of ${eventBytes} B, pre-published, ${ROUNDS} round(s), events/s (median)`,
  ['case', 'events', 'raw consume+ack', 'sluice Sensor', 'ratio', 'target', 'trigger calls'],
  [
    ['1 dependency, log trigger', N, m.raw1, m.sluice1, ratio1, '>= 0.5', fired1],
    ['AND of 2 dependencies', `2 x ${NAND}`, m.rawAnd, m.sluiceAnd, ratioAnd, '>= 0.25', firedAnd],
  ],
);
console.log(`  filter: ${filterNote}`);
if (filtered > 0)
  console.log(`  WARNING: ${filtered} events were filtered out by a filter meant to pass all`);
if (fired1 !== N) console.log(`  WARNING: the log trigger ran ${fired1} times for ${N} events`);
if (firedAnd > NAND)
  console.log(
    `  WARNING: the AND trigger fired ${firedAnd} times for ${NAND} pairs: some event was used in more than one firing`,
  );

writeResult('sensor', {
  events: N,
  eventsPerDependencyInAnd: NAND,
  eventBytes,
  rounds: ROUNDS,
  filter: filterNote,
  eventsPerSec: m,
  allRunsEventsPerSec: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.map((x) => round(x))])),
  ratios: { oneDependency: ratio1, andOfTwo: ratioAnd },
  triggerCalls: { oneDependency: fired1, andOfTwo: firedAnd },
  filteredOut: filtered,
  targets: { oneDependency: 0.5, andOfTwo: 0.25 },
  notes: [
    'sluice time includes starting the Sensor; a run ends when every message is acked',
    'AND: events/s counts the messages of both streams; trigger calls depend on how the two streams interleave',
  ],
  durationSec: round((performance.now() - tStart) / 1000),
  machine: machine(),
});
await nats.close();
