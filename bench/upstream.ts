// Side by side with upstream Argo Events (`make bench-upstream`, not part of `make test`): the S3
// webhook scenario (bench/webhook.ts) run by sluice and by upstream's own processes, one after
// the other, on ONE nats-server, with the same load generator, Sensor spec and HTTP sink:
//
//   load generator ──HTTP──▶ webhook EventSource ──▶ nats-server ──▶ Sensor ──HTTP──▶ sink
//   (bench/lib/loadgen.ts)   sluice: bench/lib/role.ts              sluice: role.ts   (lib/sink.ts)
//                            upstream: argo-events eventsource-service / sensor-service
//
// Upstream is Argo Events ARGO_EVENTS_VERSION (tools/versions.env), built from the Go module
// proxy by scripts/upstream.sh, unpatched, configured by environment as its controller would
// (bench/lib/argo.ts). Configurations, fresh processes and consumers for each:
//   sluice                     sink answers 200 with an empty body
//   upstream                   same sink; atLeastOnce: false (upstream's default)
//   upstream, atLeastOnce      same sink; atLeastOnce: true (effect before ack)
// (these three deployed at once and offered each rate in turn, so other load on the machine
// falls on all alike)
//   upstream as released       sink answers 200 `ok` (a body): upstream's HTTP trigger never
//                              closes response bodies, so every request leaks its connection;
//                              first offered rate only, for --released-seconds (30) so the leak
//                              shows (the Sensor's open fds and limit are reported)
// Each is offered a fixed rate and unbounded load (--rates, a few seconds each), then drained.
// Reported per level: accepted/s and non-2xx at the EventSource, delivered/s at the sink, events
// undelivered (accepted, not at the sink after the drain; how many of them are still in the bus)
// and duplicate effects, end-to-end latency
// p50/p99 (load generator send → sink arrival: upstream's event time has 1 s resolution, so the
// send time carried in the body is used for both), and peak RSS (VmHWM) of each EventSource and
// Sensor process. Upstream dials NATS with TLS whatever its config says, so the server has a TLS
// listener and sluice is given its CA: both products pay for TLS. Every EventSource and Sensor
// runs in a network namespace of its own, as in a pod (bench/lib/netns.ts); so it needs root.
// Usage: node bench/upstream.ts [--seconds S] [--released-seconds S] [--drain S] [--rates 1000,0]
//        [--connections C]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ConsumerInfo } from '@nats-io/jetstream';
import { eventStreamName } from '../src/bus/subjects.ts';
import { ensurePki } from '../test/harness/certs.ts';
import { cachedTool } from '../test/harness/servers.ts';
import { toolVersions } from '../test/harness/tools.ts';
import { type ArgoProcess, startArgoEventSource, startArgoSensor } from './lib/argo.ts';
import { startChild } from './lib/child.ts';
import { machine, openNats, printTable, round, SMOKE, sleep, waitUntil, writeResult } from './lib/common.ts';
import {
  BODY_BYTES,
  type Level,
  loadWith,
  memMiB,
  openFds,
  rateLabel,
  runLevel,
  sinkSensorSpec,
} from './lib/e2e.ts';
import type { LoadResult } from './lib/loadgen.ts';
import { enterPrivateNetwork, type PodNet, podNet, podNetAddress } from './lib/netns.ts';
import type { RoleConfig } from './lib/role.ts';
import type { SinkStats } from './lib/sink.ts';

enterPrivateNetwork();

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: SMOKE ? '1' : '5' },
    drain: { type: 'string', default: SMOKE ? '10' : '20' },
    rates: { type: 'string', default: SMOKE ? '200,0' : '1000,0' },
    'released-seconds': { type: 'string', default: SMOKE ? '1' : '30' },
    connections: { type: 'string', default: '256' },
  },
});
const DURATION_MS = Number(values.seconds) * 1000;
/** How long the as-released case is offered its rate: long enough for its leak to add up. */
const RELEASED_MS = Number(values['released-seconds']) * 1000;
const DRAIN_MS = Number(values.drain) * 1000;
const RATES = values.rates.split(',').map(Number);
const CONNECTIONS = Number(values.connections);
const VERSION = toolVersions().ARGO_EVENTS_VERSION ?? '?';
/** Upstream's log level; sluice's role processes log at warn too. */
const UPSTREAM_LOG_LEVEL = 'warn';
const tStart = performance.now();
const loadAtStart = loadavg();

