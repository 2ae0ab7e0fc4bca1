// `resource`: changes of Kubernetes objects of one group/version/resource, in one namespace or
// all, as ADD / UPDATE / DELETE events with upstream's payload {type, body, group, version,
// resource, metadata}. Label and field filters go to the API server as selectors; `prefix`,
// `createdBy` and `afterStart` are applied here. The list+watch comes from the controller's
// informer (resourceVersion resume, relist on 410). The event id is
// "<uid>:<resourceVersion>:<type>", so the ADD events a relist or a restart produces again are
// dropped by the bus inside its duplicates window. Changes are emitted one at a time, in order,
// and retried with backoff while the bus cannot take them.
import type { ResourceEventSource } from '../../api/eventsource.ts';
import { Informer } from '../../controller/informer.ts';
import type { KubeObject } from '../../controller/kube-http.ts';
import type { SourceAdapter } from '../adapter.ts';

type Selector = NonNullable<NonNullable<ResourceEventSource['filter']>['labels']>[number];

export class ResourceSpecError extends Error {
  readonly code = 'InvalidResourceFilter';
}

/** Label selector text for the API server (pure). */
export function labelSelector(labels: readonly Selector[] | undefined): string | undefined {
  if (!labels?.length) return undefined;
  return labels
    .map(({ key, operation, value }) => {
      switch (operation ?? '') {
        case '':
        case '=':
        case '==':
          return `${key}=${value}`;
        case '!=':
          return `${key}!=${value}`;
        case 'in':
          return `${key} in (${value})`;
        case 'notin':
          return `${key} notin (${value})`;
        case 'exists':
          return key;
        case '!':
          return `!${key}`;
        default:
          throw new ResourceSpecError(
            `label filter on "${key}": operation "${operation}" is not a label selector operation`,
          );
      }
    })
    .join(',');
}

/** Field selector text for the API server (pure); only equality and inequality exist there. */
export function fieldSelector(fields: readonly Selector[] | undefined): string | undefined {
  if (!fields?.length) return undefined;
  return fields
    .map(({ key, operation, value }) => {
      if (!operation || operation === '=' || operation === '==') return `${key}=${value}`;
      if (operation === '!=') return `${key}!=${value}`;
      throw new ResourceSpecError(
        `field filter on "${key}": the API server supports only =, == and != (got "${operation}")`,
      );
    })
    .join(',');
}

type Meta = { name?: string; uid?: string; resourceVersion?: string; creationTimestamp?: string };

export const adapter: SourceAdapter<ResourceEventSource> = {
  type: 'resource',
  exclusive: true,
  async start(ctx) {
    const spec = ctx.spec;
    const started = Date.now();
    const group = spec.group ?? '';
    const path = group
      ? `/apis/${group}/${spec.version}/${spec.resource}`
      : `/api/${spec.version}/${spec.resource}`;
    const labels = labelSelector(spec.filter?.labels);
    const fields = fieldSelector(spec.filter?.fields);
    const createdBy = spec.filter?.createdBy ? Date.parse(spec.filter.createdBy) : undefined;
    const wanted = new Set(spec.eventTypes);
    const informer = new Informer({
      kubeConfig: ctx.kubeConfig(),
      path,
      ...(spec.namespace ? { namespace: spec.namespace } : {}),
      ...(labels ? { labelSelector: labels } : {}),
      ...(fields ? { fieldSelector: fields } : {}),
      logger: ctx.log,
    });

    const passes = (o: KubeObject): boolean => {
      const m = (o.metadata ?? {}) as Meta;
      if (spec.filter?.prefix && !(m.name ?? '').startsWith(spec.filter.prefix)) return false;
      const created = m.creationTimestamp ? Date.parse(m.creationTimestamp) : Number.NaN;
      if (createdBy !== undefined && !(created < createdBy)) return false;
      if (spec.filter?.afterStart && !(created >= Math.floor(started / 1000) * 1000)) return false;
      return true;
    };

    // One change at a time, in the order the watch saw them.
    let chain: Promise<void> = Promise.resolve();
    const stopped = new AbortController();
    const push = (type: 'ADD' | 'UPDATE' | 'DELETE', o: KubeObject) => {
      if (!wanted.has(type) || !passes(o)) return;
      const m = (o.metadata ?? {}) as Meta;
      const id = `${m.uid ?? m.name}:${m.resourceVersion ?? ''}:${type}`;
      const data = {
        type,
        body: o,
        group,
        version: spec.version,
        resource: spec.resource,
        ...(spec.metadata ? { metadata: spec.metadata } : {}),
      };
      chain = chain.then(async () => {
        for (let backoff = 500; !stopped.signal.aborted; backoff = Math.min(backoff * 2, 30_000)) {
          try {
            await ctx.emit(data, { id });
            return;
          } catch (err) {
            ctx.log.warn(
              { id, err: (err as Error).message, retryInMs: backoff },
              'resource: change not stored; retrying',
            );
            await new Promise((r) => setTimeout(r, backoff));
          }
        }
      });
    };
    informer.addEventHandler({
      onAdd: (o) => push('ADD', o),
      onUpdate: (old, o) => {
        if (old.metadata?.resourceVersion !== o.metadata?.resourceVersion) push('UPDATE', o);
      },
      onDelete: (o) => push('DELETE', o),
    });
    informer.start();
    await informer.waitForSync(60_000);
    ctx.log.info({ path, namespace: spec.namespace ?? '(all)', labels, fields }, 'resource: watching');
    return {
      async stop() {
        stopped.abort();
        await informer.stop();
        await chain;
      },
    };
  },
};
