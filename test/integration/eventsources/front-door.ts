// A `sluice eventsource` process with one plain webhook, run from the container spec the controller
// generates, against its own nats-server (which the front-door tests pause with SIGSTOP). Used by
// the abort, slow-client, ambiguous-503 and stop tests here and by e2e/reliability/abuse.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { type BusRef, eventStreamName } from '../../../src/bus/subjects.ts';
import { deploymentFor } from '../../../src/controller/resources/workload.ts';
import type { CloudEvent } from '../../../src/eventsources/envelope.ts';
import { type NatsServer, startNats } from '../../harness/nats.ts';
import { freePort } from '../../harness/ports.ts';
import { waitFor } from '../../harness/proc.ts';
import { uniqueName } from '../../harness/shared.ts';
import { type SluiceProcess, startSluice } from '../../harness/sluice-process.ts';
import { storedEvents, storedTexts } from './fixtures.ts';

export { storedTexts };

export interface FrontDoorOptions {
  /** Extra env of the eventsource process (SLUICE_WEBHOOK_* bounds). */
  env?: Record<string, string>;
  /** Extra fields of the webhook entry. */
  webhook?: Record<string, unknown>;
  /**
   * More source types on other endpoints of the same port (e.g. `stripe`): `{type: {name: entry}}`
   * where each entry's `webhook.port` may be left out (the door's port is used).
   */
  sources?: Record<string, Record<string, Record<string, unknown>>>;
  streamConfig?: string;
}

/** The pid of the nats-server listening on `port` (found in /proc: the harness does not expose it). */
export function natsPid(port: number): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.endsWith('nats-server') && cmd.includes(String(port))) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no nats-server process on port ${port}`);
}

/** Resident memory of a process in MiB. */
export function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024);
}

export async function startFrontDoor(o: FrontDoorOptions = {}) {
  const nats: NatsServer = await startNats();
  const nc: NatsConnection = await connect({
    servers: nats.url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
  });
  const bus: BusRef = { namespace: uniqueName('door'), busName: 'default' };
  // These tests read back what was stored with no Sensor attached: keep it as history
  // (interest retention keeps only what a consumer still needs).
  const text = o.streamConfig ?? '';
  const cfg = parseStreamConfig(/retention/i.test(text) ? text : `retention: limits\n${text}`);
  if (!cfg.ok) throw new Error(cfg.errors.join());
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, bus, cfg.settings, 1);
  const port = await freePort();
  const obj = {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'EventSource' as const,
    metadata: { name: 'hooks', namespace: bus.namespace, uid: 'hooks-uid' },
    spec: {
      webhook: { orders: { port: String(port), endpoint: '/orders', method: 'POST', ...o.webhook } },
      ...Object.fromEntries(
        Object.entries(o.sources ?? {}).map(([type, entries]) => [
          type,
          Object.fromEntries(
            Object.entries(entries).map(([name, e]) => [
              name,
              { ...e, webhook: { port: String(port), method: 'POST', ...(e.webhook as object) } },
            ]),
          ),
        ]),
      ),
    },
  };
  const d = deploymentFor({ ...obj, ...obj.metadata, kind: 'EventSource' }, obj, {
    image: 'sluice:test',
    bus: { busName: bus.busName, namespace: bus.namespace, url: nats.url },
  });
  const ctr = d.spec!.template.spec!.containers[0]!;
  const env: Record<string, string> = {
    ...Object.fromEntries(ctr.env!.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!])),
    POD_NAME: 'hooks-0',
    POD_NAMESPACE: bus.namespace,
    // Each door keeps its local state apart (a pod's own disk).
    SLUICE_STATE_DIR: mkdtempSync(join(tmpdir(), 'door-state-')),
    ...o.env,
  };
  const args = ctr.args!.map((a) => (a === '7777' ? '0' : a));
  const base = `http://127.0.0.1:${port}`;
  const up = () =>
    waitFor(
      'webhook /health',
      async () => (await fetch(`${base}/health`).catch(() => undefined))?.status === 200,
    );
  let es: SluiceProcess = await startSluice(args, env);
  await up();

  const storedCount = async () => (await jsm.streams.info(eventStreamName(bus))).state.messages;
  const stored = (): Promise<CloudEvent[]> => storedEvents(jsm, bus);
  const texts = (): Promise<string[]> => storedTexts(jsm, bus);

  return {
    nats,
    nc,
    bus,
    port,
    base,
    url: `${base}/orders`,
    get es() {
      return es;
    },
    pid: () => es.proc.pid!,
    alive: () => es.proc.running,
    rss: () => rssMiB(es.proc.pid!),
    storedCount,
    stored,
    /** Stored messages as the exact text stored. */
    texts,
    /** How many stored messages contain `marker`. */
    copies: async (marker: string) => (await texts()).filter((t) => t.includes(marker)).length,
    /** SIGSTOP / SIGCONT the nats-server (TCP stays open; nothing is answered meanwhile). */
    pauseNats: () => process.kill(natsPid(nats.port), 'SIGSTOP'),
    resumeNats: () => process.kill(natsPid(nats.port), 'SIGCONT'),
    async restart() {
      await es.proc.stop();
      es = await startSluice(args, env);
      await up();
    },
    /**
     * Starts the process again after it ended (killed or stopped); `newPod`: on a fresh disk (a
     * replacement pod: no local state of the previous process).
     */
    async start(newPod = false) {
      if (newPod) env.SLUICE_STATE_DIR = mkdtempSync(join(tmpdir(), 'door-state-'));
      es = await startSluice(args, env);
      await up();
    },
    /** Probes an ops endpoint (/healthz, /readyz) of the process: its status. */
    ops: async (path: string) =>
      (await fetch(`http://127.0.0.1:${es.metricsPort}${path}`).catch(() => undefined))?.status ?? 0,
    async stop() {
      try {
        process.kill(natsPid(nats.port), 'SIGCONT');
      } catch {
        // not running
      }
      await es.proc.stop();
      await nc.close().catch(() => {});
      await nats.stop();
    },
  };
}

export type FrontDoor = Awaited<ReturnType<typeof startFrontDoor>>;

/** One JSON POST; resolves with the status (0 = no answer). */
export async function post(
  url: string,
  body: string,
  headers: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<{ status: number; ms: number; retryAfter: string | null }> {
  const t = Date.now();
  try {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await r.arrayBuffer();
    return { status: r.status, ms: Date.now() - t, retryAfter: r.headers.get('retry-after') };
  } catch {
    return { status: 0, ms: Date.now() - t, retryAfter: null };
  }
}
