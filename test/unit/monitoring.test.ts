// The monitoring assets against the code and against real tools: every metric name the Grafana
// dashboard and the alerting rules read is one sluice registers; promtool checks the rules, runs
// their unit tests (test/fixtures/prometheus) and parses every dashboard query; the scrape
// config loads; sluice_build_info is in the process registry.
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { DASHBOARD_FILE, ROOT, RULES_FILE } from '../../scripts/install-manifests.ts';
import { droppedCounter } from '../../src/bus/drops.ts';
import { informerMetrics, leaderMetric, workQueueMetrics } from '../../src/controller/metrics.ts';
import { eventSourceMetrics } from '../../src/eventsources/metrics.ts';
import { ByteBudget } from '../../src/eventsources/webhook/budget.ts';
import { ConnectionGate } from '../../src/eventsources/webhook/connection-gate.ts';
import { webhookMetrics } from '../../src/eventsources/webhook/metrics.ts';
import type { ProcessBounds } from '../../src/eventsources/webhook/server.ts';
import { currentBuild, newRegistry, registry } from '../../src/observability/metrics.ts';
import { sensorMetrics } from '../../src/sensors/metrics.ts';
import { VERSION } from '../../src/version.ts';
import { run } from '../harness/run.ts';
import { findTool } from '../harness/tools.ts';
import { grafanaQueryExpr, metricNames } from './promql-names.ts';

type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary';

/** Series names a metric of `type` exposes (a histogram's _bucket/_sum/_count, ...). */
function seriesNames(name: string, type: MetricType): string[] {
  if (type === 'histogram') return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
  if (type === 'summary') return [name, `${name}_sum`, `${name}_count`];
  return [name];
}

/** Metrics built in src/ with a literal name: `new Counter({ name: '...' ...`. */
function scannedMetrics(): Map<string, MetricType> {
  const out = new Map<string, MetricType>();
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.ts')) {
        const text = readFileSync(p, 'utf8');
        for (const m of text.matchAll(
          /new (Counter|Gauge|Histogram|Summary)\(\{\s*name: '([a-zA-Z_:][\w:]*)'/g,
        ))
          out.set(m[2]!, m[1]!.toLowerCase() as MetricType);
      }
    }
  };
  walk(join(ROOT, 'src'));
  return out;
}

async function registered(r: Registry): Promise<Map<string, MetricType>> {
  return new Map((await r.getMetricsAsJSON()).map((m) => [m.name, String(m.type) as MetricType]));
}

/** Every metric family's real registry: what the runtimes and the controller register. */
async function familyMetrics(): Promise<Map<string, MetricType>> {
  const r = newRegistry(true);
  sensorMetrics(r);
  eventSourceMetrics(r);
  workQueueMetrics(r, 'q');
  informerMetrics(r, 'res');
  leaderMetric(r, 'lease');
  droppedCounter(r);
  const bounds: ProcessBounds = { budget: new ByteBudget(1024), connections: new ConnectionGate(1) };
  webhookMetrics(r, bounds);
  return registered(r);
}

async function knownSeries(): Promise<Set<string>> {
  const all = new Map([...scannedMetrics(), ...(await familyMetrics())]);
  return new Set([...all].flatMap(([name, type]) => seriesNames(name, type)));
}

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string }> }>;
}
const rules = parse(readFileSync(join(ROOT, RULES_FILE), 'utf8')) as RuleFile;
const allRules = rules.groups.flatMap((g) => g.rules);
const recorded = new Set(allRules.flatMap((r) => (r.record ? [r.record] : [])));

interface Dashboard {
  templating: { list: Array<{ name: string; query?: unknown }> };
  panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
}
const dashboard = JSON.parse(readFileSync(join(ROOT, DASHBOARD_FILE), 'utf8')) as Dashboard;
const panelQueries = dashboard.panels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })),
);
const variableQueries = dashboard.templating.list.flatMap((v) => {
  const q = typeof v.query === 'object' ? (v.query as { query?: string }).query : undefined;
  return q ? [{ where: `variable $${v.name}`, expr: grafanaQueryExpr(q) }] : [];
});
const dashboardQueries = [...panelQueries, ...variableQueries];

