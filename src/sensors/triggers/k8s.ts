// `k8s`: creates, updates, patches or deletes one Kubernetes object loaded from `source`, with
// `parameters` applied to it. The namespace defaults to the Sensor's.
//
// - create: at most once per idempotency key (see createOnce: a generateName becomes a name derived
//   from the key, and AlreadyExists for an object carrying the same key counts as success).
// - update: read, then replace with the object (carrying the live resourceVersion); created when
//   missing, as upstream does. A conflict (someone wrote in between) is Transient.
// - patch: created when missing; otherwise a merge patch (default), strategic merge patch, server
//   side apply (field manager "sluice", forced), or a JSON patch computed as the operations that
//   turn the live object into one holding every field of the given object.
// - delete: background propagation; an object already gone counts as success.
// - liveObject (update/patch): the object is read from the cluster (identified by the source's
//   apiVersion, kind, name and namespace) and the parameters are applied onto that.
// - policy.k8s: after create/update/patch, checks the object's labels with the backoff until they
//   match; running out of checks fails the call (Transient) only with errorOnBackoffTimeout.
// API answers 408/429/5xx and network errors are Transient, other 4xx are Rejected.

import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import type { StandardK8STrigger, TriggerPolicy } from '../../api/sensor.ts';
import { KubeApiError } from '../../controller/kube-http.ts';
import { retryPlan } from '../../resilience/backoff.ts';
import { type KubeDoc, loadSource } from './artifact.ts';
import {
  classifyKubeError,
  createOnce,
  describeObject,
  type KubeClient,
  kubeClient,
  type ResourceInfo,
} from './kube-api.ts';
import { type TriggerContext, TriggerError, type TriggerResult, type TriggerRunner } from './trigger.ts';

type Strategy = NonNullable<StandardK8STrigger['patchStrategy']>;
const MERGE: Strategy = 'application/merge-patch+json';
const FIELD_MANAGER = 'sluice';

export interface JsonPatchOp {
  op: 'add' | 'replace';
  path: string;
  value: unknown;
}

const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const pointer = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * JSON patch operations that make `live` hold every field of `want` (maps are merged key by key,
 * anything else is replaced); fields only in `live` stay.
 */
export function jsonPatchOps(live: unknown, want: unknown, path = ''): JsonPatchOp[] {
  if (!isPlain(want) || !isPlain(live)) {
    return isDeepStrictEqual(live, want) ? [] : [{ op: 'replace', path, value: want }];
  }
  const ops: JsonPatchOp[] = [];
  for (const [k, v] of Object.entries(want)) {
    const p = `${path}/${pointer(k)}`;
    if (!(k in live)) ops.push({ op: 'add', path: p, value: v });
    else if (isPlain(v) && isPlain(live[k])) ops.push(...jsonPatchOps(live[k], v, p));
    else if (!isDeepStrictEqual(live[k], v)) ops.push({ op: 'replace', path: p, value: v });
  }
  return ops;
}

/** Fields the server owns that must not be sent back. */
function stripServerFields(obj: KubeDoc): KubeDoc {
  if (obj.metadata) delete obj.metadata.managedFields;
  return obj;
}

/** Polls the object until it carries `labels`; false when the checks run out. */
async function waitForLabels(
  client: KubeClient,
  r: ResourceInfo,
  ns: string | undefined,
  name: string,
  k8s: NonNullable<TriggerPolicy['k8s']>,
  ctx: TriggerContext,
): Promise<boolean> {
  const want = Object.entries(k8s.labels ?? {});
  const plan = retryPlan(k8s.backoff ?? { steps: 5 });
  for (let n = 1; ; n++) {
    let obj: KubeDoc | undefined;
    try {
      obj = await client.get(r, ns, name, ctx.signal);
    } catch (err) {
      throw classifyKubeError(err, `policy.k8s: reading ${describeObject(r.kind, ns, name)}`, ctx.signal);
    }
    const labels = obj?.metadata?.labels ?? {};
    if (want.every(([k, v]) => labels[k] === v)) return true;
    if (n >= plan.attempts) return false;
    try {
      await sleep(plan.delayMs(n), undefined, { signal: ctx.signal });
    } catch (err) {
      throw classifyKubeError(err, 'policy.k8s: waiting for labels', ctx.signal);
    }
  }
}

