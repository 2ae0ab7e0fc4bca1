// The quickstart on the real kube-apiserver: `kubectl apply` of its EventSource and Sensor (with
// an EventBus pointing at the harness nats-server, since no kubelet runs the managed bus here),
// `sluice controller` as a process, and the EventSource and Sensor Deployments it creates run as
// local processes from their own container specs (standing in for a kubelet). Events POSTed to
// the webhook reach the sink; a failing one is retried and dead-lettered; `kubectl get` shows
// Ready; a real Prometheus scrapes controller, EventSource and Sensor, and also finds the
// EventSource and Sensor as pods (built from the controller's Deployments, registered on the API
// server) through config/prometheus/scrape-configs.yaml's sluice-runtime job, with sluice's alerting
// rules loaded; `kubectl delete` cleans up.

import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, type V1Deployment } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { dlqStreamName } from '../src/bus/subjects.ts';
import { installCrds } from '../test/harness/crds.ts';
import { withPodTargets } from '../test/harness/pod-discovery.ts';
import { freePort } from '../test/harness/ports.ts';
import { waitFor } from '../test/harness/proc.ts';
import { startPrometheus } from '../test/harness/prometheus.ts';
import { run } from '../test/harness/run.ts';
import {
  kubeConfig,
  kubeconfigPath,
  kubeMissing,
  natsMissing,
  natsUrl,
  skipNote,
  uniqueName,
} from '../test/harness/shared.ts';
import { type SluiceProcess, startSluice } from '../test/harness/sluice-process.ts';
import { findTool } from '../test/harness/tools.ts';

const root = new URL('..', import.meta.url).pathname;
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const kubectl = findTool('kubectl');
const prometheus = findTool('prometheus');
const skip = kubeMissing() ?? natsMissing() ?? kubectl.missing ?? prometheus.missing ?? null;

function quickstart(file: string): Record<string, unknown> {
  return parseAllDocuments(readFileSync(join(root, 'examples/quickstart', file), 'utf8'))[0]!.toJS();
}

/** The env a kubelet would give the container: literal values plus the downward API fields used. */
function containerEnv(d: V1Deployment, podName: string): { args: string[]; env: Record<string, string> } {
  const ctr = d.spec!.template.spec!.containers[0]!;
  const env: Record<string, string> = {};
  for (const e of ctr.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = d.metadata!.namespace!;
  }
  return { args: (ctr.args ?? []).map((a) => (a === '7777' ? '0' : a)), env };
}

