// Uninstall and rollback on a dedicated control plane (it deletes CRDs, so not the shared one):
// kube-apiserver + etcd + kube-controller-manager (namespace and garbage-collector controllers),
// config/install.yaml applied with kubectl, and `sluice controller` as a process running as the
// install's ServiceAccount (a TokenRequest token), standing in for its pod. The test plays the
// kubelet's part: when the controller's Deployment is deleted or scaled to 0, the process gets
// SIGTERM. Measured: how long each uninstall path takes with objects present; checked: the bus
// streams and the Sensor's consumers are gone from NATS when the controller was alive.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOLD_FINALIZER } from '../../../src/controller/uninstall.ts';
import { startNats } from '../../harness/nats.ts';
import { waitFor } from '../../harness/proc.ts';
import { run } from '../../harness/run.ts';
import { serviceAccountKubeconfig } from '../../harness/service-account.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { type SluiceProcess, startSluice } from '../../harness/sluice-process.ts';
import { findTool } from '../../harness/tools.ts';
import { natsPid } from '../eventsources/front-door.ts';
import { LIMIT_MS, startUninstallBed, UNINSTALL_TOOLS, type UninstallBed } from './uninstall-bed.ts';

const missing = UNINSTALL_TOOLS.map((t) => findTool(t).missing).find(Boolean) ?? natsMissing();
const INSTALL = new URL('../../../config/install.yaml', import.meta.url).pathname;
const SYS = 'sluice-system';

