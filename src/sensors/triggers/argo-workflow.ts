// `argoWorkflow`: Argo Workflows operations done as API calls on Workflow objects (argoproj.io/
// v1alpha1), the way the Argo server does them, instead of running the `argo` CLI:
//
// - submit: creates the Workflow in `source` (parameters applied), once per idempotency key.
// - submit-from: source names a WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow; creates
//   a Workflow that references the template (spec.workflowTemplateRef), or for a CronWorkflow a
//   copy of its spec.workflowSpec and workflowMetadata; generateName "<name>-", once per key.
// - resubmit: creates a new Workflow with the spec of the named one (generateName "<name>-",
//   label workflows.argoproj.io/resubmitted-from-workflow), once per key.
// - retry: for a Failed/Error Workflow: deletes the pods of failed pod nodes, removes those nodes,
//   sets failed group nodes and the Workflow back to Running (the workflow controller then runs
//   the failed steps again and keeps the succeeded ones). Marked with the idempotency key, so a
//   repeat of the same call is a success rather than a "not failed" rejection.
// - resume: removes spec.suspend and marks running Suspend nodes Succeeded.
// - suspend: sets spec.suspend = true.
// - terminate / stop: sets spec.shutdown to "Terminate" / "Stop".
// suspend/terminate/stop on a finished Workflow change nothing and succeed. For submit,
// submit-from and resubmit, `args` may hold the `argo submit` flags -p/--parameter, --entrypoint,
// --serviceaccount, -l/--labels, --generate-name and --name; --wait/--watch/--log/-o only shape CLI
// output and are ignored; anything else is Unsupported.
import type { ArgoWorkflowTrigger } from '../../api/sensor.ts';
import { KubeApiError } from '../../controller/kube-http.ts';
import { type KubeDoc, loadSource } from './artifact.ts';
import {
  classifyKubeError,
  createOnce,
  describeObject,
  IDEMPOTENCY_ANNOTATION,
  kubeClient,
} from './kube-api.ts';
import { type TriggerContext, TriggerError, type TriggerResult, type TriggerRunner } from './trigger.ts';

const API_VERSION = 'argoproj.io/v1alpha1';
const L = {
  completed: 'workflows.argoproj.io/completed',
  phase: 'workflows.argoproj.io/phase',
  template: 'workflows.argoproj.io/workflow-template',
  clusterTemplate: 'workflows.argoproj.io/cluster-workflow-template',
  cron: 'workflows.argoproj.io/cron-workflow',
  resubmitted: 'workflows.argoproj.io/resubmitted-from-workflow',
  workflow: 'workflows.argoproj.io/workflow',
  nodeId: 'workflows.argoproj.io/node-id',
};
/** Annotation recording which trigger call retried a Workflow. */
export const RETRIED_BY_ANNOTATION = 'sluice.argoproj.io/retried-by';

const FINISHED = new Set(['Succeeded', 'Failed', 'Error']);
const FAILED = new Set(['Failed', 'Error']);

interface WfNode {
  id?: string;
  type?: string;
  phase?: string;
  children?: string[];
  [k: string]: unknown;
}
interface Workflow extends KubeDoc {
  spec?: Record<string, unknown> & { arguments?: { parameters?: Array<{ name: string; value?: unknown }> } };
  status?: { phase?: string; nodes?: Record<string, WfNode>; [k: string]: unknown };
}

export interface SubmitArgs {
  parameters: Array<{ name: string; value: string }>;
  entrypoint?: string;
  serviceAccount?: string;
  labels: Record<string, string>;
  generateName?: string;
  name?: string;
  ignored: string[];
}