describe.skipIf(skip)(`quickstart on the API server${skipNote(skip)}`, () => {
  it('kubectl apply → controller → EventSource/Sensor processes → sink, DLQ, Ready, Prometheus, delete', async () => {
    const ns = uniqueName('qs');
    const kc = ['--kubeconfig', kubeconfigPath()!];
    await installCrds(kubeconfigPath()!, kubeConfig());
    const hookPort = await freePort();
    const received: Array<{ orderId?: string; fail?: unknown }> = [];
    const sink: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          orderId?: string;
          fail?: unknown;
        };
        received.push(body);
        res.writeHead(body.fail === true ? 500 : 200);
        res.end();
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/orders`;

    const es = quickstart('eventsource.yaml') as {
      spec: {
        webhook: { orders: { port: string } };
        service: { ports: Array<{ port: number; targetPort: number }> };
      };
    };
    es.spec.webhook.orders.port = String(hookPort);
    es.spec.service.ports = [{ port: hookPort, targetPort: hookPort }];
    const sn = quickstart('sensor.yaml') as {
      spec: {
        triggers: Array<{ template: { http?: { url: string } }; retryStrategy?: { duration: string } }>;
      };
    };
    sn.spec.triggers[0]!.template.http!.url = sinkUrl;
    sn.spec.triggers[0]!.retryStrategy!.duration = '50ms';
    const manifests = [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
      {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'EventBus',
        metadata: { name: 'default', namespace: ns },
        spec: { jetstreamExotic: { url: natsUrl() } },
      },
      { ...es, metadata: { name: 'webhook', namespace: ns } },
      { ...sn, metadata: { name: 'orders', namespace: ns } },
    ];
    const dir = mkdtempSync(join(tmpdir(), 'qs-'));
    const procs: SluiceProcess[] = [];
    let prom: Awaited<ReturnType<typeof startPrometheus>> | undefined;
    try {
      // Retried briefly: CRDs (re)installed by a parallel test can take a moment to be served.
      const input = manifests.map((m) => stringify(m)).join('---\n');
      let applied = await run(kubectl.path!, [...kc, 'apply', '-f', '-'], { input });
      for (let i = 0; i < 20 && applied.code !== 0; i++) {
        await new Promise((r) => setTimeout(r, 500));
        applied = await run(kubectl.path!, [...kc, 'apply', '-f', '-'], { input });
      }
      expect(applied.code, applied.stderr).toBe(0);

      const controller = await startSluice([
        'controller',
        '--kubeconfig',
        kubeconfigPath()!,
        '--managed-namespace',
        ns,
        '--no-leader-elect',
        '--metrics-port',
        '0',
        '--image',
        'sluice:e2e',
      ]);
      procs.push(controller);
      const apps = kubeConfig().makeApiClient(AppsV1Api);
      const deployment = (name: string) =>
        waitFor(
          `Deployment ${name}`,
          () => apps.readNamespacedDeployment({ name, namespace: ns }).catch(() => undefined),
          { timeoutMs: 30_000 },
        );
      const esDep = await deployment('eventsource-webhook');
      const snDep = await deployment('sensor-orders');
      const esRun = containerEnv(esDep, 'eventsource-webhook-0');
      const snRun = containerEnv(snDep, 'sensor-orders-0');
      expect(esRun.args[0]).toBe('eventsource');
      expect(snRun.args[0]).toBe('sensor');
      // The pods' service account is stood in for by the harness kubeconfig.
      const source = await startSluice(esRun.args, { ...esRun.env, KUBECONFIG: kubeconfigPath()! });
      const sensor = await startSluice(snRun.args, { ...snRun.env, KUBECONFIG: kubeconfigPath()! });
      procs.push(source, sensor);
      await waitFor(
        'webhook up',
        async () =>
          (await fetch(`http://127.0.0.1:${hookPort}/orders`).catch(() => undefined))?.status === 405,
      );
      // No deployment controller runs here: write what it would once the pods are available
      // (Ready includes the workload's availability).
      for (const name of ['eventsource-webhook', 'sensor-orders']) {
        const d = await apps.readNamespacedDeployment({ name, namespace: ns });
        d.status = {
          observedGeneration: d.metadata!.generation!,
          replicas: 1,
          updatedReplicas: 1,
          readyReplicas: 1,
          availableReplicas: 1,
        };
        await apps.replaceNamespacedDeploymentStatus({ name, namespace: ns, body: d });
      }

      const post = (body: unknown) =>
        fetch(`http://127.0.0.1:${hookPort}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      expect((await post({ id: 'Q-1', amount: 5 })).status).toBe(200);
      expect((await post({ id: 'Q-2', fail: true })).status).toBe(200);
      await waitFor('delivered', () => received.some((r) => r.orderId === 'Q-1'));
      const nc = await connect({ servers: natsUrl() });
      const jsm = await jetstreamManager(nc);
      await waitFor(
        'dead letter',
        async () =>
          (await jsm.streams.info(dlqStreamName({ namespace: ns, busName: 'default' }))).state.messages === 1,
      );
      await nc.close();
      expect(received.filter((r) => r.orderId === 'Q-2')).toHaveLength(3);

      await waitFor(
        'all Ready',
        async () => {
          const got = await run(kubectl.path!, [
            ...kc,
            '-n',
            ns,
            'get',
            'sensors,eventsources,eventbus',
            '-o',
            'json',
          ]);
          const items = (
            JSON.parse(got.stdout) as {
              items: Array<{ status?: { conditions?: Array<{ type: string; status: string }> } }>;
            }
          ).items;
          return (
            items.length === 3 &&
            items.every((i) => i.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
          );
        },
        { timeoutMs: 30_000 },
      );
      const table = await run(kubectl.path!, [...kc, '-n', ns, 'get', 'sensors,eventsources,eventbus']);
      expect(table.stdout).toMatch(/orders\s+True/);

      // The two processes as the pods a kubelet would run from the Deployments (same labels and
      // container ports; the metrics port is the one the process listens on, the IP loopback).
      const core = kubeConfig().makeApiClient(CoreV1Api);
      await core
        .createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'default' } } })
        .catch(() => undefined);
      for (const [d, name, port] of [
        [esDep, 'eventsource-webhook-0', source.metricsPort],
        [snDep, 'sensor-orders-0', sensor.metricsPort],
      ] as const) {
        const tpl = structuredClone(d.spec!.template);
        for (const c of tpl.spec!.containers)
          for (const p of c.ports ?? []) if (p.name === 'metrics') p.containerPort = port;
        await core.createNamespacedPod({
          namespace: ns,
          body: {
            metadata: { name, labels: tpl.metadata!.labels, annotations: tpl.metadata!.annotations },
            spec: { ...tpl.spec!, automountServiceAccountToken: false },
          },
        });
        const patched = await run(kubectl.path!, [
          ...kc,
          '-n',
          ns,
          'patch',
          'pod',
          name,
          '--subresource=status',
          '--type=merge',
          '-p',
          JSON.stringify({ status: { phase: 'Running', podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }] } }),
        ]);
        expect(patched.code, patched.stderr).toBe(0);
      }
      const scrapeJobs = parse(readFileSync(join(root, 'config/prometheus/scrape-configs.yaml'), 'utf8')) as {
        scrape_configs: Array<Record<string, unknown>>;
      };
      const runtimeJob = withPodTargets(
        scrapeJobs.scrape_configs.find((j) => j.job_name === 'sluice-runtime')!,
        (await core.listNamespacedPod({ namespace: ns })).items,
        join(dir, 'runtime-targets.json'),
      );
      prom = await startPrometheus(
        [
          { job: 'controller', targets: [`127.0.0.1:${controller.metricsPort}`] },
          { job: 'eventsource', targets: [`127.0.0.1:${source.metricsPort}`] },
          { job: 'sensor', targets: [`127.0.0.1:${sensor.metricsPort}`] },
        ],
        {
          dir,
          scrapeConfigs: [runtimeJob],
          scrapeConfigTargets: 2,
          ruleFiles: [join(root, 'config/prometheus/rules/sluice.rules.yaml')],
        },
      );
      await prom.waitForTargetsUp();
      const value = async (q: string) => {
        const r = await prom!.query(q);
        return r.length ? Number(r[0]!.value[1]) : Number.NaN;
      };
      await waitFor(
        'scraped values',
        async () =>
          (await value(`sum(argo_events_events_sent_total{job="eventsource",namespace="${ns}"})`)) === 2,
        { timeoutMs: 20_000 },
      );
      expect(
        await value(`sum(argo_events_action_triggered_total{job="sensor",trigger_name="notify-sink"})`),
      ).toBe(1);
      expect(
        await value(`sum(sluice_sensor_dead_letters_total{job="sensor",trigger_name="notify-sink"})`),
      ).toBe(1);
      expect(await value(`sum(sluice_sensor_trigger_retries_total{job="sensor"})`)).toBe(2);
      expect(
        await value(`sum(sluice_controller_reconcile_total{job="controller",kind="Sensor"})`),
      ).toBeGreaterThan(0);

      // The runtime pods through the documented scrape job: found by their labels, named by pod,
      // kind and object; the data-plane metrics, the build and the bus connection are there.
      const runtime = `job="sluice-runtime",namespace="${ns}"`;
      expect(
        await value(
          `sum(argo_events_events_sent_total{${runtime},pod="eventsource-webhook-0",sluice_kind="eventsource",sluice_object="webhook"})`,
        ),
      ).toBe(2);
      expect(
        await value(
          `sum(argo_events_action_triggered_total{${runtime},pod="sensor-orders-0",sluice_kind="sensor",sluice_object="orders",trigger_name="notify-sink"})`,
        ),
      ).toBe(1);
      expect(
        await value(`sum(sluice_sensor_dead_letters_total{${runtime},trigger_name="notify-sink"})`),
      ).toBe(1);
      expect(await value(`count(sluice_build_info{${runtime},version="${version}"})`)).toBe(2);
      expect(await value(`min(sluice_bus_connected{${runtime}})`)).toBe(1);
      expect(
        await value(
          `sum(sluice_sensor_end_to_end_latency_seconds_count{${runtime},trigger_name="notify-sink"})`,
        ),
      ).toBe(1);
      // Seconds: event time to trigger success on loopback is a fraction of a second (recorded in
      // milliseconds, a webhook → bus → Sensor → HTTP trip would usually exceed 10).
      const latency = await value(
        `sum(sluice_sensor_end_to_end_latency_seconds_sum{${runtime},trigger_name="notify-sink"})`,
      );
      expect(latency).toBeGreaterThan(0);
      expect(latency).toBeLessThan(10);
      // The alerting rules load and evaluate on these series: the recording rules produce the
      // EventSource's ratio inputs, and no alert fires on this healthy pipeline.
      await waitFor(
        'recording rules evaluated',
        async () =>
          (
            await prom!.query(
              `sluice_eventsource:received:rate5m{namespace="${ns}",eventsource_name="webhook"}`,
            )
          ).length === 1,
        { timeoutMs: 20_000 },
      );
      const rules = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as {
        data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
      };
      const loaded = rules.data.groups.flatMap((g) => g.rules);
      expect(loaded.length).toBe(10);
      for (const r of loaded) expect(r.health, `${r.name}: ${r.lastError ?? ''}`).toBe('ok');
      expect(await prom.query(`ALERTS{namespace="${ns}"}`)).toEqual([]);

      const del = await run(kubectl.path!, [
        ...kc,
        '-n',
        ns,
        'delete',
        'sensors,eventsources',
        '--all',
        '--wait=true',
        '--timeout=30s',
      ]);
      expect(del.code, del.stderr).toBe(0);
      await run(kubectl.path!, [
        ...kc,
        '-n',
        ns,
        'delete',
        'eventbus',
        '--all',
        '--wait=true',
        '--timeout=30s',
      ]);
      const left = await run(kubectl.path!, [
        ...kc,
        '-n',
        ns,
        'get',
        'sensors,eventsources,eventbus',
        '-o',
        'name',
      ]);
      expect(left.stdout.trim()).toBe('');
    } finally {
      await prom?.stop();
      await Promise.all(procs.map((p) => p.proc.stop()));
      await new Promise<void>((r) => {
        sink.closeAllConnections();
        sink.close(() => r());
      });
      await run(kubectl.path!, [...kc, 'delete', 'namespace', ns, '--wait=false']);
    }
  }, 180_000);
});