describe.skipIf(missing)(`uninstall and rollback${skipNote(missing ?? null)}`, () => {
  let bed: UninstallBed;
  let ctl: SluiceProcess | undefined;
  const kubectl = (...args: string[]) => bed.kubectl(...args);
  const timings: string[] = [];

  const install = async () => {
    const r = await kubectl('apply', '--server-side', '-f', INSTALL);
    expect(r.code, r.stderr).toBe(0);
    await waitFor('CRDs established', async () => {
      const r = await kubectl(
        'wait',
        '--for=condition=Established',
        '--timeout=5s',
        'crd/eventbus.argoproj.io',
        'crd/eventsources.argoproj.io',
        'crd/sensors.argoproj.io',
      );
      return r.code === 0;
    });
  };

  /** `sluice controller` as the install's ServiceAccount, with the env its Deployment sets. */
  const startController = async (...extra: string[]) => {
    const saConfig = await serviceAccountKubeconfig(bed.cp.kubeConfig(), SYS, 'sluice-controller');
    ctl = await startSluice(
      [
        'controller',
        '--kubeconfig',
        saConfig,
        '--no-leader-elect',
        '--metrics-port',
        '0',
        '--image',
        'sluice:test',
        ...extra,
      ],
      {
        POD_NAMESPACE: SYS,
        SLUICE_DEPLOYMENT: 'sluice-controller',
        SLUICE_CLUSTER_ROLE: 'sluice-controller',
        SLUICE_CLUSTER_ROLE_BINDING: 'sluice-controller',
        SLUICE_SERVICE_ACCOUNT: 'sluice-controller',
      },
    );
    return ctl;
  };
  const objects = (ns: string, busUrl?: string) => bed.objects(ns, () => ctl?.logs() ?? '', busUrl);
  /** The kubelet's part: SIGTERM the controller once its Deployment is gone, going or scaled to 0. */
  const killWhenDeploymentGoes = () => bed.killWhenDeploymentGoes(SYS, 'sluice-controller', ctl);

  beforeAll(async () => {
    bed = await startUninstallBed();
  }, 120_000);
  afterAll(async () => {
    await ctl?.proc.stop();
    await bed?.stop();
    console.info(`uninstall timings: ${timings.join('; ')}`);
  });

  it('deleting a namespace with a bus, EventSource and Sensor in it completes; their bus state is removed', async () => {
    await install();
    await startController();
    const apps = await objects('apps-ns');
    expect(await apps.streamExists()).toBe(true);
    expect(await apps.buckets()).toHaveLength(3);
    const t0 = Date.now();
    const r = await kubectl('delete', 'namespace', 'apps-ns', '--timeout=90s');
    const ms = Date.now() - t0;
    timings.push(`namespace with objects: ${ms} ms`);
    expect(r.code, r.stderr + ctl!.logs()).toBe(0);
    expect(ms).toBeLessThan(LIMIT_MS);
    expect(await apps.streamExists()).toBe(false);
    expect(await apps.buckets()).toEqual([]);
  });

  // The adversary's break (issue 18, second pass, 4): with `create` on RBAC objects, a stolen
  // controller token could bind any identity to the controller's rights for good. The admission
  // policy in config/rbac leaves it its release grant only.
  it("the controller's token can create only the shape of its release grant, and change no RBAC object but its finalizers", async () => {
    const sa = await serviceAccountKubeconfig(bed.cp.kubeConfig(), SYS, 'sluice-controller');
    /** A release-grant-shaped ClusterRole with `owner` and component label `component`. */
    const grantLike = (owner: Record<string, string>, component: string) => {
      const f = join(mkdtempSync(join(tmpdir(), 'sluice-adv-')), 'role.json');
      writeFileSync(
        f,
        JSON.stringify({
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRole',
          metadata: {
            name: 'sluice-controller-release',
            labels: { 'app.kubernetes.io/part-of': 'sluice', 'app.kubernetes.io/component': component },
            ownerReferences: [owner],
          },
          rules: [
            {
              apiGroups: [''],
              resources: ['serviceaccounts'],
              resourceNames: ['sluice-controller'],
              verbs: ['get'],
            },
          ],
        }),
      );
      return f;
    };
    const tokenSecret = join(mkdtempSync(join(tmpdir(), 'sluice-adv-')), 'secret.json');
    writeFileSync(
      tokenSecret,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/service-account-token',
        metadata: {
          name: 'adv-token',
          namespace: 'kube-system',
          annotations: { 'kubernetes.io/service-account.name': 'default' },
        },
      }),
    );
    const asController = (...args: string[]) => run(findTool('kubectl').path!, ['--kubeconfig', sa, ...args]);
    const refused = [
      ['create', 'clusterrolebinding', 'adv-mallory', '--clusterrole=sluice-controller', '--user=mallory'],
      ['create', 'clusterrole', 'adv-secrets', '--verb=get,list', '--resource=secrets'],
      [
        'create',
        'rolebinding',
        'sluice-controller-release',
        '-n',
        SYS,
        '--clusterrole=sluice-controller',
        '--user=mallory',
      ],
      ['create', 'clusterrole', 'sluice-controller-release', '--verb=list', '--resource=secrets'],
      // Its own binding: patchable for the finalizer hold, not for its subjects.
      [
        'patch',
        'clusterrolebinding',
        'sluice-controller',
        '--type=json',
        '-p',
        '[{"op":"add","path":"/subjects/-","value":{"kind":"User","name":"mallory","apiGroup":"rbac.authorization.k8s.io"}}]',
      ],
      [
        'patch',
        'clusterrole',
        'sluice-controller',
        '--type=json',
        '-p',
        '[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["secrets"],"verbs":["list"]}}]',
      ],
      // Round 3: aggregating its own role into `view`, or giving it an owner the GC would follow.
      ['label', 'clusterrole', 'sluice-controller', 'rbac.authorization.k8s.io/aggregate-to-view=true'],
      [
        'patch',
        'clusterrole',
        'sluice-controller',
        '--type=merge',
        '-p',
        '{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Namespace","name":"gone","uid":"00000000-0000-0000-0000-000000000000"}]}}',
      ],
      // A release grant that would reach other objects, or is aggregated, or has no owner.
      [
        'create',
        'clusterrole',
        'sluice-controller-release',
        '--verb=get,patch',
        '--resource=deployments',
        '--resource-name=important',
      ],
      // Round 4: a grant the garbage collector cannot remove (an owner of an unknown kind), one
      // labelled to be aggregated elsewhere, a foreign finalizer that would hang the uninstall.
      [
        'create',
        '-f',
        grantLike({ apiVersion: 'adv.example/v1', kind: 'Nope', name: 'x', uid: 'x' }, 'release-grant'),
      ],
      ['create', '-f', grantLike({ apiVersion: 'v1', kind: 'Namespace', name: SYS, uid: 'x' }, 'monitoring')],
      [
        'patch',
        'clusterrole',
        'sluice-controller',
        '--type=merge',
        '-p',
        '{"metadata":{"finalizers":["adv.example/keep"]}}',
      ],
      // A token of another ServiceAccount, or a bootstrap token, minted through a Secret.
      ['create', '-f', tokenSecret],
      [
        'create',
        'secret',
        'generic',
        'bootstrap-token-adv123',
        '-n',
        'kube-system',
        '--type=bootstrap.kubernetes.io/token',
        '--from-literal=token-id=adv123',
        '--from-literal=token-secret=0123456789abcdef',
        '--from-literal=usage-bootstrap-authentication=true',
      ],
    ];
    for (const args of refused) {
      const r = await asController(...args);
      expect(r.code, `${args.join(' ')}: ${r.stdout}`).not.toBe(0);
      expect(r.stderr).toMatch(/sluice-controller-(release-grant|secrets)/);
    }
    // What it may create: the shape of its release grant. Left in place, with other rules than the
    // controller's own grant, for the uninstall below: the controller must not adopt it.
    const nsUid = (await kubectl('get', 'namespace', SYS, '-o', 'jsonpath={.metadata.uid}')).stdout;
    const squat = join(mkdtempSync(join(tmpdir(), 'sluice-squat-')), 'role.json');
    writeFileSync(
      squat,
      JSON.stringify({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: {
          name: 'sluice-controller-release',
          labels: { 'app.kubernetes.io/part-of': 'sluice', 'app.kubernetes.io/component': 'release-grant' },
          ownerReferences: [{ apiVersion: 'v1', kind: 'Namespace', name: SYS, uid: nsUid }],
        },
        rules: [
          {
            apiGroups: [''],
            resources: ['serviceaccounts'],
            resourceNames: ['sluice-controller'],
            verbs: ['get'],
          },
        ],
      }),
    );
    const ok = await asController('create', '-f', squat);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('kubectl delete -f install.yaml with objects present completes, cleaning streams while the controller lives', async () => {
    const apps = await objects('apps-a');
    expect(await apps.consumers()).not.toEqual([]);
    // The Sensor's processed set and partial matches, the EventSource's webhook request ids.
    expect(await apps.buckets()).toHaveLength(3);
    // The controller holds its ServiceAccount and binding while it runs.
    const sa = await kubectl(
      'get',
      'serviceaccount',
      'sluice-controller',
      '-n',
      SYS,
      '-o',
      'jsonpath={.metadata.finalizers}',
    );
    expect(sa.stdout).toContain(HOLD_FINALIZER);
    const t0 = Date.now();
    const deleting = kubectl('delete', '-f', INSTALL, '--timeout=90s');
    await killWhenDeploymentGoes();
    const r = await deleting;
    const ms = Date.now() - t0;
    timings.push(`kubectl delete -f install.yaml: ${ms} ms`);
    expect(r.code, `${r.stdout}${r.stderr}\n${ctl!.logs()}`).toBe(0);
    expect(ms).toBeLessThan(LIMIT_MS);
    expect((await kubectl('get', 'crd', '-o', 'name')).stdout).not.toContain('argoproj.io');
    expect(await apps.streamExists()).toBe(false);
    expect(await apps.buckets(), ctl!.logs()).toEqual([]);
    const ns = await kubectl('get', 'namespace', SYS);
    expect(ns.code).not.toBe(0);
    // The release grant the controller gave itself goes with its namespace (garbage collector).
    await waitFor(
      'the release grant to be collected',
      async () =>
        !(await kubectl('get', 'clusterroles,clusterrolebindings', '-o', 'name')).stdout.includes('-release'),
      { timeoutMs: 30_000 },
    );
    expect(ctl!.logs()).toContain('releasing the RBAC holds in order through a release grant');
    expect(ctl!.logs()).not.toContain('could not release the RBAC hold');
    await kubectl('delete', 'namespace', 'apps-a', '--wait=false');
  });

  // The adversary's break (issue 18, second pass): with the bus frozen and many objects, the
  // departing controller worked through its queue at 5 s per object and was SIGKILLed before it
  // released anything: CRDs and sluice-system Terminating for good. Now queued work is dropped,
  // cleaning has a deadline, and what is left just loses its finalizer. One worker makes the old
  // behaviour fail with few objects (5 namespaces: about 75 s of 5 s attempts).
  it('kubectl delete -f install.yaml completes with a frozen bus and many objects', async () => {
    await install();
    await startController('--workers', '1');
    const frozen = await startNats();
    const pid = natsPid(frozen.port);
    try {
      for (let i = 0; i < 5; i++) await objects(`frozen-${i}`, frozen.url);
      process.kill(pid, 'SIGSTOP');
      const t0 = Date.now();
      const deleting = kubectl('delete', '-f', INSTALL, '--timeout=90s');
      const stopMs = await killWhenDeploymentGoes();
      const r = await deleting;
      const ms = Date.now() - t0;
      timings.push(
        `kubectl delete -f install.yaml, bus frozen, 15 objects: ${ms} ms (controller stop ${stopMs} ms)`,
      );
      expect(r.code, `${r.stdout}${r.stderr}\n${ctl!.logs()}`).toBe(0);
      expect(ms).toBeLessThan(LIMIT_MS);
      // Within the pod's grace period: it was not SIGKILLed.
      expect(stopMs, ctl!.logs()).toBeLessThan(30_000);
      expect(ctl!.logs()).toContain('its bus state stays on the server');
      expect(ctl!.logs()).not.toContain('could not release the RBAC hold');
    } finally {
      process.kill(pid, 'SIGCONT');
      await frozen.stop();
      for (let i = 0; i < 5; i++) await kubectl('delete', 'namespace', `frozen-${i}`, '--wait=false');
    }
  }, 240_000);

  it('a controller started without its CRDs says why in /readyz and does not log every retry', async () => {
    await kubectl('create', 'namespace', SYS);
    // Rights as installed, CRDs not: what a restarted controller sees after a half-done uninstall.
    const rbac = await kubectl(
      'apply',
      '--server-side',
      '-f',
      new URL('../../../config/rbac/controller-role.yaml', import.meta.url).pathname,
      '-f',
      new URL('../../../config/rbac/service-account.yaml', import.meta.url).pathname,
    );
    expect(rbac.code, rbac.stderr).toBe(0);
    const p = await startController();
    const body = await waitFor('readyz to name the missing CRD', async () => {
      const res = await fetch(`http://127.0.0.1:${p.metricsPort}/readyz`);
      const text = await res.text();
      return res.status !== 200 && text.includes('CustomResourceDefinition') ? text : undefined;
    });
    expect(body).toContain('/apis/argoproj.io/v1alpha1/');
    // Let it retry for a while: the warning is logged once per resource, not once per retry.
    await new Promise((r) => setTimeout(r, 6000));
    const warns = p
      .logs()
      .split('\n')
      .filter((l) => l.includes('list failed; retrying'));
    expect(warns.length).toBeLessThanOrEqual(3);
    await p.proc.stop();
    await kubectl('delete', 'namespace', SYS, '--wait=false');
    await waitFor('sluice-system gone', async () => (await kubectl('get', 'namespace', SYS)).code !== 0, {
      timeoutMs: LIMIT_MS,
    });
  });

  it('helm-style: the controller scaled to 0 takes its finalizers off, so deleting the CRDs afterwards completes', async () => {
    await install();
    await startController();
    await objects('apps-b');
    await kubectl('scale', 'deployment', 'sluice-controller', '-n', SYS, '--replicas=0');
    await killWhenDeploymentGoes();
    const left = await kubectl(
      'get',
      'eventbus,eventsources,sensors',
      '-n',
      'apps-b',
      '-o',
      'jsonpath={.items[*].metadata.finalizers}',
    );
    expect(left.stdout).not.toContain('sluice.argoproj.io');
    const t0 = Date.now();
    const r = await kubectl(
      'delete',
      'crd',
      'eventbus.argoproj.io',
      'eventsources.argoproj.io',
      'sensors.argoproj.io',
      '--timeout=90s',
    );
    const ms = Date.now() - t0;
    timings.push(`CRDs after the controller was scaled to 0: ${ms} ms`);
    expect(r.code, r.stderr).toBe(0);
    expect(ms).toBeLessThan(LIMIT_MS);
  });
});