const argoBin = cachedTool('argo-events', 'ARGO_EVENTS_VERSION', 'argo-events');
if (!argoBin.path)
  throw new Error(`Argo Events ${VERSION} is not built: run \`make bench-upstream\` (scripts/upstream.sh)`);
const ARGO = argoBin.path;

// Bounded in time whatever happens; children and namespaces go with the process.
setTimeout(() => {
  process.stderr.write('bench/upstream.ts: gave up after 20 minutes\n');
  process.exit(2);
}, 20 * 60_000).unref();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-upstream-'));
// The server's certificate names every address it is dialled at (the pods reach it on their veth).
const podIndexes = [1, 2, 3, 4, 5, 6, 7, 8];
const pki = ensurePki(
  join(dir, 'pki'),
  podIndexes.map((i) => `IP:${podNetAddress(i)}`),
);
/** Both products dial NATS with TLS: upstream always does, sluice is given the CA. */
const tls = { ca: readFileSync(pki.caCert, 'utf8') };
const natsConf = join(dir, 'nats-tls.conf');
writeFileSync(
  natsConf,
  `tls { cert_file: "${pki.servingCert}", key_file: "${pki.servingKey}" }\nallow_non_tls: true\n`,
);
// 0.0.0.0 inside this benchmark's own network namespace: loopback plus the pods' veths.
const nats = await openNats({ dir: join(dir, 'nats'), args: ['--addr', '0.0.0.0', '-c', natsConf] }, { tls });
// The sink closes connections idle for 5 s (Node's default), so the connections upstream's HTTP
// trigger leaks stay open on the Sensor's side only, and the sink's fd limit is not what runs out.
const sink = await startChild<{ url: string }>(new URL('./lib/sink.ts', import.meta.url), [
  '0.0.0.0',
  '5000',
]);
const sinkPort = Number(new URL(sink.ready.url).port);
const loadgen = await startChild(new URL('./lib/loadgen.ts', import.meta.url));
const load = loadWith(loadgen, CONNECTIONS);
const role = new URL('./lib/role.ts', import.meta.url);

/** One product's EventSource + Sensor processes, up and consuming. */
interface Deployment {
  hookUrl: string;
  esPid: number | undefined;
  sensorPid: number | undefined;
  /** Events still in the bus for this Sensor: its consumer's pending + unacknowledged messages. */
  backlog(): Promise<number>;
  /** Processes that exited before the end, with their exit codes. */
  exited(): string[];
  stop(): Promise<void>;
}

/** Sum of pending and unacknowledged messages over the consumers of `stream` that `match`. */
async function backlogOf(stream: string, match: (c: ConsumerInfo) => boolean): Promise<number> {
  let n = 0;
  for await (const c of await nats.jsm.consumers.list(stream))
    if (match(c)) n += c.num_pending + c.num_ack_pending;
  return n;
}

interface Config {
  key: string;
  product: string;
  /** Sink path: `/empty/…` answers with no body. */
  sinkPath: string;
  rates: number[];
  durationMs: number;
  deploy(pods: Pods, key: string): Promise<Deployment>;
}

/** Each process in a pod namespace of its own, as in a cluster. */
interface Pods {
  es: PodNet;
  sensor: PodNet;
}

/** The port every EventSource's webhook listens on, inside its own pod namespace. */
const HOOK_PORT = 12000;

