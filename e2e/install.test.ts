// The two cluster install paths on the real kube-apiserver, with the real helm and kubectl:
// `helm install` of charts/sluice (namespaced mode) and `kubectl apply --server-side -f
// config/install.yaml` (cluster-wide). Every object must be accepted; then the controller
// Deployment, read back from the API server, is run as a local process from its own container
// spec (standing in for a kubelet): its args and env, fieldRef env filled in as a kubelet would,
// and a token of its own ServiceAccount (TokenRequest API) in place of the in-cluster mount, so
// the installed RBAC is what it runs with. It must become ready, take the leader Lease and bring
// an EventBus (pointing at the harness nats-server) to Ready. Uninstalling removes the release's
// objects and keeps the CRDs.
//
// CRDs are cluster-scoped and shared with every other test: they are applied with
// --force-conflicts and never deleted.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type V1Deployment,
} from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { containerRun } from '../test/harness/controller-pod.ts';
import { installCrds } from '../test/harness/crds.ts';
import { waitFor } from '../test/harness/proc.ts';
import { run } from '../test/harness/run.ts';
import { serviceAccountKubeconfig } from '../test/harness/service-account.ts';
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
const kubectl = findTool('kubectl');
const helm = findTool('helm');
const skip = kubeMissing() ?? natsMissing() ?? kubectl.missing ?? helm.missing ?? null;
const CRDS = ['eventbus.argoproj.io', 'eventsources.argoproj.io', 'sensors.argoproj.io'];

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

const kc = () => ['--kubeconfig', kubeconfigPath()!];

/** Runs the controller from its Deployment and checks it does its job in `ns`. */
async function exerciseController(
  d: V1Deployment,
  ns: string,
  extraArgs: string[] = [],
): Promise<{ controller: SluiceProcess; stop: () => Promise<void> }> {
  const podName = `${d.metadata!.name}-7d9f8c6b5-x2x4q`;
  const spec = containerRun(d, podName);
  expect(spec.args[0]).toBe('controller');
  const saConfig = await serviceAccountKubeconfig(kubeConfig(), d.metadata!.namespace!, spec.serviceAccount);
  const controller = await startSluice([...spec.args, ...extraArgs], {
    ...spec.env,
    KUBECONFIG: saConfig,
  });
  const stop = () => controller.proc.stop();
  try {
    await waitFor(
      'controller /readyz 200',
      async () => (await fetch(`http://127.0.0.1:${controller.metricsPort}/readyz`)).status === 200,
      { timeoutMs: 20_000, onTimeout: () => controller.logs() },
    );
    expect((await fetch(`http://127.0.0.1:${controller.metricsPort}/healthz`)).status).toBe(200);
    // Leader election ran in the pod's namespace (POD_NAMESPACE), under the pod's name (POD_NAME).
    const lease = await waitFor(
      'leader Lease',
      () =>
        kubeConfig()
          .makeApiClient(CoordinationV1Api)
          .readNamespacedLease({ name: 'sluice-controller', namespace: d.metadata!.namespace! })
          .catch(() => undefined),
      { timeoutMs: 20_000, onTimeout: () => controller.logs() },
    );
    expect(lease.spec?.holderIdentity).toMatch(new RegExp(`^${podName}-`));

    const custom = kubeConfig().makeApiClient(CustomObjectsApi);
    const G = { group: 'argoproj.io', version: 'v1alpha1', namespace: ns, plural: 'eventbus' };
    await custom.createNamespacedCustomObject({
      ...G,
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'EventBus',
        metadata: { name: 'default' },
        spec: { jetstreamExotic: { url: natsUrl() } },
      },
    });
    await waitFor(
      'EventBus Ready',
      async () => {
        const o = (await custom.getNamespacedCustomObject({ ...G, name: 'default' })) as {
          status?: { conditions?: Array<{ type: string; status: string }> };
        };
        return o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      },
      { timeoutMs: 20_000, onTimeout: () => controller.logs() },
    );
    // Deleting the bus runs the controller's finalizer (stream cleanup) with the installed RBAC.
    await custom.deleteNamespacedCustomObject({ ...G, name: 'default' });
    await waitFor(
      'EventBus deleted',
      () =>
        custom.getNamespacedCustomObject({ ...G, name: 'default' }).then(
          () => false,
          () => true,
        ),
      { timeoutMs: 20_000, onTimeout: () => controller.logs() },
    );
    expect(controller.logs()).not.toMatch(/forbidden/i);
    expect(
      await controller.metricValue('sluice_controller_reconcile_total', 'kind="EventBus"'),
    ).toBeGreaterThan(0);
  } catch (err) {
    await stop();
    throw err;
  }
  return { controller, stop };
}

async function expectCrdsKept(): Promise<void> {
  const ext = kubeConfig().makeApiClient(ApiextensionsV1Api);
  for (const name of CRDS) {
    const crd = await ext.readCustomResourceDefinition({ name });
    expect(crd.metadata?.deletionTimestamp, `${name} is not being deleted`).toBeUndefined();
  }
}