/** Reads the supported `argo submit` flags from `args` (pure). */
export function parseSubmitArgs(args: readonly string[] | undefined): SubmitArgs {
  const out: SubmitArgs = { parameters: [], labels: {}, ignored: [] };
  const list = [...(args ?? [])];
  for (let i = 0; i < list.length; i++) {
    const raw = list[i] ?? '';
    const eq = raw.startsWith('--') ? raw.indexOf('=') : -1;
    const flag = eq > 0 ? raw.slice(0, eq) : raw;
    const value = (): string => {
      if (eq > 0) return raw.slice(eq + 1);
      const v = list[++i];
      if (v === undefined)
        throw new TriggerError('Misconfigured', `argoWorkflow args: ${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '-p':
      case '--parameter': {
        const kv = value();
        const at = kv.indexOf('=');
        if (at <= 0)
          throw new TriggerError(
            'Misconfigured',
            `argoWorkflow args: ${flag} wants name=value, got ${JSON.stringify(kv)}`,
          );
        out.parameters.push({ name: kv.slice(0, at), value: kv.slice(at + 1) });
        break;
      }
      case '--entrypoint':
        out.entrypoint = value();
        break;
      case '--serviceaccount':
        out.serviceAccount = value();
        break;
      case '-l':
      case '--labels':
        for (const pair of value().split(',')) {
          const at = pair.indexOf('=');
          if (at > 0) out.labels[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
        }
        break;
      case '--generate-name':
        out.generateName = value();
        break;
      case '--name':
        out.name = value();
        break;
      case '--wait':
      case '-w':
      case '--watch':
      case '--log':
        out.ignored.push(flag);
        break;
      case '-o':
      case '--output':
        out.ignored.push(`${flag} ${value()}`);
        break;
      default:
        throw new TriggerError(
          'Unsupported',
          `argoWorkflow args: ${JSON.stringify(raw)} is not supported (sluice understands -p/--parameter, --entrypoint, --serviceaccount, -l/--labels, --generate-name, --name)`,
        );
    }
  }
  return out;
}

function applySubmitArgs(wf: Workflow, a: SubmitArgs): void {
  wf.metadata ??= {};
  wf.spec ??= {};
  const meta = wf.metadata;
  const spec = wf.spec;
  if (a.name) {
    meta.name = a.name;
    delete meta.generateName;
  } else if (a.generateName) {
    meta.generateName = a.generateName;
    delete meta.name;
  }
  if (Object.keys(a.labels).length) meta.labels = { ...(meta.labels ?? {}), ...a.labels };
  if (a.entrypoint) spec.entrypoint = a.entrypoint;
  if (a.serviceAccount) spec.serviceAccountName = a.serviceAccount;
  if (a.parameters.length) {
    spec.arguments ??= {};
    spec.arguments.parameters ??= [];
    const params = spec.arguments.parameters;
    for (const p of a.parameters) {
      const found = params.find((x) => x.name === p.name);
      if (found) found.value = p.value;
      else params.push({ name: p.name, value: p.value });
    }
  }
}

const OPS_WITH_ARGS = new Set(['submit', 'submit-from', 'resubmit']);

export function argoWorkflowTrigger(): TriggerRunner<ArgoWorkflowTrigger> {
  return {
    type: 'argoWorkflow',
    async fire(spec, ctx): Promise<TriggerResult> {
      const op = spec.operation || 'submit';
      if (spec.args?.length && !OPS_WITH_ARGS.has(op)) {
        throw new TriggerError('Unsupported', `argoWorkflow args are not supported with operation ${op}`);
      }
      const args = parseSubmitArgs(spec.args);
      if (args.ignored.length)
        ctx.log.debug(
          { trigger: ctx.triggerName, ignored: args.ignored },
          'argoWorkflow: CLI-only args ignored',
        );
      const client = kubeClient(ctx);
      let src: Workflow;
      try {
        src = ctx.applyParameters(await loadSource(spec.source, ctx), spec.parameters) as Workflow;
      } catch (err) {
        throw classifyKubeError(err, 'argoWorkflow source');
      }
      const ns = src.metadata?.namespace || ctx.namespace;
      const workflows = await client.resource(API_VERSION, 'Workflow', ctx.signal);

      const submit = async (wf: Workflow, verb: string): Promise<TriggerResult> => {
        wf.apiVersion = API_VERSION;
        wf.kind = 'Workflow';
        wf.metadata = { ...(wf.metadata ?? {}), namespace: ns };
        applySubmitArgs(wf, args);
        const res = await createOnce(client, workflows, wf, ctx);
        const name = res.object.metadata?.name;
        return { detail: `${res.existed ? 'already ' : ''}${verb} Workflow ${ns}/${name}` };
      };

      if (op === 'submit') {
        if (src.kind && src.kind !== 'Workflow') {
          throw new TriggerError(
            'Misconfigured',
            `operation submit needs a Workflow, not a ${src.kind} (use operation submit-from for templates and CronWorkflows)`,
          );
        }
        return submit(src, 'submitted');
      }

      const name = src.metadata?.name;
      if (!name) throw new TriggerError('Misconfigured', `operation ${op} needs metadata.name in the source`);

      if (op === 'submit-from') {
        const kind = src.kind ?? '';
        if (kind === 'WorkflowTemplate' || kind === 'ClusterWorkflowTemplate') {
          const cluster = kind === 'ClusterWorkflowTemplate';
          return submit(
            {
              metadata: {
                generateName: `${name}-`,
                labels: { [cluster ? L.clusterTemplate : L.template]: name },
              },
              spec: { workflowTemplateRef: { name, ...(cluster ? { clusterScope: true } : {}) } },
            },
            `submitted from ${kind} ${name}:`,
          );
        }
        if (kind === 'CronWorkflow') {
          const cronRes = await client.resource(API_VERSION, 'CronWorkflow', ctx.signal);
          let cron: Workflow | undefined;
          try {
            cron = (await client.get(cronRes, ns, name, ctx.signal)) as Workflow | undefined;
          } catch (err) {
            throw classifyKubeError(err, `read CronWorkflow ${ns}/${name}`, ctx.signal);
          }
          if (!cron) throw new TriggerError('Rejected', `CronWorkflow ${ns}/${name} does not exist`);
          const wfMeta = (cron.spec?.workflowMetadata ?? {}) as {
            labels?: Record<string, string>;
            annotations?: Record<string, string>;
          };
          return submit(
            {
              metadata: {
                generateName: `${name}-`,
                labels: { ...(wfMeta.labels ?? {}), [L.cron]: name },
                ...(wfMeta.annotations ? { annotations: { ...wfMeta.annotations } } : {}),
              },
              spec: structuredClone((cron.spec?.workflowSpec ?? {}) as Record<string, unknown>),
            },
            `submitted from CronWorkflow ${name}:`,
          );
        }
        throw new TriggerError(
          'Misconfigured',
          `operation submit-from needs a WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow, not ${JSON.stringify(kind)}`,
        );
      }

      const what = (verb: string) => `${verb} ${describeObject('Workflow', ns, name)}`;
      let wf: Workflow | undefined;
      try {
        wf = (await client.get(workflows, ns, name, ctx.signal)) as Workflow | undefined;
      } catch (err) {
        throw classifyKubeError(err, what('read'), ctx.signal);
      }
      if (!wf) throw new TriggerError('Rejected', `${what(op)}: the Workflow does not exist`);
      const phase = wf.status?.phase ?? '';
      const path = client.path(workflows, ns, name);
      const patch = async (body: unknown, verb: string) => {
        try {
          await client.request('PATCH', path, ctx.signal, {
            body,
            contentType: 'application/merge-patch+json',
          });
        } catch (err) {
          if (err instanceof KubeApiError && err.code === 409) {
            throw new TriggerError('Transient', `${what(verb)}: changed by someone else meanwhile`, {
              cause: err,
            });
          }
          throw classifyKubeError(err, what(verb), ctx.signal);
        }
      };

      switch (op) {
        case 'resubmit': {
          const labels = { ...(wf.metadata?.labels ?? {}) };
          for (const k of [L.completed, L.phase, L.resubmitted]) delete labels[k];
          const annotations = { ...(wf.metadata?.annotations ?? {}) };
          delete annotations[IDEMPOTENCY_ANNOTATION];
          delete annotations[RETRIED_BY_ANNOTATION];
          const newSpec = structuredClone(wf.spec ?? {});
          delete newSpec.shutdown;
          delete newSpec.suspend;
          return submit(
            {
              metadata: {
                generateName: `${name}-`,
                labels: { ...labels, [L.resubmitted]: name },
                annotations,
              },
              spec: newSpec,
            },
            `resubmitted ${name} as`,
          );
        }
        case 'retry': {
          if (!FAILED.has(phase)) {
            if (wf.metadata?.annotations?.[RETRIED_BY_ANNOTATION] === ctx.idempotencyKey) {
              return { detail: `${what('retry')}: already retried by this call (now ${phase || 'pending'})` };
            }
            throw new TriggerError(
              'Rejected',
              `${what('retry')}: only a Failed or Error Workflow can be retried, it is ${phase || 'pending'}`,
            );
          }
          const nodes = wf.status?.nodes ?? {};
          const removed = new Set<string>();
          const nodePatch: Record<string, unknown> = {};
          for (const [id, node] of Object.entries(nodes)) {
            if (!FAILED.has(node.phase ?? '')) continue;
            if (node.type === 'Pod') {
              removed.add(id);
              nodePatch[id] = null;
            } else {
              nodePatch[id] = { phase: 'Running', finishedAt: null, message: null };
            }
          }
          for (const [id, node] of Object.entries(nodes)) {
            if (removed.has(id) || !node.children?.some((c) => removed.has(c))) continue;
            const children = node.children.filter((c) => !removed.has(c));
            nodePatch[id] = { ...((nodePatch[id] as object | undefined) ?? {}), children };
          }
          if (removed.size) await deletePods(ctx, name, ns, removed);
          await patch(
            {
              metadata: {
                resourceVersion: wf.metadata?.resourceVersion,
                labels: { [L.completed]: 'false', [L.phase]: 'Running' },
                annotations: { [RETRIED_BY_ANNOTATION]: ctx.idempotencyKey },
              },
              spec: { shutdown: null },
              status: { phase: 'Running', finishedAt: null, message: null, nodes: nodePatch },
            },
            'retry',
          );
          return { detail: `retried Workflow ${ns}/${name} (${removed.size} failed pod node(s) reset)` };
        }
        case 'resume': {
          const nodePatch: Record<string, unknown> = {};
          const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
          for (const [id, node] of Object.entries(wf.status?.nodes ?? {})) {
            if (node.type === 'Suspend' && node.phase === 'Running')
              nodePatch[id] = { phase: 'Succeeded', finishedAt: now };
          }
          const suspended = wf.spec?.suspend === true;
          if (!suspended && !Object.keys(nodePatch).length)
            return { detail: `${what('resume')}: not suspended` };
          await patch(
            {
              spec: { suspend: null },
              ...(Object.keys(nodePatch).length ? { status: { nodes: nodePatch } } : {}),
            },
            'resume',
          );
          return { detail: `resumed Workflow ${ns}/${name}` };
        }
        case 'suspend':
        case 'terminate':
        case 'stop': {
          if (FINISHED.has(phase))
            return { detail: `${what(op)}: already finished (${phase}), nothing to do` };
          const body =
            op === 'suspend'
              ? { spec: { suspend: true } }
              : { spec: { shutdown: op === 'terminate' ? 'Terminate' : 'Stop' } };
          await patch(body, op);
          return { detail: `${op === 'stop' ? 'stopped' : `${op}ed`} Workflow ${ns}/${name}` };
        }
        default:
          throw new TriggerError('Misconfigured', `unknown argoWorkflow operation ${JSON.stringify(op)}`);
      }
    },
  };
}

/** Deletes the pods that ran the given nodes of a Workflow (gone already is fine). */
async function deletePods(
  ctx: TriggerContext,
  workflow: string,
  ns: string,
  nodeIds: ReadonlySet<string>,
): Promise<void> {
  const client = kubeClient(ctx);
  const pods = await client.resource('v1', 'Pod', ctx.signal);
  let list: { items?: KubeDoc[] };
  try {
    list = await client.request<{ items?: KubeDoc[] }>('GET', client.path(pods, ns), ctx.signal, {
      query: { labelSelector: `${L.workflow}=${workflow}` },
    });
  } catch (err) {
    throw classifyKubeError(err, `retry: listing pods of Workflow ${ns}/${workflow}`, ctx.signal);
  }
  for (const pod of list.items ?? []) {
    const id = pod.metadata?.annotations?.[L.nodeId];
    const podName = pod.metadata?.name;
    if (!podName || !id || !nodeIds.has(id)) continue;
    try {
      await client.request('DELETE', client.path(pods, ns, podName), ctx.signal);
    } catch (err) {
      if (!(err instanceof KubeApiError && err.code === 404)) {
        throw classifyKubeError(err, `retry: deleting pod ${ns}/${podName}`, ctx.signal);
      }
    }
  }
}