async function deploySluice({ es: esPod, sensor: pod }: Pods, sinkPath: string): Promise<Deployment> {
  const bus = await nats.freshBus('side');
  const sensorCfg: RoleConfig = {
    natsUrl: `nats://${pod.hostIp}:${nats.server.port}`,
    tls,
    bus,
    name: 'deliver',
    spec: sinkSensorSpec({
      sinkUrl: `http://${pod.hostIp}:${sinkPort}${sinkPath}`,
      eventSourceName: 'hooks',
    }),
  };
  const esCfg: RoleConfig = {
    natsUrl: `nats://${esPod.hostIp}:${nats.server.port}`,
    tls,
    bus,
    name: 'hooks',
    host: '0.0.0.0',
    spec: { webhook: { hook: { port: String(HOOK_PORT), endpoint: '/hook', method: 'POST' } } },
  };
  const sensor = await startChild(role, ['sensor', JSON.stringify(sensorCfg)], 30_000, pod.wrap);
  const es = await startChild(role, ['eventsource', JSON.stringify(esCfg)], 20_000, esPod.wrap);
  const children = { EventSource: es, Sensor: sensor };
  return {
    hookUrl: `http://${esPod.podIp}:${HOOK_PORT}/hook`,
    esPid: es.proc.pid,
    sensorPid: sensor.proc.pid,
    backlog: () => backlogOf(eventStreamName(bus), () => true),
    exited: () =>
      Object.entries(children)
        .filter(([, c]) => c.proc.exitCode !== null || c.proc.signalCode !== null)
        .map(([n, c]) => `${n} exited (${c.proc.exitCode ?? c.proc.signalCode})`),
    async stop() {
      await es.stop();
      await sensor.stop();
    },
  };
}

async function deployUpstream(
  { es: esPod, sensor: pod }: Pods,
  key: string,
  sinkPath: string,
  atLeastOnce: boolean,
): Promise<Deployment> {
  const port = HOOK_PORT;
  const common = { bin: ARGO, dir, namespace: 'bench', logLevel: UPSTREAM_LOG_LEVEL };
  const esName = `${key}-hooks`;
  const es = await startArgoEventSource({
    ...common,
    name: esName,
    natsUrl: `nats://${esPod.hostIp}:${nats.server.port}`,
    wrap: esPod.wrap,
    spec: { webhook: { hook: { port: String(port), endpoint: '/hook', method: 'POST' } } },
    host: esPod.podIp,
    port,
  });
  let sensor: ArgoProcess | undefined;
  try {
    sensor = await startArgoSensor({
      ...common,
      name: `${key}-deliver`,
      natsUrl: `nats://${pod.hostIp}:${nats.server.port}`,
      wrap: pod.wrap,
      spec: sinkSensorSpec({
        sinkUrl: `http://${pod.hostIp}:${sinkPort}${sinkPath}`,
        eventSourceName: esName,
        atLeastOnce,
      }),
      subject: `default.${esName}.hook`,
      jsm: nats.jsm,
    });
  } catch (err) {
    await es.stop();
    throw err;
  }
  const procs = { EventSource: es, Sensor: sensor };
  return {
    hookUrl: `http://${esPod.podIp}:${port}/hook`,
    esPid: es.proc.pid,
    sensorPid: sensor.proc.pid,
    backlog: () => backlogOf('default', (c) => c.config.filter_subject === `default.${esName}.hook`),
    exited: () =>
      Object.entries(procs)
        .filter(([, p]) => !p.proc.running)
        .map(([n, p]) => `${n} exited (see ${p.logFile})`),
    async stop() {
      await es.stop();
      await sensor?.stop();
    },
  };
}

const EMPTY = '/empty/e2e';
const upstream = `Argo Events ${VERSION}`;
const CONFIGS: Config[] = [
  {
    key: 'sluice',
    product: 'sluice',
    sinkPath: EMPTY,
    rates: RATES,
    durationMs: DURATION_MS,
    deploy: (pod) => deploySluice(pod, EMPTY),
  },
  {
    key: 'up',
    product: upstream,
    sinkPath: EMPTY,
    rates: RATES,
    durationMs: DURATION_MS,
    deploy: (pod, key) => deployUpstream(pod, key, EMPTY, false),
  },
  {
    key: 'upalo',
    product: `${upstream}, atLeastOnce`,
    sinkPath: EMPTY,
    rates: RATES,
    durationMs: DURATION_MS,
    deploy: (pod, key) => deployUpstream(pod, key, EMPTY, true),
  },
  {
    key: 'upok',
    product: `${upstream} as released`,
    sinkPath: '/e2e',
    rates: RATES.filter((r) => r > 0).slice(0, 1),
    durationMs: RELEASED_MS,
    deploy: (pod, key) => deployUpstream(pod, key, '/e2e', false),
  },
];

