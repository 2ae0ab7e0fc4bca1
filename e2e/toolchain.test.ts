// The real user-facing tools work against the real servers of this run: kubectl applies and
// reads manifests, helm installs a chart, Prometheus scrapes a prom-client endpoint.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { startPrometheus } from '../test/harness/prometheus.ts';
import { run } from '../test/harness/run.ts';
import { kubeconfigPath, kubeMissing, skipNote, uniqueName } from '../test/harness/shared.ts';
import { findTool } from '../test/harness/tools.ts';

const kubectl = findTool('kubectl');
const helm = findTool('helm');
const prometheus = findTool('prometheus');

const kubectlSkip = kubeMissing() ?? kubectl.missing ?? null;
describe.skipIf(kubectlSkip)(`kubectl against the control plane${skipNote(kubectlSkip)}`, () => {
  it('applies a manifest and reads it back', async () => {
    const ns = uniqueName('e2e');
    const manifest = [
      `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}`,
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n  namespace: ${ns}\ndata:\n  greeting: hi`,
    ].join('\n---\n');
    const kc = ['--kubeconfig', kubeconfigPath()!];
    const applied = await run(kubectl.path!, [...kc, 'apply', '-f', '-'], { input: manifest });
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toContain(`configmap/hello created`);
    const got = await run(kubectl.path!, [...kc, '-n', ns, 'get', 'configmap', 'hello', '-o', 'json']);
    expect(JSON.parse(got.stdout).data).toEqual({ greeting: 'hi' });
    const del = await run(kubectl.path!, [...kc, 'delete', 'namespace', ns, '--wait=false']);
    expect(del.code).toBe(0);
  });
});

const helmSkip = kubeMissing() ?? helm.missing ?? null;
describe.skipIf(helmSkip)(`helm against the control plane${skipNote(helmSkip)}`, () => {
  it('installs and uninstalls a chart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-helm-'));
    const env = { ...process.env, HELM_CACHE_HOME: dir, HELM_CONFIG_HOME: dir, HELM_DATA_HOME: dir };
    const created = await run(helm.path!, ['create', 'demo'], { cwd: dir, env });
    expect(created.code).toBe(0);
    const ns = uniqueName('helm');
    const kc = ['--kubeconfig', kubeconfigPath()!];
    const install = await run(
      helm.path!,
      [...kc, 'install', 'demo', join(dir, 'demo'), '--namespace', ns, '--create-namespace'],
      { env },
    );
    expect(install.stderr).toBe('');
    expect(install.stdout).toContain('STATUS: deployed');
    const list = await run(helm.path!, [...kc, 'list', '-n', ns, '-o', 'json'], { env });
    expect(JSON.parse(list.stdout)).toMatchObject([{ name: 'demo', status: 'deployed' }]);
    const uninstall = await run(helm.path!, [...kc, 'uninstall', 'demo', '-n', ns], { env });
    expect(uninstall.code).toBe(0);
  });
});

describe.skipIf(prometheus.missing)(`Prometheus scraping${skipNote(prometheus.missing ?? null)}`, () => {
  it('scrapes a prom-client registry and answers queries with its values', async () => {
    const registry = new Registry();
    const counter = new Counter({
      name: 'sluice_e2e_probe_total',
      help: 'probe',
      labelNames: ['kind'],
      registers: [registry],
    });
    counter.inc({ kind: 'a' }, 7);
    const server = createServer(async (_req, res) => {
      res.setHeader('content-type', registry.contentType);
      res.end(await registry.metrics());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-prom-'));
    writeFileSync(join(dir, '.keep'), '');
    const prom = await startPrometheus([{ job: 'probe', targets: [`127.0.0.1:${port}`] }], { dir });
    try {
      await prom.waitForTargetsUp();
      const result = await prom.query('sluice_e2e_probe_total{job="probe"}');
      expect(result).toHaveLength(1);
      expect(result[0]!.metric.kind).toBe('a');
      expect(Number(result[0]!.value[1])).toBe(7);
    } finally {
      await prom.stop();
      server.close();
    }
  });
});