export function k8sTrigger(): TriggerRunner<StandardK8STrigger> {
  return {
    type: 'k8s',
    async fire(spec, ctx, policy): Promise<TriggerResult> {
      const op = spec.operation || 'create';
      const client = kubeClient(ctx);
      let obj: KubeDoc;
      try {
        obj = ctx.applyParameters(await loadSource(spec.source, ctx), spec.parameters);
      } catch (err) {
        throw classifyKubeError(err, 'k8s trigger source');
      }
      const r = await client.resource(obj.apiVersion, obj.kind, ctx.signal);
      const ns = r.namespaced ? obj.metadata?.namespace || ctx.namespace : undefined;
      obj.metadata ??= {};
      if (ns) obj.metadata.namespace = ns;
      else delete obj.metadata.namespace;
      const name = obj.metadata.name;

      let live: KubeDoc | undefined;
      const read = async () => {
        if (!name)
          throw new TriggerError('Misconfigured', `operation ${op} needs metadata.name on the ${r.kind}`);
        try {
          return await client.get(r, ns, name, ctx.signal);
        } catch (err) {
          throw classifyKubeError(err, `read ${describeObject(r.kind, ns, name)}`, ctx.signal);
        }
      };

      if (spec.liveObject && (op === 'update' || op === 'patch')) {
        live = await read();
        if (!live) {
          throw new TriggerError(
            'Rejected',
            `liveObject: ${describeObject(r.kind, ns, name)} does not exist`,
          );
        }
        try {
          obj = ctx.applyParameters(stripServerFields(structuredClone(live)), spec.parameters);
        } catch (err) {
          throw classifyKubeError(err, 'k8s trigger parameters');
        }
      }

      let detail: string;
      let target = name;
      const what = (verb: string) => `${verb} ${describeObject(r.kind, ns, name)}`;
      switch (op) {
        case 'create': {
          const res = await createOnce(client, r, obj, ctx);
          target = res.object.metadata?.name;
          detail = `${res.existed ? 'already created' : 'created'} ${describeObject(r.kind, ns, target)}`;
          break;
        }
        case 'update': {
          live ??= await read();
          if (!live) {
            const res = await createOnce(client, r, obj, ctx);
            target = res.object.metadata?.name;
            detail = `created ${describeObject(r.kind, ns, target)} (update of a missing object)`;
            break;
          }
          obj.metadata ??= {};
          obj.metadata.resourceVersion = live.metadata?.resourceVersion;
          try {
            await client.request('PUT', client.path(r, ns, name), ctx.signal, {
              body: stripServerFields(obj),
            });
          } catch (err) {
            if (err instanceof KubeApiError && err.code === 409) {
              throw new TriggerError('Transient', `${what('update')}: changed by someone else meanwhile`, {
                cause: err,
              });
            }
            throw classifyKubeError(err, what('update'), ctx.signal);
          }
          detail = `updated ${describeObject(r.kind, ns, name)}`;
          break;
        }
        case 'patch': {
          const strategy = spec.patchStrategy || MERGE;
          if (strategy === 'application/apply-patch+yaml') {
            if (!name)
              throw new TriggerError(
                'Misconfigured',
                `server-side apply needs metadata.name on the ${r.kind}`,
              );
            try {
              await client.request('PATCH', client.path(r, ns, name), ctx.signal, {
                body: stripServerFields(obj),
                contentType: strategy,
                query: { fieldManager: FIELD_MANAGER, force: true },
              });
            } catch (err) {
              throw classifyKubeError(err, what('apply'), ctx.signal);
            }
            detail = `applied ${describeObject(r.kind, ns, name)}`;
            break;
          }
          live ??= await read();
          if (!live) {
            const res = await createOnce(client, r, obj, ctx);
            target = res.object.metadata?.name;
            detail = `created ${describeObject(r.kind, ns, target)} (patch of a missing object)`;
            break;
          }
          let body: unknown = stripServerFields(obj);
          if (strategy === 'application/json-patch+json') {
            const ops = jsonPatchOps(stripServerFields(structuredClone(live)), body);
            if (!ops.length) {
              detail = `${describeObject(r.kind, ns, name)} already as requested`;
              break;
            }
            body = ops;
          }
          try {
            await client.request('PATCH', client.path(r, ns, name), ctx.signal, {
              body,
              contentType: strategy,
            });
          } catch (err) {
            if (err instanceof KubeApiError && err.code === 409) {
              throw new TriggerError('Transient', `${what('patch')}: changed by someone else meanwhile`, {
                cause: err,
              });
            }
            throw classifyKubeError(err, what('patch'), ctx.signal);
          }
          detail = `patched ${describeObject(r.kind, ns, name)}`;
          break;
        }
        case 'delete': {
          if (!name)
            throw new TriggerError('Misconfigured', `operation delete needs metadata.name on the ${r.kind}`);
          try {
            await client.request('DELETE', client.path(r, ns, name), ctx.signal, {
              body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' },
            });
            detail = `deleted ${describeObject(r.kind, ns, name)}`;
          } catch (err) {
            if (!(err instanceof KubeApiError && err.code === 404))
              throw classifyKubeError(err, what('delete'), ctx.signal);
            detail = `${describeObject(r.kind, ns, name)} already gone`;
          }
          return { detail };
        }
        default:
          throw new TriggerError('Misconfigured', `unknown k8s operation ${JSON.stringify(op)}`);
      }

      const k8s = (policy as TriggerPolicy | undefined)?.k8s;
      if (k8s?.labels && Object.keys(k8s.labels).length && target) {
        const ok = await waitForLabels(client, r, ns, target, k8s, ctx);
        if (!ok) {
          const msg = `${describeObject(r.kind, ns, target)} did not get labels ${JSON.stringify(k8s.labels)} in time`;
          if (k8s.errorOnBackoffTimeout) throw new TriggerError('Transient', msg);
          ctx.log.warn({ trigger: ctx.triggerName }, msg);
          return { detail: `${detail}; ${msg} (not an error without errorOnBackoffTimeout)` };
        }
        detail += `; labels ${Object.keys(k8s.labels).join(',')} reached`;
      }
      return { detail };
    },
  };
}