interface LevelResult extends Level {
  /** Accepted, not delivered after the configuration's final drain. */
  undelivered: number;
  duplicates: number;
}
interface ConfigResult {
  config: Config;
  levels: LevelResult[];
  totals: { accepted: number; delivered: number; duplicates: number };
  /** Of the undelivered events, how many were still in the bus for the Sensor (not lost). */
  inBusAfterDrain: number;
  eventSourcePeakMiB: number;
  sensorPeakMiB: number;
  /** The Sensor's open file descriptors after the drain, and its limit. */
  sensorFds: { open: number; limit: number };
  exited: string[];
}

/** A configuration deployed and warmed up, collecting its levels. */
interface Running {
  config: Config;
  pods: Pods;
  deployment: Deployment;
  warm: LoadResult;
  levels: Level[];
}

const group = (c: Config, tag: string) => `${c.sinkPath}#${tag}`;
const unique = (g: string) => sink.call<number>('unique', g);

/** Deploys `c` in pod namespaces 2·index+1 (EventSource) and +2 (Sensor), then a warm-up (JIT, connections) counted in its totals only. */
async function prepare(c: Config, index: number): Promise<Running> {
  const pods = { es: podNet(2 * index + 1), sensor: podNet(2 * index + 2) };
  const deployment = await c.deploy(pods, c.key);
  const tag = `${c.key}-warm`;
  const warm = await load(deployment.hookUrl, SMOKE ? 100 : 500, tag, 1000);
  await waitUntil('warm-up deliveries', async () => (await unique(group(c, tag))) >= warm.accepted, DRAIN_MS);
  return { config: c, pods, deployment, warm, levels: [] };
}

async function level(r: Running, rate: number): Promise<void> {
  const c = r.config;
  const l = await runLevel({
    load,
    sink,
    url: r.deployment.hookUrl,
    sinkPath: c.sinkPath,
    rate,
    tag: `${c.key}-r${rate}`,
    durationMs: c.durationMs,
    drainMs: DRAIN_MS,
  });
  r.levels.push(l);
  process.stdout.write(
    `  ${c.product} ${rateLabel(rate)}: accepted ${l.load.accepted}, delivered ${l.sink.unique}\n`,
  );
}

/** Final drain (bounded), then the figures, memory and fds of the processes, which are then stopped. */
async function finish(r: Running): Promise<ConfigResult> {
  const { config: c, deployment: d } = r;
  const tags = [`${c.key}-warm`, ...r.levels.map((l) => `${c.key}-r${l.load.offeredRate}`)];
  const accepted = r.warm.accepted + r.levels.reduce((a, l) => a + l.load.accepted, 0);
  const delivered = async () =>
    (await Promise.all(tags.map((t) => unique(group(c, t))))).reduce((a, n) => a + n, 0);
  await waitUntil(
    `${c.product}: every accepted event delivered`,
    async () => (await delivered()) >= accepted,
    DRAIN_MS,
    50,
  );
  await sleep(SMOKE ? 200 : 1000); // a duplicate would arrive now
  const final = await Promise.all(tags.map((t) => sink.call<SinkStats>('stats', group(c, t))));
  const result: ConfigResult = {
    config: c,
    levels: r.levels.map((l, i) => ({
      ...l,
      undelivered: l.load.accepted - final[i + 1]!.unique,
      duplicates: final[i + 1]!.duplicates,
    })),
    totals: {
      accepted,
      delivered: final.reduce((a, s) => a + s.unique, 0),
      duplicates: final.reduce((a, s) => a + s.duplicates, 0),
    },
    inBusAfterDrain: await d.backlog(),
    eventSourcePeakMiB: memMiB(d.esPid, 'VmHWM'),
    sensorPeakMiB: memMiB(d.sensorPid, 'VmHWM'),
    sensorFds: openFds(d.sensorPid),
    exited: d.exited(),
  };
  await d.stop();
  r.pods.es.destroy();
  r.pods.sensor.destroy();
  return result;
}