describe('metric names in the dashboard and the alerting rules', () => {
  it('finds names in PromQL the way Prometheus reads them', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, kind) (rate(a_seconds_bucket{x=~"$v|b"}[$__rate_interval]))) / on (kind) group_left () b_total > 1e3',
      ).sort(),
    ).toEqual(['a_seconds_bucket', 'b_total']);
    expect(metricNames('{__name__=~"x_total|y_total", status=~"5..|"} offset 5m').sort()).toEqual([
      'x_total',
      'y_total',
    ]);
    expect(() => metricNames('{__name__=~"argo_.*"}')).toThrow(/not a list/);
    expect(grafanaQueryExpr('label_values(up{job="a"}, namespace)')).toBe('up{job="a"}');
  });

  it('the source scan sees the metrics the families register', async () => {
    const scanned = scannedMetrics();
    const family = await familyMetrics();
    for (const [name, type] of family) {
      if (name.startsWith('sluice_webhook_') || !/^(argo_events|sluice|workqueue|leader)_/.test(name))
        continue; // defined through a helper or by prom-client's defaults
      expect(scanned.get(name), name).toBe(type);
    }
    expect(scanned.get('sluice_controller_reconcile_total')).toBe('counter');
    expect(scanned.get('sluice_bus_connected')).toBe('gauge');
  });

  it('every name the dashboard reads is registered by sluice', async () => {
    const known = await knownSeries();
    expect(dashboardQueries.length).toBeGreaterThan(25);
    for (const q of dashboardQueries) {
      const names = metricNames(q.expr);
      expect(names.length, `${q.where} reads no metric: ${q.expr}`).toBeGreaterThan(0);
      for (const n of names) expect(known.has(n), `${q.where}: ${n} is not registered`).toBe(true);
    }
  });

  it('every name the rules read is registered or recorded by an earlier rule', async () => {
    const known = await knownSeries();
    for (const r of allRules) {
      for (const n of metricNames(r.expr))
        expect(known.has(n) || recorded.has(n), `${r.alert ?? r.record}: ${n} is not registered`).toBe(true);
    }
  });

  it('the dashboard covers what an operator looks at', () => {
    const read = new Set(dashboardQueries.flatMap((q) => metricNames(q.expr)));
    for (const n of [
      'argo_events_events_sent_total', // events in
      'argo_events_action_triggered_total', // events out
      'sluice_sensor_consumer_pending', // backlog
      'sluice_sensor_oldest_unacked_age_seconds', // and its age
      'sluice_sensor_dlq_depth', // DLQ depth
      'sluice_sensor_dead_letters_total', // and rate
      'sluice_sensor_trigger_retries_total', // retries
      'sluice_sensor_circuit_breaker_state', // breaker state
      'sluice_sensor_end_to_end_latency_seconds_bucket', // latency
      'sluice_controller_reconcile_total', // reconcile errors
      'sluice_bus_connected',
      'sluice_build_info',
    ])
      expect(read.has(n), n).toBe(true);
  });

  it('has the alerts the operations guide names', () => {
    expect(allRules.flatMap((r) => (r.alert ? [r.alert] : [])).sort()).toEqual(
      [
        'SluiceBusUnreachable',
        'SluiceCircuitBreakerOpen',
        'SluiceDeadLetterQueueGrowing',
        'SluiceEventSourceErrorRatio',
        'SluiceEventsDropped',
        'SluiceReconcileErrors',
        'SluiceSensorBacklogOld',
      ].sort(),
    );
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const r of allRules)
      if (r.alert) expect(readme.includes(r.alert), `README names ${r.alert}`).toBe(true);
  });

  it('uses seconds for sluice durations, upstream milliseconds only under upstream names', async () => {
    for (const [name, type] of await familyMetrics()) {
      if (type !== 'histogram' && type !== 'summary') continue;
      if (name.startsWith('argo_events_')) expect(name, name).toMatch(/_milliseconds$/);
      else expect(name, name).toMatch(/_seconds$/);
    }
  });
});

