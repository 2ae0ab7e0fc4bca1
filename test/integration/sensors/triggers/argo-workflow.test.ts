// The argoWorkflow trigger against the real kube-apiserver with minimal, schema-less CRDs for
// Workflow, WorkflowTemplate and CronWorkflow (argoproj.io/v1alpha1; no workflow controller runs,
// so the tests check the objects the trigger writes, as the Argo controller would read them).
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArgoWorkflowTrigger } from '../../../../src/api/sensor.ts';
import { isConflict, KubeHttp } from '../../../../src/controller/kube-http.ts';
import {
  argoWorkflowTrigger,
  parseSubmitArgs,
  RETRIED_BY_ANNOTATION,
} from '../../../../src/sensors/triggers/argo-workflow.ts';
import { k8sTrigger } from '../../../../src/sensors/triggers/k8s.ts';
import { deterministicName, IDEMPOTENCY_ANNOTATION } from '../../../../src/sensors/triggers/kube-api.ts';
import { waitFor } from '../../../harness/proc.ts';
import { kubeConfig, kubeMissing, skipNote, uniqueName } from '../../../harness/shared.ts';
import { makeCtx, triggerError } from './ctx.ts';

const missing = kubeMissing();
const G = { group: 'argoproj.io', version: 'v1alpha1' };
const KINDS = [
  ['Workflow', 'workflows'],
  ['WorkflowTemplate', 'workflowtemplates'],
  ['CronWorkflow', 'cronworkflows'],
] as const;

interface Wf {
  metadata: {
    name: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
  };
  spec: Record<string, unknown>;
  status?: { phase?: string; nodes?: Record<string, Record<string, unknown>>; finishedAt?: string };
}

/**
 * Installs permissive CRDs for the Argo Workflows kinds (only these; the sluice kinds are
 * untouched). Raw JSON through KubeHttp: client-node's model would drop the
 * x-kubernetes-preserve-unknown-fields key.
 */
