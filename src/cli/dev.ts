// `sluice dev -f FILE|DIR...`: runs EventBus/EventSource/Sensor manifests on a laptop with no
// cluster: a local JetStream nats-server (or --nats-url), every EventSource and Sensor in this
// process, webhook and metrics URLs printed, manifests reloaded when they change, clean stop on
// Ctrl-C.
import { mkdirSync, statSync, watch } from 'node:fs';
import { resolve } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Gauge } from 'prom-client';
import { loadManifests } from '../dev/manifests.ts';
import { startLocalNats } from '../dev/nats.ts';
import { DevSession, type NotStarted } from '../dev/session.ts';
import { startDevSink } from '../dev/sink.ts';
import { createLogger, setRootLogger } from '../observability/logger.ts';
import { adopt, registry } from '../observability/metrics.ts';
import { startOpsServer } from '../observability/server.ts';
import { CliError, natsConnectError } from './errors.ts';
import { STOP_MARGIN_MS } from './runtime-env.ts';
import { readStdin, readsStdin, STDIN, STDIN_NAME } from './stdin.ts';

export interface DevFlags {
  file: string[];
  natsUrl?: string;
  stateDir: string;
  metricsPort: string;
  host: string;
  sink?: string;
  logLevel?: string;
  watch: boolean;
  strict?: boolean;
}

/**
 * The last lines of a start: `ready` only when everything runs; otherwise every object that did
 * not start and why (problems said earlier may have scrolled away), and under --strict an error.
 */
export function startSummary(
  failed: NotStarted[],
  running: number,
  say: (l: string) => void,
  strict = false,
): void {
  if (failed.length === 0) {
    say('ready; Ctrl-C to stop');
    return;
  }
  say(`not started (${failed.length}):`);
  for (const f of failed) say(`  ${f.what}: ${f.reason}`);
  if (strict)
    throw new CliError(
      'NotStarted',
      `${failed.length} object(s) did not start (listed on standard output); stopping (--strict)`,
    );
  say(
    `started with problems: ${running} object(s) running, ${failed.length} not; fix the manifests (they are reloaded) or Ctrl-C to stop`,
  );
}

export async function runDev(flags: DevFlags): Promise<void> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  if (!flags.file?.length) throw new CliError('Usage', 'sluice dev needs at least one -f FILE|DIR');
  for (const f of flags.file) if (f !== STDIN) statSync(f); // a missing path is a one-line error
  // Read once: standard input is not reloaded (the files and folders beside it are).
  const stdin = readsStdin(flags.file) ? await readStdin() : undefined;
  const log = createLogger({
    ...(flags.logLevel ? { level: flags.logLevel } : {}),
    destination: process.stderr,
    base: { role: 'dev' },
  });
  setRootLogger(log);
  const stateDir = resolve(flags.stateDir);
  mkdirSync(stateDir, { recursive: true });

  const first = loadManifests(flags.file, 'default', stdin);
  if (first.objects.length === 0) {
    for (const p of first.problems) say(`problem: ${p}`);
    const why = first.problems.length ? ` (${first.problems.length} problem(s) above)` : '';
    throw new CliError(
      'BadInput',
      `no valid EventBus, EventSource or Sensor in ${flags.file.map((f) => (f === STDIN ? STDIN_NAME : f)).join(', ')}${why}`,
    );
  }
  // Ports first: a taken one is a one-line error before anything has started.
  const ops = await startOpsServer({ port: Number(flags.metricsPort), registry: registry() });

  const nats = flags.natsUrl ? undefined : await startLocalNats(stateDir);
  const natsUrl = flags.natsUrl ?? nats!.url;
  say(
    nats
      ? `nats-server ${nats.binary} on ${natsUrl} (store ${stateDir}/nats)`
      : `using the NATS server at ${natsUrl}`,
  );
  const sink = flags.sink !== undefined ? await startDevSink(Number(flags.sink), flags.host, say) : undefined;
  const nc = await connect({ servers: natsUrl, name: 'sluice dev', maxReconnectAttempts: -1 }).catch(
    (err: unknown) => {
      throw natsConnectError(natsUrl, err);
    },
  );
  if (sink) say(`sink listening on ${sink.url} (answers 500 to JSON bodies with "fail": true)`);
  busConnectedGauge(nc);

  const session = new DevSession({ nc, registry: registry(), log, say, host: flags.host });
  say(
    `Kubernetes: ${session.kubeDescription}${session.kubeDescription.startsWith('none') ? ' (resource sources and k8s/argoWorkflow triggers need a kubeconfig; set KUBECONFIG)' : ''}`,
  );
  const failed = await session.apply(first);
  say(`metrics: http://localhost:${ops.port}/metrics`);
  try {
    startSummary(failed, session.runningCount, say, flags.strict);
  } catch (err) {
    await session.stop();
    await nc.drain().catch(() => {});
    await nats?.stop();
    await ops.close();
    await sink?.close();
    throw err;
  }

  // Reload on change, debounced, one reload at a time.
  const watchers: Array<{ close(): void }> = [];
  if (flags.watch) {
    let timer: NodeJS.Timeout | undefined;
    let reloading = Promise.resolve();
    const reload = () => {
      reloading = reloading.then(async () => {
        const m = loadManifests(flags.file, 'default', stdin);
        say('manifests changed: reloading');
        startSummary(await session.apply(m), session.runningCount, say);
      });
    };
    for (const f of flags.file) {
      if (f === STDIN) continue;
      try {
        watchers.push(
          watch(f, { recursive: true }, (_event, name) => {
            // Only manifest files count (not e.g. a state folder placed inside a watched folder).
            if (name && !/\.(ya?ml|json)$/i.test(String(name))) return;
            clearTimeout(timer);
            timer = setTimeout(reload, 300);
          }),
        );
      } catch (err) {
        say(`problem: cannot watch ${f}: ${(err as Error).message}`);
      }
    }
  }

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping');
    // Bounded: a server that does not answer (a paused NATS) must not keep Ctrl-C or SIGTERM waiting.
    setTimeout(() => {
      say('stop took too long; exiting');
      log.flush();
      process.exit(1);
    }, session.stopGraceMs + STOP_MARGIN_MS).unref();
    for (const w of watchers) w.close();
    await session.stop();
    await ops.close();
    await sink?.close();
    await nc.drain().catch(() => {});
    await nats?.stop();
    log.flush();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
}

/**
 * `sluice_bus_connected` of the dev process (one connection for everything it runs): 1 while `nc`
 * is connected, 0 while it reconnects or once it is closed. The same gauge as the EventSource and
 * Sensor pods export (runtime-env.ts), so the `SluiceBusUnreachable` alert can be tried locally.
 */
function busConnectedGauge(nc: NatsConnection): void {
  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnecting') connected = false;
      else if (s.type === 'reconnect') connected = true;
    }
  })();
  adopt(
    registry(),
    new Gauge({
      name: 'sluice_bus_connected',
      help: '1 while this process is connected to its bus, else 0 (reconnecting, closed).',
      registers: [],
      collect() {
        this.set(connected && !nc.isClosed() ? 1 : 0);
      },
    }),
  );
}