/** `kubectl get -f` of a manifest: the names of the objects the API server holds. */
async function existing(manifest: string): Promise<string[]> {
  const got = await run(kubectl.path!, [...kc(), 'get', '-f', '-', '-o', 'name', '--ignore-not-found'], {
    input: manifest,
  });
  expect(got.code, got.stderr).toBe(0);
  return got.stdout.split('\n').filter(Boolean);
}

const docs = (text: string) =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);

describe.skipIf(skip)(`cluster install on the API server${skipNote(skip)}`, () => {
  it('helm install (namespaced) → controller from its Deployment → EventBus Ready → helm uninstall keeps CRDs', async () => {
    const started = Date.now();
    await installCrds(kubeconfigPath()!, kubeConfig());
    const chart = join(root, 'charts/sluice');
    const home = mkdtempSync(join(tmpdir(), 'sluice-helm-'));
    const env = { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home };
    const lint = await run(helm.path!, ['lint', '--strict', chart], { env });
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);

    const ns = uniqueName('helm-sluice');
    const release = uniqueName('sl');
    let stop: (() => Promise<void>) | undefined;
    try {
      const install = await run(
        helm.path!,
        [
          ...kc(),
          'install',
          release,
          chart,
          '--namespace',
          ns,
          '--create-namespace',
          '--set',
          'namespaced=true',
        ],
        { env },
      );
      expect(install.code, install.stderr).toBe(0);
      expect(install.stdout).toContain('STATUS: deployed');
      // NOTES.txt tells the user what to do next.
      expect(install.stdout).toContain(`rollout status deployment/${release}-sluice-controller`);
      expect(install.stdout).toContain(`only`);

      const manifest = (await run(helm.path!, [...kc(), 'get', 'manifest', release, '-n', ns], { env }))
        .stdout;
      const objects = docs(manifest);
      // The CRDs were there before (installed by the harness, owned by no release): the chart leaves
      // them alone rather than failing on, or taking over, objects it does not own.
      expect(objects.map((o) => o.kind).sort()).toEqual(
        [
          'Deployment',
          'PodDisruptionBudget',
          'Role',
          'Role',
          'Role',
          'Role',
          'RoleBinding',
          'RoleBinding',
          'RoleBinding',
          'RoleBinding',
          'Service',
          'ServiceAccount',
          'ServiceAccount',
          'ServiceAccount',
        ].sort(),
      );
      expect(await existing(manifest)).toHaveLength(objects.length);

      const d = await kubeConfig()
        .makeApiClient(AppsV1Api)
        .readNamespacedDeployment({ name: `${release}-sluice-controller`, namespace: ns });
      expect(d.spec!.template.spec!.containers[0]!.args).toContain('--namespaced');
      ({ stop } = await exerciseController(d, ns));
      await stop();
      stop = undefined;

      const uninstall = await run(helm.path!, [...kc(), 'uninstall', release, '-n', ns, '--wait'], { env });
      expect(uninstall.code, uninstall.stderr).toBe(0);
      const list = await run(helm.path!, [...kc(), 'list', '-n', ns, '-o', 'json'], { env });
      expect(JSON.parse(list.stdout)).toEqual([]);
      expect(await existing(manifest)).toEqual([]);
      await expectCrdsKept();
      console.log(`helm install path: ${Date.now() - started} ms`);
    } finally {
      await stop?.();
      await run(kubectl.path!, [...kc(), 'delete', 'namespace', ns, '--wait=false']);
    }
  }, 90_000);

  it('kubectl apply --server-side -f config/install.yaml → controller from its Deployment → EventBus Ready → kubectl delete keeps CRDs', async () => {
    const started = Date.now();
    await installCrds(kubeconfigPath()!, kubeConfig());
    // Other tests use the names config/rbac gives (namespace sluice-system, ClusterRole
    // sluice-controller, the Lease there): this copy gets its own namespace and cluster-scoped
    // names, everything else exactly as rendered.
    const ns = uniqueName('sluice-system');
    const suffix = ns.slice('sluice-system-'.length);
    const installed = docs(readFileSync(join(root, 'config/install.yaml'), 'utf8'));
    const renamed = installed.map((o): Obj => {
      if (o.kind === 'CustomResourceDefinition') return o;
      const c = structuredClone(o);
      if (c.kind === 'Namespace') c.metadata.name = ns;
      if (c.metadata.namespace === 'sluice-system') c.metadata.namespace = ns;
      if (c.kind.startsWith('Cluster')) c.metadata.name = `${c.metadata.name}-${suffix}`;
      const ref = c.roleRef as { kind: string; name: string } | undefined;
      if (ref?.kind === 'ClusterRole') ref.name = `${ref.name}-${suffix}`;
      for (const s of (c.subjects as Array<{ namespace?: string }> | undefined) ?? []) {
        if (s.namespace === 'sluice-system') s.namespace = ns;
      }
      // The controller's own cluster objects are named in its env and in its role's uninstall rules;
      // its release grant is `<ClusterRole>-release` cluster-wide and `<ServiceAccount>-release` in
      // its namespace; it reads its own Namespace.
      type Rule = { resources?: string[]; resourceNames?: string[] };
      for (const r of (c.rules as Rule[] | undefined) ?? []) {
        if (!r.resourceNames) continue;
        const cluster = r.resources?.some((x) => x.startsWith('cluster'));
        const local = r.resources?.some((x) => x === 'roles' || x === 'rolebindings');
        r.resourceNames = r.resourceNames.flatMap((n) => {
          if (n === 'sluice-system') return [ns];
          if (n === 'sluice-controller-release')
            return [...(cluster ? [`sluice-controller-${suffix}-release`] : []), ...(local ? [n] : [])];
          return cluster ? [`${n}-${suffix}`] : [n];
        });
      }
      // The admission policy narrowing the controller's RBAC `create` names all of these.
      if (c.kind.startsWith('ValidatingAdmissionPolicy')) {
        c.metadata.name = `${c.metadata.name}-${suffix}`;
        const spec = JSON.stringify(c.spec)
          .replace(
            "object.metadata.name == 'sluice-controller-release'",
            `object.metadata.name in ['sluice-controller-${suffix}-release', 'sluice-controller-release']`,
          )
          .replace(
            "n in ['sluice-controller', 'sluice-controller-release']",
            `n in ['sluice-controller-${suffix}', 'sluice-controller', 'sluice-controller-${suffix}-release', 'sluice-controller-release']`,
          )
          .replaceAll('sluice-controller-release-grant', `sluice-controller-release-grant-${suffix}`)
          .replaceAll('sluice-controller-secrets', `sluice-controller-secrets-${suffix}`)
          .replaceAll('sluice-system', ns);
        c.spec = JSON.parse(spec);
      }
      if (c.kind === 'Deployment') {
        const spec = c.spec as {
          template: { spec: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } };
        };
        for (const e of spec.template.spec.containers[0]?.env ?? []) {
          if (/^SLUICE_CLUSTER_ROLE(_BINDING)?$/.test(e.name)) e.value = `${e.value}-${suffix}`;
        }
      }
      return c;
    });
    expect(JSON.stringify(renamed.filter((o) => o.kind !== 'CustomResourceDefinition'))).not.toContain(
      '"sluice-system"',
    );
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-install-')), 'install.yaml');
    writeFileSync(file, renamed.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'));
    const withoutCrds = renamed
      .filter((o) => o.kind !== 'CustomResourceDefinition')
      .map((o) => stringify(o))
      .join('---\n');
    let stop: (() => Promise<void>) | undefined;
    try {
      const applied = await run(kubectl.path!, [
        ...kc(),
        'apply',
        '--server-side',
        '--force-conflicts',
        '-f',
        file,
      ]);
      expect(applied.code, applied.stderr).toBe(0);
      const lines = applied.stdout.split('\n').filter(Boolean);
      expect(lines).toHaveLength(renamed.length);
      for (const l of lines) expect(l).toMatch(/ serverside-applied$/);
      expect(await existing(withoutCrds)).toHaveLength(renamed.length - CRDS.length);

      const d = await kubeConfig()
        .makeApiClient(AppsV1Api)
        .readNamespacedDeployment({ name: 'sluice-controller', namespace: ns });
      expect(d.spec!.template.spec!.containers[0]!.args).not.toContain('--namespaced');
      // The installed controller watches every namespace; here it is held to its own so that it
      // leaves other tests' objects alone.
      const ex = await exerciseController(d, ns, ['--managed-namespace', ns]);
      stop = ex.stop;

      // Deleted while the controller runs, as on a cluster: the Deployment goes, the kubelet then
      // stops its pod (here: stop()), and the controller, leaving for good, releases the holds it
      // keeps on its own ClusterRole, binding and ServiceAccount (controller/uninstall.ts).
      // --wait=false: no kube-controller-manager runs here, so a Namespace stays Terminating.
      const del = await run(kubectl.path!, [...kc(), 'delete', '-f', '-', '--wait=false'], {
        input: withoutCrds,
      });
      expect(del.code, del.stderr).toBe(0);
      await stop();
      stop = undefined;
      let left: string[] = [];
      await waitFor(
        'installed objects gone',
        async () => {
          left = await existing(withoutCrds);
          return left.length === 1 && left[0] === `namespace/${ns}`;
        },
        {
          onTimeout: () =>
            `still there: ${left.join(', ')}\n${ex.controller
              .logs()
              .split('\n')
              .filter((l) => /hold|RBAC|leaving|uninstall|final/i.test(l))
              .join('\n')}`,
        },
      );
      const nsLeft = await kubeConfig().makeApiClient(CoreV1Api).readNamespace({ name: ns });
      expect(nsLeft.metadata?.deletionTimestamp, 'the Namespace is being deleted').toBeDefined();
      await expectCrdsKept();
      console.log(`install.yaml path: ${Date.now() - started} ms`);
    } finally {
      await stop?.();
      await run(kubectl.path!, [...kc(), 'delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
    }
  }, 90_000);
});
