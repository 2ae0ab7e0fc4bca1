// Pieces the tests on the real node share: the manifests of a managed EventBus, a webhook
// EventSource and a Sensor that calls a sink; the sink (an HTTP server in this process on the
// host end of the node's veth, which pods reach through the node); a sender that POSTs events
// through the EventSource's Service until each is accepted; and waits on pods and objects.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stringify } from 'yaml';
import type { KubeNode } from '../../test/harness/node/node.ts';
import { waitFor } from '../../test/harness/proc.ts';

export const WEBHOOK_PORT = 12000;

export interface Sink {
  url: string;
  /** Requests received per event id (the `orderId` the Sensor puts in the payload). */
  counts: Map<string, number>;
  /**
   * The distinct `Idempotency-Key`s seen per event id. A receiver that honours the key applies
   * one effect per key: more than one key for an id is a repeated effect. One key seen in more
   * than one request is a repeated call the receiver folds (the README's crash windows: a Sensor
   * killed between its call and its done mark calls again under the same key).
   */
  keys: Map<string, Set<string>>;
  close(): Promise<void>;
}

/** An HTTP sink on `host`: 200 for every POST, counting requests and idempotency keys per `orderId`. */
export async function startSink(host: string): Promise<Sink> {
  const counts = new Map<string, number>();
  const keys = new Map<string, Set<string>>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const { orderId } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { orderId?: string };
        if (orderId) {
          counts.set(orderId, (counts.get(orderId) ?? 0) + 1);
          const key = String(req.headers['idempotency-key'] ?? '');
          keys.set(orderId, (keys.get(orderId) ?? new Set()).add(key));
        }
      } catch {
        // not ours
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    url: `http://${host}:${(server.address() as AddressInfo).port}/orders`,
    counts,
    keys,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A managed bus: `replicas` nats-server pods, each with a volume from the node's StorageClass. */
export function eventBus(replicas: number): Record<string, unknown> {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'EventBus',
    metadata: { name: 'default' },
    spec: {
      jetstream: {
        version: 'latest',
        replicas,
        persistence: { volumeSize: '256Mi', accessMode: 'ReadWriteOnce' },
        streamConfig: `replicas: ${replicas}\nduplicates: 10m\n`,
      },
    },
  };
}

export function webhookSource(): Record<string, unknown> {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'EventSource',
    metadata: { name: 'webhook' },
    spec: {
      service: { ports: [{ port: WEBHOOK_PORT, targetPort: WEBHOOK_PORT }] },
      webhook: { orders: { port: String(WEBHOOK_PORT), endpoint: '/orders', method: 'POST' } },
    },
  };
}

export function sinkSensor(sinkUrl: string): Record<string, unknown> {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Sensor',
    metadata: { name: 'orders' },
    spec: {
      dependencies: [{ name: 'order', eventSourceName: 'webhook', eventName: 'orders' }],
      triggers: [
        {
          template: {
            name: 'sink',
            http: {
              url: sinkUrl,
              method: 'POST',
              payload: [{ src: { dependencyName: 'order', dataKey: 'body.id' }, dest: 'orderId' }],
            },
          },
          retryStrategy: { steps: 10, duration: '200ms', factor: 2, cap: '5s' },
        },
      ],
    },
  };
}

export const yamlDocs = (objs: Array<Record<string, unknown>>) => objs.map((o) => stringify(o)).join('---\n');

