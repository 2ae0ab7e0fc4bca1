// Uninstalling the Helm chart (cluster-wide mode) with objects present, on a dedicated control plane
// (uninstall-bed.ts): the controller runs from the Deployment `helm install` created, with that
// Deployment's args and env and its ServiceAccount's token, so the chart's RBAC and environment are
// what is tested (the adversary of issue 18 found the chart set neither: uninstall hung for good).
//  - `helm uninstall`, then `kubectl delete crd ...`: completes within 60 s;
//  - `crds.keep=false`: `helm uninstall --wait` completes within 60 s, CRDs included;
// and nothing is left of the controller's RBAC, holds or release grant.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { containerRun } from '../../harness/controller-pod.ts';
import { waitFor } from '../../harness/proc.ts';
import { run } from '../../harness/run.ts';
import { serviceAccountKubeconfig } from '../../harness/service-account.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { type SluiceProcess, startSluice } from '../../harness/sluice-process.ts';
import { findTool } from '../../harness/tools.ts';
import { LIMIT_MS, startUninstallBed, UNINSTALL_TOOLS, type UninstallBed } from './uninstall-bed.ts';

const missing =
  ([...UNINSTALL_TOOLS, 'helm'] as const).map((t) => findTool(t).missing).find(Boolean) ?? natsMissing();
const CHART = new URL('../../../charts/sluice', import.meta.url).pathname;
const CRDS = ['eventbus.argoproj.io', 'eventsources.argoproj.io', 'sensors.argoproj.io'];

describe.skipIf(missing)(`helm uninstall with objects present${skipNote(missing ?? null)}`, () => {
  let bed: UninstallBed;
  let ctl: SluiceProcess | undefined;
  const timings: string[] = [];
  const home = mkdtempSync(join(tmpdir(), 'sluice-helm-'));
  const helm = (...args: string[]) =>
    run(findTool('helm').path!, ['--kubeconfig', bed.cp.kubeconfigPath, ...args], {
      env: { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home },
    });

  /** `helm install`s release `rel` into `ns` and runs its controller Deployment's container. */
  const install = async (ns: string, ...set: string[]) => {
    const r = await helm(
      'install',
      'rel',
      CHART,
      '-n',
      ns,
      '--create-namespace',
      ...set.flatMap((s) => ['--set', s]),
    );
    expect(r.code, r.stderr).toBe(0);
    const manifest = (await helm('get', 'manifest', 'rel', '-n', ns)).stdout;
    const d = parseAllDocuments(manifest)
      .map((doc) => doc.toJS() as V1Deployment | null)
      .find((o) => o?.kind === 'Deployment')!;
    d.metadata!.namespace ??= ns;
    const spec = containerRun(d, `${d.metadata!.name}-5d8f7c9b6-q2w3e`);
    const kubeconfig = await serviceAccountKubeconfig(bed.cp.kubeConfig(), ns, spec.serviceAccount);
    ctl = await startSluice([...spec.args, '--no-leader-elect', '--image', 'sluice:test'], {
      ...spec.env,
      KUBECONFIG: kubeconfig,
    });
    return d.metadata!.name!;
  };

  /** Nothing of the controller's cluster RBAC (its role, binding or release grant) is left. */
  const rbacLeft = async (ns: string) => {
    const r = await bed.kubectl('get', 'clusterroles,clusterrolebindings', '-o', 'name');
    const local = await bed.kubectl('get', 'roles,rolebindings,serviceaccounts', '-n', ns, '-o', 'name');
    return [...r.stdout.split('\n'), ...local.stdout.split('\n')].filter((n) =>
      n.includes('rel-sluice-controller'),
    );
  };

  beforeAll(async () => {
    bed = await startUninstallBed();
  }, 120_000);
  afterAll(async () => {
    await ctl?.proc.stop();
    await bed?.stop();
    console.info(`helm uninstall timings: ${timings.join('; ')}`);
  });

  it('helm uninstall, then deleting the CRDs, completes; the objects keep their bus state', async () => {
    const deployment = await install('hsys');
    const apps = await bed.objects('happs', () => ctl?.logs() ?? '');
    const t0 = Date.now();
    const uninstall = helm('uninstall', 'rel', '-n', 'hsys');
    await bed.killWhenDeploymentGoes('hsys', deployment, ctl);
    const u = await uninstall;
    expect(u.code, u.stderr).toBe(0);
    const r = await bed.kubectl('delete', 'crd', ...CRDS, '--timeout=90s');
    const ms = Date.now() - t0;
    timings.push(`helm uninstall + CRD deletion: ${ms} ms`);
    expect(r.code, `${r.stderr}\n${ctl!.logs()}`).toBe(0);
    expect(ms).toBeLessThan(LIMIT_MS);
    // The objects were not deleted while the controller ran: their streams stay (README).
    expect(await apps.streamExists()).toBe(true);
    expect(ctl!.logs()).not.toContain('could not release the RBAC hold');
    await waitFor(
      'nothing of the controller left (garbage collector)',
      async () => !(await rbacLeft('hsys')).length,
    );
  });

  it('crds.keep=false: helm uninstall --wait completes with objects present', async () => {
    const deployment = await install('hsys2', 'crds.keep=false');
    await bed.objects('happs2', () => ctl?.logs() ?? '');
    const t0 = Date.now();
    const uninstall = helm('uninstall', 'rel', '-n', 'hsys2', '--wait', '--timeout', '90s');
    await bed.killWhenDeploymentGoes('hsys2', deployment, ctl);
    const u = await uninstall;
    const ms = Date.now() - t0;
    timings.push(`helm uninstall --wait with crds.keep=false: ${ms} ms`);
    expect(u.code, `${u.stderr}\n${ctl!.logs()}`).toBe(0);
    expect(ms).toBeLessThan(LIMIT_MS);
    const crds = await bed.kubectl('get', 'crd', '-o', 'name');
    expect(crds.stdout).not.toContain('argoproj.io');
    expect(ctl!.logs()).not.toContain('could not release the RBAC hold');
    await waitFor(
      'nothing of the controller left (garbage collector)',
      async () => !(await rbacLeft('hsys2')).length,
    );
  });
});