const TABLE_HEADER = [
  'product',
  'sink body',
  'offered',
  'for s',
  'accepted/s',
  'non-2xx',
  'delivered/s',
  'undelivered',
  'dup',
  'p50 ms',
  'p99 ms',
  'ES peak MiB',
  'Sensor peak MiB',
  'Sensor fds',
];

function tableRows(r: ConfigResult): Array<Array<string | number>> {
  return r.levels.map((l, i) => [
    r.config.product,
    r.config.sinkPath === EMPTY ? 'empty' : '"ok"',
    rateLabel(l.load.offeredRate),
    r.config.durationMs / 1000,
    l.load.acceptedPerSec,
    l.load.non2xx + l.load.errors,
    l.sink.okPerSec,
    // What is still in the bus belongs to the last level (the consumer reads in order).
    i === r.levels.length - 1 && r.inBusAfterDrain > 0
      ? `${l.undelivered} (${r.inBusAfterDrain} in bus)`
      : l.undelivered,
    l.duplicates,
    l.sink.latencyFromSentMs.p50,
    l.sink.latencyFromSentMs.p99,
    r.eventSourcePeakMiB,
    r.sensorPeakMiB,
    `${r.sensorFds.open} / ${r.sensorFds.limit}`,
  ]);
}

/** The one table, the ratios, and bench/results/upstream.json. */
function report(rs: ConfigResult[]): void {
  const m = machine();
  printTable(
    `Side by side with upstream Argo Events ${VERSION}: webhook → one dependency → HTTP sink, ${BODY_BYTES} B POSTs, ` +
      `${CONNECTIONS} connections, one nats-server; ` +
      `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.natsServer}; ` +
      `load average ${fmtLoad(loadAtStart)} at start, ${fmtLoad(loadAtEnd)} at end`,
    TABLE_HEADER,
    rs.flatMap(tableRows),
  );
  const ratios = sideBySide(rs);
  for (const line of ratios.lines) console.log(`  ${line}`);
  for (const r of rs) if (r.exited.length > 0) console.log(`  ${r.config.product}: ${r.exited.join('; ')}`);
  console.log(
    '  latency = sink arrival - load generator send (ms); undelivered = accepted, not at the sink after the drain ' +
      '(in bus: still pending for the Sensor); ' +
      'Sensor fds = open / limit after the drain; ' +
      `peak = VmHWM; upstream logs at ${UPSTREAM_LOG_LEVEL} (as sluice's roles); both dial NATS with TLS ` +
      '(upstream always does); each process in its own network namespace (veth)',
  );
  writeResult('upstream', {
    upstreamVersion: VERSION,
    secondsPerRate: DURATION_MS / 1000,
    releasedSecondsPerRate: RELEASED_MS / 1000,
    drainSeconds: DRAIN_MS / 1000,
    connections: CONNECTIONS,
    bodyBytes: BODY_BYTES,
    upstreamLogLevel: UPSTREAM_LOG_LEVEL,
    configs: rs.map(resultJson),
    ratios: ratios.values,
    loadAverage: { start: loadAtStart.map((x) => round(x, 2)), end: loadAtEnd.map((x) => round(x, 2)) },
    durationSec: round((performance.now() - tStart) / 1000),
    machine: m,
  });
  const sluice = rs.find((r) => r.config.key === 'sluice');
  if (sluice && (sluice.totals.delivered !== sluice.totals.accepted || sluice.totals.duplicates > 0))
    process.exitCode = 1;
}