/** `kubectl` that must succeed; returns stdout. */
export async function kubectlOk(node: KubeNode, args: string[], input?: string): Promise<string> {
  const r = await node.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Waits until a sluice object reports Ready=True; the message names its conditions if not. */
export async function waitReady(node: KubeNode, ns: string, kind: string, name: string, timeoutMs = 240_000) {
  let last = '';
  await waitFor(
    `${kind}/${name} Ready`,
    async () => {
      const r = await node.kubectl(['get', kind, name, '-n', ns, '-o', 'json']);
      if (r.code !== 0) return false;
      const conds = (JSON.parse(r.stdout) as { status?: { conditions?: Array<Record<string, string>> } })
        .status?.conditions;
      last = JSON.stringify(conds ?? []);
      return conds?.some((c) => c.type === 'Ready' && c.status === 'True');
    },
    { timeoutMs, intervalMs: 1000, onTimeout: () => `conditions: ${last}\n${podSummary(node, ns)}` },
  );
}

/**
 * `kubectl rollout status`, with the pods' state in the error. The controller makes an
 * EventSource's or Sensor's Deployment in its own time, and `rollout status` fails at once on an
 * object that does not exist yet: wait for it first (within the same timeout).
 */
export async function rollout(node: KubeNode, ns: string, what: string, timeout = '240s'): Promise<void> {
  await waitFor(
    `${what} in ${ns} to exist`,
    async () => (await node.kubectl(['get', what, '-n', ns])).code === 0,
    {
      timeoutMs: Number.parseInt(timeout, 10) * 1000,
      intervalMs: 500,
    },
  );
  const r = await node.kubectl(['rollout', 'status', what, '-n', ns, `--timeout=${timeout}`]);
  if (r.code !== 0) {
    const pods = await node.kubectl(['get', 'pods', '-n', ns, '-o', 'wide']);
    const events = await node.kubectl(['get', 'events', '-n', ns, '--sort-by=.lastTimestamp']);
    throw new Error(
      `rollout of ${what} failed: ${r.stderr}\n${pods.stdout}\n${events.stdout.split('\n').slice(-25).join('\n')}`,
    );
  }
}

function podSummary(node: KubeNode, ns: string): string {
  return `(see: kubectl --kubeconfig ${node.kubeconfigPath} get pods,events -n ${ns})`;
}

/** The ClusterIP of a Service. */
export async function clusterIp(node: KubeNode, ns: string, service: string): Promise<string> {
  return (
    await kubectlOk(node, ['get', 'service', service, '-n', ns, '-o', 'jsonpath={.spec.clusterIP}'])
  ).trim();
}

/**
 * POSTs event `id` to the webhook until it is accepted (2xx), the way a well-behaved sender
 * treats 503/connection errors: retry with the same Idempotency-Key. Bounded by `timeoutMs`.
 */
export async function sendEvent(url: string, id: string, timeoutMs = 120_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  let last = '';
  while (Date.now() < deadline) {
    attempts++;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': id },
        body: JSON.stringify({ id }),
        signal: AbortSignal.timeout(10_000),
      });
      await res.arrayBuffer();
      if (res.ok) return attempts;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, Math.min(2000, 100 * attempts)));
  }
  throw new Error(`event ${id} not accepted within ${timeoutMs} ms (${attempts} attempts, last: ${last})`);
}

/** Waits until every id reached the sink; then fails on any id applied more than once (more than one idempotency key). */
export async function expectDeliveredOnce(sink: Sink, ids: string[], timeoutMs = 180_000): Promise<void> {
  await waitFor(
    `${ids.length} events at the sink`,
    () => ids.every((id) => (sink.counts.get(id) ?? 0) >= 1),
    {
      timeoutMs,
      intervalMs: 200,
      onTimeout: () => `missing: ${ids.filter((id) => !sink.counts.has(id)).join(', ')}`,
    },
  );
  // A repeated effect: one event id under more than one idempotency key, or with none.
  const repeated = ids.filter((id) => {
    const k = sink.keys.get(id) ?? new Set();
    return k.size > 1 || k.has('');
  });
  if (repeated.length) {
    throw new Error(
      `delivered more than once: ${repeated.map((id) => `${id}×${sink.counts.get(id)} (keys: ${[...(sink.keys.get(id) ?? [])].join(', ')})`).join(', ')}`,
    );
  }
  const calledAgain = ids.filter((id) => (sink.counts.get(id) ?? 0) > 1);
  if (calledAgain.length)
    console.log(
      `called again under the same idempotency key (a kill between a call and its done mark): ${calledAgain.map((id) => `${id}×${sink.counts.get(id)}`).join(', ')}`,
    );
}
