// `sluice dev -f FILE|DIR...`: runs EventBus/EventSource/Sensor manifests on a laptop with no
// cluster: a local JetStream nats-server (or --nats-url), every EventSource and Sensor in this
// process, webhook and metrics URLs printed, manifests reloaded when they change, clean stop on
// Ctrl-C.
import { mkdirSync, watch } from 'node:fs';
import { resolve } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { loadManifests } from '../dev/manifests.ts';
import { startLocalNats } from '../dev/nats.ts';
import { DevSession } from '../dev/session.ts';
import { startDevSink } from '../dev/sink.ts';
import { createLogger, setRootLogger } from '../observability/logger.ts';
import { registry } from '../observability/metrics.ts';
import { startOpsServer } from '../observability/server.ts';
import { STOP_MARGIN_MS } from './runtime-env.ts';

export interface DevFlags {
  file: string[];
  natsUrl?: string;
  stateDir: string;
  metricsPort: string;
  host: string;
  sink?: string;
  logLevel?: string;
  watch: boolean;
}

export async function runDev(flags: DevFlags): Promise<void> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  if (!flags.file?.length) throw new Error('sluice dev needs at least one -f FILE|DIR');
  const log = createLogger({
    level: flags.logLevel ?? 'info',
    destination: process.stderr,
    base: { role: 'dev' },
  });
  setRootLogger(log);
  const stateDir = resolve(flags.stateDir);
  mkdirSync(stateDir, { recursive: true });

  const first = loadManifests(flags.file);
  if (first.objects.length === 0) {
    for (const p of first.problems) say(`problem: ${p}`);
    throw new Error(`no EventBus, EventSource or Sensor found in ${flags.file.join(', ')}`);
  }

  const nats = flags.natsUrl ? undefined : await startLocalNats(stateDir);
  const natsUrl = flags.natsUrl ?? nats!.url;
  say(
    nats
      ? `nats-server ${nats.binary} on ${natsUrl} (store ${stateDir}/nats)`
      : `using the NATS server at ${natsUrl}`,
  );
  const nc = await connect({ servers: natsUrl, name: 'sluice dev', maxReconnectAttempts: -1 });
  const sink = flags.sink !== undefined ? await startDevSink(Number(flags.sink), flags.host, say) : undefined;
  if (sink) say(`sink listening on ${sink.url} (answers 500 to JSON bodies with "fail": true)`);

  const session = new DevSession({ nc, registry: registry(), log, say, host: flags.host });
  say(
    `Kubernetes: ${session.kubeDescription}${session.kubeDescription.startsWith('none') ? ' (resource sources and k8s/argoWorkflow triggers need a kubeconfig; set KUBECONFIG)' : ''}`,
  );
  await session.apply(first);
  const ops = await startOpsServer({ port: Number(flags.metricsPort), registry: registry() });
  say(`metrics: http://localhost:${ops.port}/metrics`);
  say('ready; Ctrl-C to stop');

  // Reload on change, debounced, one reload at a time.
  const watchers: Array<{ close(): void }> = [];
  if (flags.watch) {
    let timer: NodeJS.Timeout | undefined;
    let reloading = Promise.resolve();
    const reload = () => {
      reloading = reloading.then(async () => {
        const m = loadManifests(flags.file);
        say('manifests changed: reloading');
        await session.apply(m);
      });
    };
    for (const f of flags.file) {
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
