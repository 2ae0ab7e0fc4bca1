// charts/sluice: CRD copies in step with crds/, versions from package.json, `helm lint` clean,
// and `helm template` renders the right objects for cluster-wide and namespaced installs with
// the same rights as config/rbac; names that cannot collide, a values schema that refuses
// unknown keys, the PDB, placement, CRD keep switch, monitoring objects and NOTES in both modes.
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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
    const copies = [...generated.keys()].filter((p) => p.startsWith('charts/sluice/files/crds/'));
    expect(copies.length).toBe(readdirSync(join(ROOT, 'crds')).filter((f) => f.endsWith('.yaml')).length);
    for (const p of copies) expect(read(p), `${p} is stale`).toBe(generated.get(p));
    expect(
      readdirSync(join(chart, 'files/crds'))
        .map((f) => `charts/sluice/files/crds/${f}`)
        .sort(),
    ).toEqual(copies.sort());
    // Helm's own crds/ folder would install them a second time, never upgrade or delete them.
    expect(readdirSync(chart)).not.toContain('crds');
    for (const p of ['charts/sluice/files/sluice.rules.yaml', 'charts/sluice/files/sluice-dashboard.json'])
      expect(read(p), `${p} is stale`).toBe(generated.get(p));
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
// Each test runs helm several times (about 0.5 s each alone, seconds when the machine is busy).
describe.skipIf(helm.missing)('helm lint and template', { timeout: 60_000 }, () => {
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
  // The chart's controller rules are config/'s with the names of the release: its own objects held
  // during an uninstall and its release grant (README: Uninstall and rollback). A namespaced
  // controller has neither, nor the CRD watch.
  const chartRule = (r: { apiGroups?: string[]; resourceNames?: string[] }) => !r.resourceNames;
  const configRules = (name: string) =>
    (
      parseDocs(
        read('config/rbac/controller-role.yaml') + '\n---\n' + read('config/rbac/runtime-roles.yaml'),
      ).find((o) => o.metadata.name === name) as unknown as V1ClusterRole
    ).rules;
  /** config/'s name `n` for `resources` as release `rel` in namespace `ops` names it. */
  const releaseNames = (n: string, resources: string[]) => {
    const cluster = resources.some((r) => r.startsWith('cluster'));
    const local = resources.some((r) => !r.startsWith('cluster'));
    if (n === 'sluice-system') return ['ops'];
    const base = n.replace(/^sluice-controller/, 'rel-sluice-controller');
    return [
      ...(cluster ? [`ops-${base}`] : []),
      ...(local && (n !== 'sluice-controller' || !cluster) ? [base] : []),
    ];
  };
  const asRelease = (rules: V1ClusterRole['rules']) =>
    rules?.map((r) =>
      r.resourceNames
        ? { ...r, resourceNames: r.resourceNames.flatMap((n) => releaseNames(n, r.resources ?? [])) }
        : r,
    );

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
        'CustomResourceDefinition',
        'CustomResourceDefinition',
        'CustomResourceDefinition',
        'Deployment',
        'PodDisruptionBudget',
        'Role',
        'RoleBinding',
        'Service',
        'ServiceAccount',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
        'ValidatingAdmissionPolicyBinding',
      ].sort(),
    );
    // The admission policies narrowing the controller's writes: config/'s, with the release's names.
    const guard = (o: K8sObject) => JSON.stringify((o as unknown as { spec: unknown }).spec);
    const configGuards = parseDocs(read('config/rbac/release-grant-guard.yaml')).filter(
      (o) => o.kind === 'ValidatingAdmissionPolicy',
    );
    expect(configGuards).toHaveLength(2);
    for (const c of configGuards)
      expect(guard(one<K8sObject>(objs, 'ValidatingAdmissionPolicy', `ops-rel-${c.metadata.name}`))).toBe(
        guard(c)
          .replace(
            "object.metadata.name == 'sluice-controller-release'",
            "object.metadata.name in ['ops-rel-sluice-controller-release', 'rel-sluice-controller-release']",
          )
          .replace(
            '(sluice-controller-release)',
            '(ops-rel-sluice-controller-release, rel-sluice-controller-release)',
          )
          .replace(
            "n in ['sluice-controller', 'sluice-controller-release']",
            "n in ['ops-rel-sluice-controller', 'rel-sluice-controller', 'ops-rel-sluice-controller-release', 'rel-sluice-controller-release']",
          )
          .replaceAll('sluice-system:sluice-controller', 'ops:rel-sluice-controller')
          .replace("name == 'sluice-controller'", "name == 'rel-sluice-controller'")
          .replace("namespace == 'sluice-system'", "namespace == 'ops'"),
      );
    const d = one<V1Deployment>(objs, 'Deployment', 'rel-sluice-controller');
    expectHardenedController(d);
    expect(d.spec!.template.spec!.containers[0]!.image).toBe(`sluice:${version}`);
    expect(args(objs)).not.toContain('--namespaced');
    expect(args(objs)).not.toContain('--no-leader-elect');
    expect(one<V1ClusterRole>(objs, 'ClusterRole', 'ops-rel-sluice-controller').rules).toEqual(
      asRelease(configRules('sluice-controller')),
    );
    expect(one<V1ClusterRole>(objs, 'ClusterRole', 'ops-rel-sluice-eventsource').rules).toEqual(
      configRules('sluice-eventsource'),
    );
    expect(one<V1ClusterRole>(objs, 'ClusterRole', 'ops-rel-sluice-sensor').rules).toEqual(
      configRules('sluice-sensor'),
    );
    const binding = one<K8sObject & { roleRef: { name: string } }>(objs, 'ClusterRoleBinding');
    expect(binding.metadata.name).toBe('ops-rel-sluice-controller');
    expect(binding.roleRef.name).toBe('ops-rel-sluice-controller');
    const lease = one<V1Role>(objs, 'Role', 'rel-sluice-controller-leader-election');
    expect(lease.metadata!.namespace).toBe('ops');
    expect(lease.rules).toEqual(
      (
        parseDocs(read('config/rbac/controller-role.yaml')).find(
          (o) => o.kind === 'Role',
        ) as unknown as V1Role
      ).rules?.filter((r) => chartRule(r) && !r.apiGroups?.includes('apiextensions.k8s.io')),
    );
    const svc = one<K8sObject & { spec: { selector: Record<string, string> } }>(objs, 'Service');
    const podLabels = d.spec!.template.metadata!.labels!;
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(podLabels[k], k).toBe(v);
  });

  it('renders Roles in the watched namespace only in namespaced mode', async () => {
    for (const [set, ns, flag] of [
      ['namespaced=true', 'ops', ['--namespaced']],
      ['namespaced=true,managedNamespace=apps', 'apps', ['--namespaced', '--managed-namespace', 'apps']],
    ] as const) {
      const objs = await template(set);
      expect(objs.filter((o) => o.kind.startsWith('Cluster'))).toEqual([]);
      const a = args(objs);
      expect(a.slice(a.indexOf(flag[0]), a.indexOf(flag[0]) + flag.length)).toEqual(flag);
      expect(one<V1Role>(objs, 'Role', 'rel-sluice-controller').metadata!.namespace).toBe(ns);
      expect(one<V1Role>(objs, 'Role', 'rel-sluice-controller').rules).toEqual(
        configRules('sluice-controller')?.filter(
          (r) =>
            chartRule(r) &&
            !r.apiGroups?.includes('apiextensions.k8s.io') &&
            !r.apiGroups?.includes('rbac.authorization.k8s.io'),
        ),
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

  it('passes the pod settings the admin allows to the controller, and refuses unknown ones', async () => {
    const env0 = (objs: K8sObject[]) =>
      one<V1Deployment>(objs, 'Deployment').spec!.template.spec!.containers[0]!.env ?? [];
    expect(env0(await template()).find((e) => e.name === 'SLUICE_ALLOW_POD_SETTINGS')).toBeUndefined();
    const allowed = env0(await template('podSettings.allow={hostPath,volumes,root}'));
    expect(allowed.find((e) => e.name === 'SLUICE_ALLOW_POD_SETTINGS')?.value).toBe('hostPath,volumes,root');
    const bad = await run(helm.path!, ['template', 'rel', chart, '--set', 'podSettings.allow={bogus}'], {
      env,
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('podSettings/allow/0');
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
    expect(
      noRbac
        .filter((o) => o.kind !== 'CustomResourceDefinition')
        .map((o) => o.kind)
        .sort(),
    ).toEqual(['Deployment', 'PodDisruptionBudget', 'Service']);
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

  const templateRaw = (release: string, ns: string, ...set: string[]) =>
    run(helm.path!, ['template', release, chart, '--namespace', ns, ...set.flatMap((x) => ['--set', x])], {
      env,
    });
  const clusterScoped = (objs: K8sObject[]) =>
    objs.filter((o) => o.kind.startsWith('Cluster')).map((o) => `${o.kind}/${o.metadata.name}`);

  it('names cluster-scoped objects after the release and its namespace: no clash with install.yaml or another release', async () => {
    const render = async (release: string, ns: string) => {
      const r = await templateRaw(release, ns);
      expect(r.code, r.stderr).toBe(0);
      return parseDocs(r.stdout);
    };
    // The usual names: release "sluice" in sluice-system, like config/install.yaml.
    const a = await render('sluice', 'sluice-system');
    const b = await render('sluice', 'sluice-other');
    const installYaml = clusterScoped(
      parseDocs(read('config/install.yaml')).filter((o) => o.kind !== 'CustomResourceDefinition'),
    );
    expect(installYaml).toContain('ClusterRole/sluice-controller');
    expect(clusterScoped(a)).toHaveLength(4);
    for (const name of clusterScoped(a)) {
      expect(installYaml, name).not.toContain(name);
      expect(clusterScoped(b), name).not.toContain(name);
    }
    expect(clusterScoped(a)).toContain('ClusterRole/sluice-system-sluice-controller');
    // Namespaced objects take the release's full name.
    expect(one<V1Deployment>(a, 'Deployment').metadata!.name).toBe('sluice-controller');
    const override = parseDocs((await templateRaw('x', 'ops', 'fullnameOverride=events')).stdout);
    expect(one<V1Deployment>(override, 'Deployment').metadata!.name).toBe('events-controller');
    expect(clusterScoped(override)).toContain('ClusterRole/ops-events-controller');
  });

  it('refuses unknown and mistyped values (values.schema.json)', async () => {
    for (const [set, why] of [
      ['metrics.serviceMonitor.enable=true', "additional properties 'enable' not allowed"],
      ['replicas=2', "additional properties 'replicas' not allowed"],
      ['crds.kep=false', "additional properties 'kep' not allowed"],
      ['podDisruptionBudget.minAvailble=1', "additional properties 'minAvailble' not allowed"],
      ['replicaCount=two', 'replicaCount'],
      ['logLevel=verbose', 'logLevel'],
      ['image.pullPolicy=Sometimes', 'pullPolicy'],
      ['metrics.serviceMonitor.interval=30', 'interval'],
    ] as const) {
      const r = await templateRaw('rel', 'ops', set);
      expect(r.code, set).not.toBe(0);
      expect(r.stderr, set).toContain(why);
    }
    // Every key of values.yaml is in the schema (the schema forbids the rest).
    const schema = JSON.parse(read('charts/sluice/values.schema.json')) as SchemaNode;
    const missing: string[] = [];
    const walk = (values: Record<string, unknown>, node: SchemaNode, path: string) => {
      for (const [k, v] of Object.entries(values)) {
        const child = node.properties?.[k];
        if (!child) missing.push(`${path}${k}`);
        else if (v && typeof v === 'object' && !Array.isArray(v) && child.additionalProperties === false)
          walk(v as Record<string, unknown>, child, `${path}${k}.`);
      }
    };
    walk(parse(read('charts/sluice/values.yaml')) as Record<string, unknown>, schema, '');
    expect(missing).toEqual([]);
    expect(schema.additionalProperties).toBe(false);
  });

  it('passes helm lint --strict with every optional object on', async () => {
    const r = await run(
      helm.path!,
      [
        'lint',
        '--strict',
        chart,
        '--set',
        'metrics.serviceMonitor.enabled=true,metrics.podMonitor.enabled=true,metrics.prometheusRule.enabled=true,metrics.dashboard.enabled=true',
        '--set',
        'replicaCount=2,podDisruptionBudget.minAvailable=1,crds.keep=false',
        '--set',
        'topologySpreadConstraints[0].maxSkew=1,topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname,topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway',
      ],
      { env },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('renders a PodDisruptionBudget for the controller that never blocks a drain by default', async () => {
    type Pdb = K8sObject & {
      spec: {
        minAvailable?: number | string;
        maxUnavailable?: number | string;
        selector: { matchLabels: Record<string, string> };
      };
    };
    const objs = await template();
    const pdb = one<Pdb>(objs, 'PodDisruptionBudget', 'rel-sluice-controller');
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(pdb.spec.minAvailable).toBeUndefined();
    const podLabels = one<V1Deployment>(objs, 'Deployment').spec!.template.metadata!.labels!;
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) expect(podLabels[k], k).toBe(v);
    const ha = one<Pdb>(
      await template('replicaCount=2', 'podDisruptionBudget.minAvailable=1'),
      'PodDisruptionBudget',
    );
    expect(ha.spec).toMatchObject({ minAvailable: 1 });
    expect(ha.spec.maxUnavailable).toBeUndefined();
    const pct = one<Pdb>(await template('podDisruptionBudget.maxUnavailable=50%'), 'PodDisruptionBudget');
    expect(pct.spec.maxUnavailable).toBe('50%');
    const both = await templateRaw(
      'rel',
      'ops',
      'podDisruptionBudget.minAvailable=1',
      'podDisruptionBudget.maxUnavailable=1',
    );
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain('not both');
    expect(
      (await template('podDisruptionBudget.enabled=false')).some((o) => o.kind === 'PodDisruptionBudget'),
    ).toBe(false);
  });

  it('places the controller with topology spread, affinity and tolerations', async () => {
    const objs = await template(
      'topologySpreadConstraints[0].maxSkew=1,topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone,topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway',
      'topologySpreadConstraints[1].maxSkew=2,topologySpreadConstraints[1].topologyKey=kubernetes.io/hostname,topologySpreadConstraints[1].whenUnsatisfiable=DoNotSchedule,topologySpreadConstraints[1].labelSelector.matchLabels.team=ops',
      'tolerations[0].key=dedicated,tolerations[0].operator=Equal,tolerations[0].value=ops,tolerations[0].effect=NoSchedule',
      'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool',
      'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists',
    );
    const pod = one<V1Deployment>(objs, 'Deployment').spec!.template;
    const spread = pod.spec!.topologySpreadConstraints!;
    expect(spread).toHaveLength(2);
    expect(spread[0]).toMatchObject({ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone' });
    // Without a labelSelector the constraint counts the controller's own pods.
    for (const [k, v] of Object.entries(spread[0]!.labelSelector!.matchLabels!))
      expect(pod.metadata!.labels![k], k).toBe(v);
    expect(spread[1]!.labelSelector).toEqual({ matchLabels: { team: 'ops' } });
    expect(pod.spec!.tolerations).toEqual([
      { key: 'dedicated', operator: 'Equal', value: 'ops', effect: 'NoSchedule' },
    ]);
    expect(
      pod.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms[0]!
        .matchExpressions![0],
    ).toEqual({ key: 'pool', operator: 'Exists' });
    expect((await template()).find((o) => o.kind === 'Deployment')).not.toHaveProperty(
      'spec.template.spec.topologySpreadConstraints',
    );
  });

  it('installs the CRDs of crds/ as templates, kept on uninstall unless crds.keep=false', async () => {
    type Crd = K8sObject & { metadata: { annotations?: Record<string, string> }; spec: unknown };
    const crds = (await template()).filter((o) => o.kind === 'CustomResourceDefinition') as Crd[];
    expect(crds.map((c) => c.metadata.name).sort()).toEqual([
      'eventbus.argoproj.io',
      'eventsources.argoproj.io',
      'sensors.argoproj.io',
    ]);
    for (const c of crds) {
      expect(c.metadata.annotations?.['helm.sh/resource-policy'], c.metadata.name).toBe('keep');
      expect(c.metadata.labels?.['app.kubernetes.io/instance']).toBe('rel');
      // The schema as generated (descriptions with {{ }} in them are not templated).
      const source = parseDocs(read(`crds/argoproj.io_${c.metadata.name.split('.')[0]}.yaml`))[0] as Crd;
      expect(c.spec, c.metadata.name).toEqual(source.spec);
    }
    const dropped = (await template('crds.keep=false')).filter(
      (o) => o.kind === 'CustomResourceDefinition',
    ) as Crd[];
    expect(dropped).toHaveLength(3);
    for (const c of dropped) expect(c.metadata.annotations?.['helm.sh/resource-policy']).toBeUndefined();
    expect((await template('crds.install=false')).some((o) => o.kind === 'CustomResourceDefinition')).toBe(
      false,
    );
  });

  it('renders the monitoring objects: PodMonitor for the runtime pods, PrometheusRule, dashboard ConfigMap', async () => {
    type Pm = K8sObject & {
      spec: {
        namespaceSelector: { any?: boolean; matchNames?: string[] };
        selector: { matchExpressions: Array<{ key: string; operator: string; values: string[] }> };
        podMetricsEndpoints: Array<{ port: string; interval: string }>;
      };
    };
    const on = [
      'metrics.podMonitor.enabled=true,metrics.podMonitor.labels.release=kps,metrics.podMonitor.interval=15s',
      'metrics.prometheusRule.enabled=true,metrics.prometheusRule.labels.release=kps',
      'metrics.dashboard.enabled=true,metrics.dashboard.namespace=grafana',
    ];
    const objs = await template(...on);
    const pm = one<Pm>(objs, 'PodMonitor', 'rel-sluice-runtime');
    expect(pm.metadata.labels?.release).toBe('kps');
    expect(pm.spec.namespaceSelector).toEqual({ any: true });
    expect(pm.spec.podMetricsEndpoints[0]).toMatchObject({ port: 'metrics', interval: '15s' });
    // It selects the pods the controller builds (src/controller/resources/workload.ts), not the bus's.
    const { deploymentFor } = await import('../../src/controller/resources/workload.ts');
    const podLabels = (kind: 'EventSource' | 'Sensor' | 'EventBus') =>
      deploymentFor(
        { apiVersion: 'argoproj.io/v1alpha1', kind, name: 'x', namespace: 'apps', uid: 'u' },
        {
          apiVersion: 'argoproj.io/v1alpha1',
          kind: kind === 'EventBus' ? 'Sensor' : kind,
          metadata: { name: 'x', namespace: 'apps', uid: 'u' },
          spec: {},
        },
        { image: 'sluice:t', bus: { busName: 'default', namespace: 'apps', url: 'nats://bus:4222' } },
      ).spec!.template.metadata!.labels!;
    const selects = (labels: Record<string, string>) =>
      pm.spec.selector.matchExpressions.every(
        (e) => e.operator === 'In' && e.values.includes(labels[e.key] ?? ''),
      );
    expect(selects(podLabels('EventSource'))).toBe(true);
    expect(selects(podLabels('Sensor'))).toBe(true);
    expect(selects(podLabels('EventBus'))).toBe(false);

    const rule = one<K8sObject & { spec: unknown }>(objs, 'PrometheusRule', 'rel-sluice');
    expect(rule.metadata.labels?.release).toBe('kps');
    expect(rule.spec).toEqual(parse(read('config/prometheus/rules/sluice.rules.yaml')));
    const dash = one<K8sObject & { data: Record<string, string> }>(objs, 'ConfigMap', 'rel-sluice-dashboard');
    expect(dash.metadata.namespace).toBe('grafana');
    expect(dash.metadata.labels?.grafana_dashboard).toBe('1');
    expect(JSON.parse(dash.data['sluice-dashboard.json']!)).toEqual(
      JSON.parse(read('config/grafana/sluice-dashboard.json')),
    );

    const namespaced = one<Pm>(await template('namespaced=true,managedNamespace=apps', on[0]!), 'PodMonitor');
    expect(namespaced.spec.namespaceSelector).toEqual({ matchNames: ['apps'] });
    const none = await template();
    for (const kind of ['PodMonitor', 'PrometheusRule', 'ServiceMonitor', 'ConfigMap'])
      expect(
        none.some((o) => o.kind === kind),
        kind,
      ).toBe(false);
  });

  // Helm renders NOTES.txt only on install; a copy of the chart renders it into a ConfigMap.
  const notes = async (...set: string[]) => {
    const copy = join(mkdtempSync(join(tmpdir(), 'sluice-notes-')), 'sluice');
    cpSync(chart, copy, { recursive: true });
    cpSync(join(copy, 'templates/NOTES.txt'), join(copy, 'notes-source.txt'));
    writeFileSync(
      join(copy, 'templates/notes-render.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ tpl (.Files.Get "notes-source.txt") . | toJson }}\n',
    );
    const r = await run(
      helm.path!,
      [
        'template',
        'rel',
        copy,
        '-n',
        'ops',
        '--show-only',
        'templates/notes-render.yaml',
        ...set.flatMap((x) => ['--set', x]),
      ],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    return (parseDocs(r.stdout)[0] as unknown as { data: { notes: string } }).data.notes;
  };

  it('NOTES say what is true in cluster-wide and in namespaced mode', async () => {
    const cluster = await notes();
    expect(cluster).toContain('in every namespace');
    expect(cluster).toContain('rollout status deployment/rel-sluice-controller');
    // The ClusterRoles it tells to bind are the ones rendered.
    const roles = clusterScoped(await template());
    for (const m of cluster.matchAll(/(?:--clusterrole=|the )(ops-rel-sluice-\w+)/g))
      expect(roles, m[1]).toContain(`ClusterRole/${m[1]}`);
    expect(cluster).toContain('--clusterrole=ops-rel-sluice-sensor');
    expect(cluster).toContain('crds.keep=true');
    expect(cluster).toContain('set metrics.podMonitor.enabled=true');

    const ns = await notes(
      'namespaced=true,managedNamespace=apps',
      'metrics.podMonitor.enabled=true',
      'crds.keep=false',
    );
    expect(ns).toContain('in namespace "apps" only');
    expect(ns).not.toContain('every namespace');
    expect(ns).not.toContain('<namespace>');
    expect(ns).not.toContain('--clusterrole');
    expect(ns).toContain('kubectl apply -n apps -f examples/quickstart/');
    expect(ns).toContain('rel-sluice-eventsource and rel-sluice-sensor already exist in "apps"');
    expect(ns).toContain('PodMonitor rel-sluice-runtime scrapes the EventSource and Sensor pods in "apps"');
    expect(ns).toContain('crds.keep=false');
    // The objects named there are rendered.
    const objs = await template('namespaced=true,managedNamespace=apps');
    for (const n of ['rel-sluice-eventsource', 'rel-sluice-sensor'])
      expect(
        objs.some(
          (o) => o.kind === 'ServiceAccount' && o.metadata.name === n && o.metadata.namespace === 'apps',
        ),
      ).toBe(true);
    expect(ns).toContain('in other namespaces and releases too');
    // Namespaced with the CRDs kept: removal stays in the watched namespace (the CRDs are shared).
    const nsKeep = await notes('namespaced=true,managedNamespace=apps');
    expect(nsKeep).toContain('kubectl delete eventsources,sensors --all -n apps --wait');
    expect(nsKeep).not.toContain(' -A ');
    expect(nsKeep).not.toContain('kubectl delete crd');
    expect(cluster).toContain('kubectl delete crd eventbus.argoproj.io');
    expect(await notes('crds.install=false')).toContain('Not managed by this release');
  });
});

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  additionalProperties?: unknown;
}