describe('sluice_build_info', () => {
  it('is in the process registry with version, commit and Node.js version', async () => {
    const text = await registry().metrics();
    const b = currentBuild();
    expect(b.version).toBe(VERSION);
    expect(text).toContain(
      `sluice_build_info{version="${VERSION}",commit="${b.commit}",node_version="${process.version}"} 1`,
    );
    expect(currentBuild({ SLUICE_COMMIT: 'abc123' }).commit).toBe('abc123');
    expect(currentBuild({}).commit).toBe('unknown');
  });
});

const promtool = findTool('promtool');
describe.skipIf(promtool.missing)('promtool', { timeout: 30_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-promtool-'));
  const tool = (...args: string[]) => run(promtool.path!, args, { cwd: ROOT });

  it('check rules accepts the rule file and the generated PrometheusRule groups', async () => {
    const r = await tool('check', 'rules', RULES_FILE);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`SUCCESS: ${allRules.length} rules found`);
    const generated = parse(readFileSync(join(ROOT, 'config/prometheus/prometheusrule.yaml'), 'utf8')) as {
      spec: RuleFile;
    };
    expect(generated.spec).toEqual(rules);
  });

  it('test rules: every alert fires on its fixture and stays silent on the healthy series', async () => {
    const fixture = 'test/fixtures/prometheus/sluice.rules.test.yaml';
    const r = await tool('test', 'rules', fixture);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const tested = new Set(
      (
        parse(readFileSync(join(ROOT, fixture), 'utf8')) as {
          tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
        }
      ).tests.flatMap((t) =>
        (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length).map((a) => a.alertname),
      ),
    );
    for (const rule of allRules) if (rule.alert) expect(tested.has(rule.alert), rule.alert).toBe(true);
  });

  it('parses every dashboard query (as recording rules, Grafana variables filled in)', async () => {
    const file = join(dir, 'dashboard.rules.yaml');
    writeFileSync(
      file,
      stringify({
        groups: [
          {
            name: 'dashboard',
            rules: dashboardQueries.map((q, i) => ({
              record: `dashboard:query_${i}`,
              expr: q.expr.replaceAll('$__rate_interval', '5m').replaceAll('$namespace', '.*'),
            })),
          },
        ],
      }),
    );
    const r = await tool('check', 'rules', file);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('check config accepts the scrape jobs (pod discovery swapped for file discovery if this build lacks it)', async () => {
    const jobs = parse(readFileSync(join(ROOT, 'config/prometheus/scrape-configs.yaml'), 'utf8')) as {
      scrape_configs: Array<Record<string, unknown>>;
    };
    expect(jobs.scrape_configs.map((j) => j.job_name)).toEqual(['sluice-controller', 'sluice-runtime']);
    const write = (cfg: unknown) => {
      const file = join(dir, 'prometheus.yml');
      writeFileSync(file, stringify(cfg));
      return tool('check', 'config', file);
    };
    let r = await write(jobs);
    if (r.code !== 0 && /kubernetes_sd_configs not found/.test(r.stdout + r.stderr)) {
      // Debian's Prometheus is built without Kubernetes discovery.
      const targets = join(dir, 'targets.json');
      writeFileSync(targets, '[]');
      r = await write({
        scrape_configs: jobs.scrape_configs.map(({ kubernetes_sd_configs: _, ...j }) => ({
          ...j,
          file_sd_configs: [{ files: [targets] }],
        })),
      });
    }
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});
