// charts/sluice: CRD copies in step with crds/, versions from package.json, `helm lint` clean,
// and `helm template` renders the right objects for cluster-wide and namespaced installs with
// the same rights as config/rbac.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1ClusterRole, V1Deployment, V1Role } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generatedFiles, ROOT } from '../../scripts/install-manifests.ts';
import { run } from '../harness/run.ts';
import { findTool } from '../harness/tools.ts';
import {
  argProblems,
  expectHardenedController,
  type K8sObject,
  parseDocs,
} from './cluster-install-helpers.ts';

const chart = join(ROOT, 'charts/sluice');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const version = (JSON.parse(read('package.json')) as { version: string }).version;

describe('Helm chart files', () => {
  it('ships the CRDs of crds/ unchanged (run `make install-yaml` when this fails)', () => {
    const generated = generatedFiles();
    const copies = [...generated.keys()].filter((p) => p.startsWith('charts/sluice/crds/'));
    expect(copies.length).toBe(readdirSync(join(ROOT, 'crds')).filter((f) => f.endsWith('.yaml')).length);
    for (const p of copies) expect(read(p), `${p} is stale`).toBe(generated.get(p));
    expect(
      readdirSync(join(chart, 'crds'))
        .map((f) => `charts/sluice/crds/${f}`)
        .sort(),
    ).toEqual(copies.sort());
  });

  it('takes its version and appVersion from package.json', () => {
    const meta = parse(read('charts/sluice/Chart.yaml')) as {
      apiVersion: string;
      version: string;
      appVersion: string;
    };
    expect(meta.apiVersion).toBe('v2');
    expect(meta.appVersion).toBe(version);
    expect(meta.version).toBe(version);
  });
});

