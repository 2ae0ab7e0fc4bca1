// Upstream Argo Events' data-plane processes, run as its controller would run them in pods but
// configured directly by environment, for the side-by-side benchmark (bench/upstream.ts):
//
//   argo-events eventsource-service   EVENTSOURCE_OBJECT (base64 JSON EventSource), EVENTBUS_CONFIG
//   argo-events sensor-service        SENSOR_OBJECT (base64 JSON Sensor), EVENTBUS_CONFIG, KUBECONFIG
//
// as read by upstream's pkg/eventsources/cmd/start.go and pkg/sensors/cmd/start.go (v1.9.11).
// EVENTBUS_CONFIG is a base64 JSON BusConfig `{ jetstream: { url, streamConfig } }` with no
// accessSecret (auth strategy None). Upstream then always dials NATS with TLS
// (pkg/eventbus/jetstream/base/jetstream.go: `nats.Secure(InsecureSkipVerify)` when no TLS is
// configured), so the server needs a TLS listener. Each process also needs POD_NAME and
// EVENTBUS_SUBJECT; the Sensor builds (never uses, for an HTTP trigger) a Kubernetes client from
// KUBECONFIG, and keeps its leader-election (graft) state in /tmp/graft.log, so it gets a private
// /tmp as in a pod. Processes die with the benchmark (SIGKILL on parent death).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JetStreamManager } from '@nats-io/jetstream';
import { ManagedProcess, waitFor } from '../../test/harness/proc.ts';
import { portOpen } from '../../test/harness/servers.ts';

/** Stream settings handed to upstream (its controller's defaults, one replica on one server). */
export const UPSTREAM_STREAM_CONFIG =
  'maxMsgs: 1000000\nmaxAge: 72h\nmaxBytes: 1GB\nreplicas: 1\nduplicates: 300s\n';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64');

interface Common {
  bin: string;
  /** Folder for the process's log (and the Sensor's private /tmp). */
  dir: string;
  name: string;
  namespace: string;
  natsUrl: string;
  /** Command prefix, e.g. to run in a pod network namespace. */
  wrap?: string[];
  /** LOG_LEVEL (upstream's default is info). */
  logLevel: string;
}

function env(o: Common, object: [string, unknown]): NodeJS.ProcessEnv {
  return {
    PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`,
    [object[0]]: b64(object[1]),
    EVENTBUS_CONFIG: b64({ jetstream: { url: o.natsUrl, streamConfig: UPSTREAM_STREAM_CONFIG } }),
    EVENTBUS_SUBJECT: 'eventbus-default',
    POD_NAME: `${o.name}-0`,
    LOG_LEVEL: o.logLevel,
  };
}

const resource = (kind: string, o: Common, spec: unknown) => ({
  apiVersion: 'argoproj.io/v1alpha1',
  kind,
  metadata: { name: o.name, namespace: o.namespace },
  spec,
});

/** The argv that execs `bin args` with SIGKILL on parent death (setpriv, util-linux). */
const dieWithParent = (bin: string, args: string[]) => ['setpriv', '--pdeathsig', 'KILL', bin, ...args];

/** A running upstream process: its pid is the Go program's own (every wrapper execs). */
export interface ArgoProcess {
  proc: ManagedProcess;
  logFile: string;
  stop(): Promise<void>;
}

function launch(name: string, argv: string[], logFile: string, e: NodeJS.ProcessEnv): ArgoProcess {
  const proc = new ManagedProcess(name, argv[0]!, argv.slice(1), logFile, e);
  proc.start();
  return { proc, logFile, stop: () => proc.stop(5000) };
}

/**
 * Starts `argo-events eventsource-service` with an EventSource `spec` whose webhook listens on
 * `port` (every interface, as upstream does), and waits until `host:port` answers; upstream creates
 * the stream `default` (subjects `default.*.*`) first when it is missing.
 */
export async function startArgoEventSource(
  o: Common & { spec: unknown; port: number; host: string },
): Promise<ArgoProcess> {
  const logFile = join(o.dir, `${o.name}.log`);
  const p = launch(
    o.name,
    [...(o.wrap ?? []), ...dieWithParent(o.bin, ['eventsource-service'])],
    logFile,
    env(o, ['EVENTSOURCE_OBJECT', resource('EventSource', o, o.spec)]),
  );
  await waitFor(
    `upstream EventSource ${o.name} on ${o.host}:${o.port}`,
    async () => {
      if (!p.proc.running) throw new Error(`exited; log:\n${p.proc.tail(20)}`);
      return portOpen(o.port, o.host);
    },
    { timeoutMs: 30_000, intervalMs: 100, onTimeout: () => p.proc.tail(20) },
  );
  return p;
}

/**
 * Starts `argo-events sensor-service` with a Sensor `spec` and waits until it has won its
 * leader election and made its durable consumer on stream `default` for `subject`
 * (`default.<eventSource>.<event>`): events published before that are not delivered to it
 * (upstream's consumers deliver new messages only).
 */
export async function startArgoSensor(
  o: Common & { spec: unknown; subject: string; jsm: JetStreamManager },
): Promise<ArgoProcess> {
  const logFile = join(o.dir, `${o.name}.log`);
  const tmp = join(o.dir, `${o.name}-tmp`);
  mkdirSync(tmp, { recursive: true });
  // Never contacted (HTTP triggers only); upstream fails to start without a client config.
  writeFileSync(
    join(tmp, 'kubeconfig'),
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]',
      'users: [{name: none, user: {}}]',
      'contexts: [{name: none, context: {cluster: none, user: none}}]',
      'current-context: none',
      '',
    ].join('\n'),
  );
  // A private /tmp: its own mount namespace with `tmp` bound over /tmp. The binary is opened
  // first and run as /proc/self/fd/3, so a tool cache under /tmp stays reachable.
  const privateTmp = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c'];
  const script = 'exec 3<"$1" && mount --bind "$0" /tmp && shift && exec "$@"';
  const p = launch(
    o.name,
    [
      ...(o.wrap ?? []),
      ...privateTmp,
      script,
      tmp,
      o.bin,
      ...dieWithParent('/proc/self/fd/3', ['sensor-service']),
    ],
    logFile,
    { ...env(o, ['SENSOR_OBJECT', resource('Sensor', o, o.spec)]), KUBECONFIG: '/tmp/kubeconfig' },
  );
  await waitFor(
    `upstream Sensor ${o.name}'s consumer on ${o.subject}`,
    async () => {
      if (!p.proc.running) throw new Error(`exited; log:\n${p.proc.tail(20)}`);
      for await (const c of await o.jsm.consumers.list('default')) {
        if (c.config.filter_subject === o.subject) return true;
      }
      return false;
    },
    { timeoutMs: 60_000, intervalMs: 200, onTimeout: () => p.proc.tail(20) },
  );
  return p;
}
