// A real Prometheus (Debian's package) scraping loopback targets every second, with a small
// client for its query API.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './ports.ts';
import { ManagedProcess, waitFor } from './proc.ts';
import { requireTool } from './tools.ts';

export interface ScrapeJob {
  job: string;
  /** host:port pairs on loopback */
  targets: string[];
  metricsPath?: string;
}

export interface QueryResult {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusServer {
  url: string;
  logFile: string;
  /** Instant query; returns the result vector. */
  query(promql: string): Promise<QueryResult[]>;
  /** Waits until every target of every job has been scraped successfully at least once. */
  waitForTargetsUp(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  dir?: string;
  /** Scrape jobs in prometheus.yml's own form (relabeling, file discovery, ...), after `jobs`. */
  scrapeConfigs?: Array<Record<string, unknown>>;
  /** Targets those jobs are expected to have up (for waitForTargetsUp). */
  scrapeConfigTargets?: number;
  /** Rule files to load (absolute paths). */
  ruleFiles?: string[];
}

export async function startPrometheus(
  jobs: ScrapeJob[],
  opts: PrometheusOptions = {},
): Promise<PrometheusServer> {
  const bin = requireTool('prometheus');
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'sluice-prom-'));
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      ...(opts.ruleFiles?.length ? { rule_files: opts.ruleFiles } : {}),
      scrape_configs: [
        ...jobs.map((j) => ({
          job_name: j.job,
          metrics_path: j.metricsPath ?? '/metrics',
          static_configs: [{ targets: j.targets }],
        })),
        ...(opts.scrapeConfigs ?? []),
      ],
    }),
  );
  const logFile = join(dir, 'prometheus.log');
  const proc = new ManagedProcess(
    'prometheus',
    bin,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    logFile,
  );
  proc.start();
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    'prometheus /-/ready',
    async () => {
      if (!proc.running) throw new Error('prometheus exited');
      return (await fetch(`${url}/-/ready`)).ok;
    },
    { timeoutMs: 30_000, onTimeout: () => proc.tail() },
  );

  const query = async (promql: string): Promise<QueryResult[]> => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { result: QueryResult[] } };
    if (body.status !== 'success') throw new Error(`query ${promql} failed: ${body.error}`);
    return body.data?.result ?? [];
  };

  return {
    url,
    logFile,
    query,
    async waitForTargetsUp(timeoutMs = 30_000) {
      const expected = jobs.reduce((n, j) => n + j.targets.length, opts.scrapeConfigTargets ?? 0);
      await waitFor(
        `${expected} scrape target(s) up`,
        async () => {
          const up = await query('up == 1');
          return up.length >= expected;
        },
        { timeoutMs, intervalMs: 250, onTimeout: () => proc.tail() },
      );
    },
    stop: () => proc.stop(),
  };
}