const helm = findTool('helm');
describe.skipIf(helm.missing)('helm lint and template', () => {
  const home = mkdtempSync(join(tmpdir(), 'sluice-chart-'));
  const env = { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home };
  const template = async (...set: string[]) => {
    const r = await run(
      helm.path!,
      ['template', 'rel', chart, '--namespace', 'ops', ...set.flatMap((s) => ['--set', s])],
      { env },
    );
    if (r.code !== 0) throw new Error(r.stderr);
    return parseDocs(r.stdout);
  };
  const one = <T>(objs: K8sObject[], kind: string, name?: string) => {
    const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
    expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
    return found[0] as unknown as T;
  };
  const args = (objs: K8sObject[]) =>
    one<V1Deployment>(objs, 'Deployment').spec!.template.spec!.containers[0]!.args!;
  // config/ alone has the uninstall rules (its own named objects, the CRD watch): the chart names
  // its objects after the release and does not carry them yet (README: Uninstall).
  const chartRule = (r: { apiGroups?: string[]; resourceNames?: string[] }) =>
    !r.resourceNames && !r.apiGroups?.includes('apiextensions.k8s.io');
  const configRules = (name: string) =>
    (
      parseDocs(
        read('config/rbac/controller-role.yaml') + '\n---\n' + read('config/rbac/runtime-roles.yaml'),
      ).find((o) => o.metadata.name === name) as unknown as V1ClusterRole
    ).rules?.filter(chartRule);

  it('passes helm lint --strict with default and namespaced values', async () => {
    for (const set of [[], ['namespaced=true'], ['namespaced=true,managedNamespace=apps']]) {
      const r = await run(helm.path!, ['lint', '--strict', chart, ...set.flatMap((s) => ['--set', s])], {
        env,
      });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('0 chart(s) failed');
    }
  });

  it('renders a cluster-wide controller with config/rbac rights and hardened pods by default', async () => {
    const objs = await template();
    expect(objs.map((o) => o.kind).sort()).toEqual(
      [
        'ClusterRole',
        'ClusterRole',
        'ClusterRole',
        'ClusterRoleBinding',
        'Deployment',
        'Role',
        'RoleBinding',
        'Service',
        'ServiceAccount',
      ].sort(),
    );
    const d = one<V1Deployment>(objs, 'Deployment', 'rel-sluice-controller');
    expectHardenedController(d);
    expect(d.spec!.template.spec!.containers[0]!.image).toBe(`sluice:${version}`);
    expect(args(objs)).not.toContain('--namespaced');
    expect(args(objs)).not.toContain('--no-leader-elect');
    expect(one<V1ClusterRole>(objs, 'ClusterRole', 'rel-sluice-controller').rules).toEqual(
      configRules('sluice-controller'),
    );
    expect(one<V1ClusterRole>(objs, 'ClusterRole', 'rel-sluice-eventsource').rules).toEqual(
      configRules('sluice-eventsource'),
    );
    expect(one<V1ClusterRole>(objs, 'ClusterRole', 'rel-sluice-sensor').rules).toEqual(
      configRules('sluice-sensor'),
    );
    const lease = one<V1Role>(objs, 'Role', 'rel-sluice-controller-leader-election');
    expect(lease.metadata!.namespace).toBe('ops');
    expect(lease.rules).toEqual(
      (
        parseDocs(read('config/rbac/controller-role.yaml')).find(
          (o) => o.kind === 'Role',
        ) as unknown as V1Role
      ).rules?.filter(chartRule),
    );
    const svc = one<K8sObject & { spec: { selector: Record<string, string> } }>(objs, 'Service');
    const podLabels = d.spec!.template.metadata!.labels!;
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(podLabels[k], k).toBe(v);
  });

  it('renders Roles in the watched namespace only in namespaced mode', async () => {
    for (const [set, ns, flag] of [
      ['namespaced=true', 'ops', ['--namespaced']],
      ['namespaced=true,managedNamespace=apps', 'apps', ['--managed-namespace', 'apps']],
    ] as const) {
      const objs = await template(set);
      expect(objs.filter((o) => o.kind.startsWith('Cluster'))).toEqual([]);
      const a = args(objs);
      expect(a.slice(a.indexOf(flag[0]), a.indexOf(flag[0]) + flag.length)).toEqual(flag);
      expect(one<V1Role>(objs, 'Role', 'rel-sluice-controller').metadata!.namespace).toBe(ns);
      expect(one<V1Role>(objs, 'Role', 'rel-sluice-controller').rules).toEqual(
        configRules('sluice-controller'),
      );
      for (const role of ['eventsource', 'sensor']) {
        expect(one<V1Role>(objs, 'Role', `rel-sluice-${role}`).metadata!.namespace).toBe(ns);
        expect(one<K8sObject>(objs, 'ServiceAccount', `rel-sluice-${role}`).metadata.namespace).toBe(ns);
        expect(one<K8sObject>(objs, 'RoleBinding', `rel-sluice-${role}`).metadata.namespace).toBe(ns);
      }
      // The controller itself, its Lease and its ServiceAccount stay in the release namespace.
      expect(one<V1Role>(objs, 'Role', 'rel-sluice-controller-leader-election').metadata!.namespace).toBe(
        'ops',
      );
      expect(one<K8sObject>(objs, 'Deployment').metadata.namespace).toBe('ops');
    }
  });

  it('honours leader election, RBAC, metrics, image, placement and extra args/env values', async () => {
    const noLe = await template('leaderElection.enabled=false');
    expect(args(noLe)).toContain('--no-leader-elect');
    expect(noLe.find((o) => o.metadata.name.endsWith('leader-election'))).toBeUndefined();
    const bad = await run(
      helm.path!,
      ['template', 'rel', chart, '--set', 'leaderElection.enabled=false', '--set', 'replicaCount=2'],
      { env },
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('needs leaderElection.enabled=true');

    const noRbac = await template(
      'rbac.create=false',
      'rbac.runtimeRoles=false',
      'serviceAccount.create=false',
    );
    expect(noRbac.map((o) => o.kind).sort()).toEqual(['Deployment', 'Service']);
    expect(one<V1Deployment>(noRbac, 'Deployment').spec!.template.spec!.serviceAccountName).toBe('default');

    const monitored = await template(
      'metrics.serviceMonitor.enabled=true',
      'metrics.serviceMonitor.labels.release=kps',
    );
    const sm = one<K8sObject & { spec: { selector: { matchLabels: Record<string, string> } } }>(
      monitored,
      'ServiceMonitor',
    );
    expect(sm.metadata.labels?.release).toBe('kps');
    const svc = one<K8sObject>(monitored, 'Service');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels))
      expect(svc.metadata.labels?.[k], k).toBe(v);
    expect(
      (await template('metrics.service.enabled=false')).find((o) => o.kind === 'Service'),
    ).toBeUndefined();

    const custom = await template(
      'image.repository=registry.example/sluice,image.tag=9.9.9,replicaCount=2',
      'extraArgs={--workers,8}',
      'extraEnv[0].name=FOO,extraEnv[0].value=bar',
      'nodeSelector.pool=ops,logLevel=debug,natsImage=nats:2.12',
    );
    const d = one<V1Deployment>(custom, 'Deployment');
    const ctr = d.spec!.template.spec!.containers[0]!;
    expect(ctr.image).toBe('registry.example/sluice:9.9.9');
    expect(ctr.env!.find((e) => e.name === 'SLUICE_IMAGE')!.value).toBe('registry.example/sluice:9.9.9');
    expect(ctr.env!.find((e) => e.name === 'FOO')!.value).toBe('bar');
    expect(d.spec!.replicas).toBe(2);
    expect(d.spec!.template.spec!.nodeSelector).toEqual({ pool: 'ops' });
    expect(ctr.args!.slice(-2)).toEqual(['--workers', '8']);
    expect(ctr.args).toContain('debug');
    expect(ctr.args).toContain('nats:2.12');
    expect(argProblems(ctr.args!)).toEqual([]);
  });
});