async function installWorkflowCrds(kc: KubeConfig): Promise<void> {
  const http = new KubeHttp(kc);
  const path = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  type Crd = {
    metadata: { name: string; resourceVersion?: string };
    spec: unknown;
    status?: { conditions?: Array<{ type: string; status: string }> };
  };
  for (const [kind, plural] of KINDS) {
    const body: Crd = {
      metadata: { name: `${plural}.argoproj.io` },
      spec: {
        group: 'argoproj.io',
        scope: 'Namespaced',
        names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
        versions: [
          {
            name: 'v1alpha1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    };
    try {
      await http.request('POST', path, {
        body: { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', ...body },
      });
    } catch (err) {
      if (!isConflict(err)) throw err;
      const live = await http.request<Crd>('GET', `${path}/${body.metadata.name}`);
      if (JSON.stringify(live.spec).includes('"x-kubernetes-preserve-unknown-fields":true')) continue;
      body.metadata.resourceVersion = live.metadata.resourceVersion;
      await http.request('PUT', `${path}/${body.metadata.name}`, {
        body: { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', ...body },
      });
    }
  }
  await waitFor('Argo Workflows CRDs to be served', async () => {
    for (const [, plural] of KINDS) {
      const crd = await http.request<Crd>('GET', `${path}/${plural}.argoproj.io`);
      if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return false;
    }
    const res = await http.request<{ resources: Array<{ kind: string }> }>(
      'GET',
      '/apis/argoproj.io/v1alpha1',
    );
    return KINDS.every(([kind]) => res.resources.some((r) => r.kind === kind));
  });
}

describe.skipIf(missing)(`argoWorkflow trigger${skipNote(missing)}`, () => {
  const ns = uniqueName('trig-argo');
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let core: CoreV1Api;
  const runner = argoWorkflowTrigger();
  const ctx = (o: Parameters<typeof makeCtx>[0] = {}) => makeCtx({ namespace: ns, kube: kc, ...o });
  const wf = async (name: string) =>
    (await custom.getNamespacedCustomObject({ ...G, namespace: ns, plural: 'workflows', name })) as Wf;
  const workflows = async () =>
    (
      (await custom.listNamespacedCustomObject({ ...G, namespace: ns, plural: 'workflows' })) as {
        items: Wf[];
      }
    ).items;
  const createObj = (plural: string, body: Record<string, unknown>) =>
    custom.createNamespacedCustomObject({
      ...G,
      namespace: ns,
      plural,
      body: { apiVersion: 'argoproj.io/v1alpha1', ...body },
    });
  const ref = (kind: string, name: string) => ({
    resource: { apiVersion: 'argoproj.io/v1alpha1', kind, metadata: { name } },
  });

  beforeAll(async () => {
    kc = kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    core = kc.makeApiClient(CoreV1Api);
    await installWorkflowCrds(kc);
    await core.createNamespace({ body: { metadata: { name: ns } } });
  });
  afterAll(async () => {
    await core?.deleteNamespace({ name: ns }).catch(() => {});
  });

  const source = {
    resource: {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Workflow',
      metadata: { generateName: 'print-message-' },
      spec: {
        entrypoint: 'main',
        arguments: { parameters: [{ name: 'message', value: '' }] },
        workflowTemplateRef: { name: 'print-message' },
      },
    },
  };

  it('submits the Workflow once per idempotency key, parameters and args applied', async () => {
    const spec: ArgoWorkflowTrigger = {
      operation: 'submit',
      source,
      parameters: [
        { src: { dependencyName: 'dep', dataKey: 'body' }, dest: 'spec.arguments.parameters.0.value' },
      ],
      args: ['-p', 'extra=1', '--labels', 'team=data', '--serviceaccount', 'runner'],
    };
    const c = ctx({ data: { dep: { body: 'hi there' } }, key: 'wf-submit-1' });
    const name = deterministicName('print-message-', 'wf-submit-1');
    expect((await runner.fire(spec, c)).detail).toBe(`submitted Workflow ${ns}/${name}`);
    expect((await runner.fire(spec, { ...c, attempt: 2 })).detail).toBe(
      `already submitted Workflow ${ns}/${name}`,
    );
    const all = await workflows();
    expect(all).toHaveLength(1);
    const w = all[0]!;
    expect(w.spec.arguments).toEqual({
      parameters: [
        { name: 'message', value: 'hi there' },
        { name: 'extra', value: '1' },
      ],
    });
    expect(w.spec.serviceAccountName).toBe('runner');
    expect(w.metadata.labels).toMatchObject({ team: 'data', 'events.argoproj.io/sensor': 'test-sensor' });
    expect(w.metadata.annotations?.[IDEMPOTENCY_ANNOTATION]).toBe('wf-submit-1');
  });

  it('submits from a WorkflowTemplate and from a CronWorkflow', async () => {
    await createObj('workflowtemplates', {
      kind: 'WorkflowTemplate',
      metadata: { name: 'tpl' },
      spec: { entrypoint: 'main' },
    });
    await createObj('cronworkflows', {
      kind: 'CronWorkflow',
      metadata: { name: 'nightly' },
      spec: {
        schedule: '0 0 * * *',
        workflowSpec: { entrypoint: 'run', templates: [{ name: 'run' }] },
        workflowMetadata: { labels: { from: 'cron' } },
      },
    });
    const c1 = ctx({ key: 'from-tpl' });
    await runner.fire(
      { operation: 'submit-from', source: ref('WorkflowTemplate', 'tpl'), args: ['--entrypoint', 'other'] },
      c1,
    );
    await runner.fire({ operation: 'submit-from', source: ref('WorkflowTemplate', 'tpl') }, c1);
    const fromTpl = await wf(deterministicName('tpl-', 'from-tpl'));
    expect(fromTpl.spec).toEqual({ workflowTemplateRef: { name: 'tpl' }, entrypoint: 'other' });
    expect(fromTpl.metadata.labels?.['workflows.argoproj.io/workflow-template']).toBe('tpl');

    await runner.fire(
      { operation: 'submit-from', source: ref('CronWorkflow', 'nightly') },
      ctx({ key: 'from-cron' }),
    );
    const fromCron = await wf(deterministicName('nightly-', 'from-cron'));
    expect(fromCron.spec).toEqual({ entrypoint: 'run', templates: [{ name: 'run' }] });
    expect(fromCron.metadata.labels).toMatchObject({
      from: 'cron',
      'workflows.argoproj.io/cron-workflow': 'nightly',
    });

    await triggerError(
      runner.fire({ operation: 'submit-from', source: ref('CronWorkflow', 'absent') }, ctx()),
      'Rejected',
    );
    await triggerError(
      runner.fire({ operation: 'submit-from', source: ref('Workflow', 'x') }, ctx()),
      'Misconfigured',
    );
    await triggerError(
      runner.fire({ operation: 'submit', source: ref('CronWorkflow', 'nightly') }, ctx()),
      'Misconfigured',
    );
  });

  it('suspends, resumes, terminates and stops by patching the Workflow', async () => {
    await createObj('workflows', {
      kind: 'Workflow',
      metadata: { name: 'running' },
      spec: { entrypoint: 'main' },
      status: {
        phase: 'Running',
        nodes: {
          'running-1': { id: 'running-1', type: 'Steps', phase: 'Running' },
          'running-2': { id: 'running-2', type: 'Suspend', phase: 'Running' },
        },
      },
    });
    const op = (operation: ArgoWorkflowTrigger['operation']) =>
      runner.fire({ operation, source: ref('Workflow', 'running') }, ctx());
    await op('suspend');
    expect((await wf('running')).spec.suspend).toBe(true);
    await op('resume');
    const resumed = await wf('running');
    expect(resumed.spec.suspend).toBeUndefined();
    expect(resumed.status?.nodes?.['running-2']).toMatchObject({ phase: 'Succeeded' });
    expect(resumed.status?.nodes?.['running-1']).toMatchObject({ phase: 'Running' });
    expect((await op('resume')).detail).toMatch(/not suspended/);
    await op('stop');
    expect((await wf('running')).spec.shutdown).toBe('Stop');
    await op('terminate');
    expect((await wf('running')).spec.shutdown).toBe('Terminate');
    await triggerError(op('retry'), 'Rejected');
    await triggerError(
      runner.fire({ operation: 'terminate', source: ref('Workflow', 'absent') }, ctx()),
      'Rejected',
    );
  });

  it('resubmits a Workflow as a new one, once per key', async () => {
    await createObj('workflows', {
      kind: 'Workflow',
      metadata: { name: 'done', labels: { 'workflows.argoproj.io/completed': 'true', app: 'x' } },
      spec: { entrypoint: 'main', shutdown: 'Stop' },
      status: { phase: 'Failed' },
    });
    const c = ctx({ key: 'resubmit-1' });
    await runner.fire({ operation: 'resubmit', source: ref('Workflow', 'done') }, c);
    await runner.fire({ operation: 'resubmit', source: ref('Workflow', 'done') }, c);
    const copies = (await workflows()).filter(
      (w) => w.metadata.labels?.['workflows.argoproj.io/resubmitted-from-workflow'] === 'done',
    );
    expect(copies).toHaveLength(1);
    expect(copies[0]!.metadata.name).toBe(deterministicName('done-', 'resubmit-1'));
    expect(copies[0]!.spec).toEqual({ entrypoint: 'main' });
    expect(copies[0]!.metadata.labels?.app).toBe('x');
    expect(copies[0]!.metadata.labels?.['workflows.argoproj.io/completed']).toBeUndefined();
    expect(copies[0]!.status).toBeUndefined();
  });

  it('retries a failed Workflow: failed pods and nodes go, group nodes and the Workflow run again', async () => {
    await createObj('workflows', {
      kind: 'Workflow',
      metadata: {
        name: 'broken',
        labels: { 'workflows.argoproj.io/completed': 'true', 'workflows.argoproj.io/phase': 'Failed' },
      },
      spec: { entrypoint: 'main' },
      status: {
        phase: 'Failed',
        finishedAt: '2026-01-01T00:00:00Z',
        message: 'child failed',
        nodes: {
          broken: { id: 'broken', type: 'Steps', phase: 'Failed', children: ['broken-ok', 'broken-bad'] },
          'broken-ok': { id: 'broken-ok', type: 'Pod', phase: 'Succeeded' },
          'broken-bad': { id: 'broken-bad', type: 'Pod', phase: 'Failed' },
        },
      },
    });
    const pod = (name: string, nodeId: string) =>
      core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: {
            name,
            labels: { 'workflows.argoproj.io/workflow': 'broken' },
            annotations: { 'workflows.argoproj.io/node-id': nodeId },
          },
          spec: { containers: [{ name: 'main', image: 'busybox' }] },
        },
      });
    await pod('broken-ok-pod', 'broken-ok');
    await pod('broken-bad-pod', 'broken-bad');
    const c = ctx({ key: 'retry-1' });
    const spec: ArgoWorkflowTrigger = { operation: 'retry', source: ref('Workflow', 'broken') };
    expect((await runner.fire(spec, c)).detail).toMatch(/1 failed pod node/);
    const w = await wf('broken');
    expect(w.status?.phase).toBe('Running');
    expect(w.status?.finishedAt).toBeUndefined();
    expect(Object.keys(w.status?.nodes ?? {}).sort()).toEqual(['broken', 'broken-ok']);
    expect(w.status?.nodes?.broken).toMatchObject({ phase: 'Running', children: ['broken-ok'] });
    expect(w.metadata.labels).toMatchObject({
      'workflows.argoproj.io/completed': 'false',
      'workflows.argoproj.io/phase': 'Running',
    });
    expect(w.metadata.annotations?.[RETRIED_BY_ANNOTATION]).toBe('retry-1');
    const pods = (await core.listNamespacedPod({ namespace: ns })).items.map((p) => p.metadata?.name);
    expect(pods).toEqual(['broken-ok-pod']);
    // The same call again is a success; another call on a running Workflow is refused.
    expect((await runner.fire(spec, { ...c, attempt: 2 })).detail).toMatch(/already retried/);
    await triggerError(runner.fire(spec, ctx({ key: 'retry-2' })), 'Rejected');
  });

  it('classifies errors: unsupported args, missing names, strategic patch of a custom resource', async () => {
    const u = await triggerError(
      runner.fire({ operation: 'submit', source, args: ['--priority', '3'] }, ctx()),
      'Unsupported',
    );
    expect(u.message).toMatch(/--priority/);
    await triggerError(
      runner.fire({ operation: 'suspend', source: ref('Workflow', 'running'), args: ['-x'] }, ctx()),
      'Unsupported',
    );
    await triggerError(
      runner.fire({ operation: 'suspend', source: { resource: { kind: 'Workflow', metadata: {} } } }, ctx()),
      'Misconfigured',
    );
    // Through the k8s trigger: the API server has no strategic merge patch for custom resources.
    const err = await triggerError(
      k8sTrigger().fire(
        {
          operation: 'patch',
          patchStrategy: 'application/strategic-merge-patch+json',
          source: ref('Workflow', 'running'),
        },
        ctx(),
      ),
      'Misconfigured',
    );
    expect(err.message).toMatch(/415/);
  });

  it('parses argo submit args (pure)', () => {
    expect(
      parseSubmitArgs([
        '--parameter=a=b=c',
        '-l',
        'x=1, y=2',
        '--generate-name',
        'g-',
        '--log',
        '-o',
        'json',
      ]),
    ).toEqual({
      parameters: [{ name: 'a', value: 'b=c' }],
      labels: { x: '1', y: '2' },
      generateName: 'g-',
      ignored: ['--log', '-o json'],
    });
    expect(() => parseSubmitArgs(['-p'])).toThrow(/needs a value/);
  });
});