function resultJson(r: ConfigResult): Record<string, unknown> {
  return {
    key: r.config.key,
    product: r.config.product,
    sinkBody: r.config.sinkPath === EMPTY ? 'empty' : 'ok',
    totals: r.totals,
    inBusAfterDrain: r.inBusAfterDrain,
    eventSourcePeakMiB: r.eventSourcePeakMiB,
    sensorPeakMiB: r.sensorPeakMiB,
    sensorFds: r.sensorFds,
    secondsPerRate: r.config.durationMs / 1000,
    exited: r.exited,
    levels: r.levels.map((l) => ({
      offeredRate: l.load.offeredRate,
      acceptedPerSec: l.load.acceptedPerSec,
      accepted: l.load.accepted,
      statuses: l.load.statuses,
      errors: l.load.errors,
      notSent: l.load.notSent,
      responseMs: l.load.responseMs,
      deliveredPerSec: l.sink.okPerSec,
      deliveredPerSecFitted: l.sink.okPerSecFitted,
      deliveredByDrainEnd: l.sink.unique,
      drainedInMs: l.drainedInMs,
      undelivered: l.undelivered,
      duplicates: l.duplicates,
      e2eLatencyMs: l.sink.latencyFromSentMs,
    })),
  };
}

/** sluice against upstream in the same run: delivered/s when unbounded, p99 at the first rate, memory. */
function sideBySide(rs: ConfigResult[]): { lines: string[]; values: Record<string, number> } {
  const by = (key: string) => rs.find((r) => r.config.key === key);
  const at = (r: ConfigResult | undefined, rate: number) =>
    r?.levels.find((l) => l.load.offeredRate === rate);
  const [s, up, alo] = [by('sluice'), by('up'), by('upalo')];
  const first = RATES.find((r) => r > 0) ?? 0;
  const x = (a: number | undefined, b: number | undefined) => (a && b ? round(a / b, 2) : Number.NaN);
  const values = {
    deliveredUnboundedVsUpstream: x(at(s, 0)?.sink.okPerSec, at(up, 0)?.sink.okPerSec),
    deliveredUnboundedVsUpstreamAtLeastOnce: x(at(s, 0)?.sink.okPerSec, at(alo, 0)?.sink.okPerSec),
    acceptedUnboundedVsUpstream: x(at(s, 0)?.load.acceptedPerSec, at(up, 0)?.load.acceptedPerSec),
    p99AtFirstRateMs: at(s, first)?.sink.latencyFromSentMs.p99 ?? Number.NaN,
    upstreamAtLeastOnceP99AtFirstRateMs: at(alo, first)?.sink.latencyFromSentMs.p99 ?? Number.NaN,
    eventSourceRssVsUpstream: x(s?.eventSourcePeakMiB, up?.eventSourcePeakMiB),
    sensorRssVsUpstream: x(s?.sensorPeakMiB, up?.sensorPeakMiB),
  };
  return {
    values,
    lines: [
      `sluice / upstream, unbounded: delivered/s ${values.deliveredUnboundedVsUpstream}x (atLeastOnce: ${values.deliveredUnboundedVsUpstreamAtLeastOnce}x), accepted/s ${values.acceptedUnboundedVsUpstream}x`,
      `p99 at ${rateLabel(first)}: sluice ${values.p99AtFirstRateMs} ms, upstream with atLeastOnce ${values.upstreamAtLeastOnceP99AtFirstRateMs} ms`,
      `peak RSS sluice / upstream: EventSource ${values.eventSourceRssVsUpstream}x, Sensor ${values.sensorRssVsUpstream}x`,
    ],
  };
}

function fmtLoad(l: number[]): string {
  return l.map((x) => x.toFixed(2)).join(' ');
}

// sluice and upstream (atLeastOnce false, true) side by side, each rate offered to each in turn
// so that other load on the machine falls on all of them alike; then the as-released case alone.
const results: ConfigResult[] = [];
const [side, released] = [CONFIGS.slice(0, 3), CONFIGS[3]!];
const running: Running[] = [];
for (const [i, c] of side.entries()) running.push(await prepare(c, i));
for (const rate of RATES) for (const r of running) await level(r, rate);
for (const r of running) results.push(await finish(r));
const alone = await prepare(released, 3);
for (const rate of released.rates) await level(alone, rate);
results.push(await finish(alone));
const loadAtEnd = loadavg();
report(results);
for (const c of [loadgen, sink]) await c.stop();
await nats.close();
// The logs stay when an event went undelivered or a process exited.
if (results.some((r) => r.exited.length > 0 || r.totals.delivered < r.totals.accepted))
  console.log(`  logs: ${dir}`);
else rmSync(dir, { recursive: true, force: true });
