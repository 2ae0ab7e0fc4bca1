// config/: the kustomize tree and its rendering config/install.yaml stay in step with their
// sources, and the controller Deployment they install is locked down.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1ClusterRoleBinding, V1Deployment, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { GENERATED_DIRS, generatedFiles, INSTALL_YAML, ROOT } from '../../scripts/install-manifests.ts';
import { run } from '../harness/run.ts';
import { findTool } from '../harness/tools.ts';
import { expectHardenedController, type K8sObject, parseDocs } from './cluster-install-helpers.ts';

const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const version = (JSON.parse(read('package.json')) as { version: string }).version;
const generated = generatedFiles();
const objects = parseDocs(read(INSTALL_YAML));
const find = <T>(kind: string, name?: string) =>
  objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name)) as T | undefined;
const deployment = find<V1Deployment>('Deployment', 'sluice-controller')!;

describe('config/install.yaml', () => {
  it('is up to date with config/ and crds/ (run `make install-yaml` when this fails)', () => {
    for (const [path, content] of generated) {
      if (!path.startsWith('config/')) continue;
      expect(read(path), `${path} is stale`).toBe(content);
    }
    const dir = GENERATED_DIRS.find((d) => d.startsWith('config/'))!;
    const stray = readdirSync(join(ROOT, dir)).filter((f) => !generated.has(`${dir}/${f}`));
    expect(stray, `files in ${dir} that crds/ no longer has`).toEqual([]);
  });

  it('holds the namespace, the three CRDs, RBAC, the controller and its Service in apply order', () => {
    const kinds = objects.map((o) => o.kind);
    expect(kinds[0]).toBe('Namespace');
    expect(objects.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name)).toEqual([
      'eventbus.argoproj.io',
      'eventsources.argoproj.io',
      'sensors.argoproj.io',
    ]);
    // The admission policy that narrows the controller's RBAC `create` comes last (kustomize's order).
    expect(kinds.filter((k) => !k.startsWith('ValidatingAdmissionPolicy')).at(-1)).toBe('Deployment');
    expect(kinds.lastIndexOf('CustomResourceDefinition')).toBeLessThan(kinds.indexOf('ServiceAccount'));
    expect(new Set(kinds)).toEqual(
      new Set([
        'Namespace',
        'CustomResourceDefinition',
        'ServiceAccount',
        'ClusterRole',
        'ClusterRoleBinding',
        'Role',
        'RoleBinding',
        'Service',
        'Deployment',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
      ]),
    );
    expect(kinds).not.toContain('ServiceMonitor');
    const clusterScoped = new Set([
      'Namespace',
      'CustomResourceDefinition',
      'ClusterRole',
      'ClusterRoleBinding',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ]);
    for (const o of objects) {
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(
        clusterScoped.has(o.kind) ? undefined : 'sluice-system',
      );
    }
  });

  it('runs the controller hardened, with probes, resources, fieldRef env and leader election on', () => {
    expectHardenedController(deployment);
    const ctr = deployment.spec!.template.spec!.containers[0]!;
    expect(ctr.image).toBe(`sluice:${version}`);
    expect(ctr.command).toBeUndefined(); // the image's entrypoint is `sluice`
    expect(ctr.args).not.toContain('--no-leader-elect');
    expect(ctr.args).not.toContain('--namespaced');
  });

  it('runs as the ServiceAccount the controller ClusterRole is bound to', () => {
    const sa = deployment.spec!.template.spec!.serviceAccountName;
    const binding = find<V1ClusterRoleBinding>('ClusterRoleBinding', 'sluice-controller')!;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa, namespace: 'sluice-system' }]);
    expect(find('ClusterRole', binding.roleRef.name)).toBeDefined();
    expect(find('ServiceAccount', sa)).toBeDefined();
  });

  it('exposes /metrics through a Service that selects the controller pods', () => {
    const svc = find<V1Service>('Service')!;
    const podLabels = deployment.spec!.template.metadata!.labels!;
    for (const [k, v] of Object.entries(svc.spec!.selector!)) expect(podLabels[k], k).toBe(v);
    expect(svc.spec!.ports).toEqual([
      { name: 'metrics', port: 7777, targetPort: 'metrics', protocol: 'TCP' },
    ]);
    const monitor = parseDocs(read('config/prometheus/servicemonitor.yaml'))[0] as K8sObject & {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string }> };
    };
    for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) {
      expect(svc.metadata!.labels![k], `ServiceMonitor selects ${k}`).toBe(v);
    }
    expect(monitor.spec.endpoints[0]!.port).toBe('metrics');
  });

  const kubectl = findTool('kubectl');
  it.skipIf(kubectl.missing)(
    'equals what `kubectl kustomize config/default` renders',
    async () => {
      const built = await run(kubectl.path!, ['kustomize', join(ROOT, 'config/default')]);
      expect(built.stderr).toBe('');
      const key = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
      const fromKustomize = new Map(parseDocs(built.stdout).map((o) => [key(o), o]));
      expect([...fromKustomize.keys()].sort()).toEqual(objects.map(key).sort());
      for (const o of objects) expect(fromKustomize.get(key(o)), key(o)).toEqual(o);
    },
    30_000,
  );
});
