// Shared pieces of the informer tests: an event log, counters for the informer hooks, and the
// fresh-LIST snapshot a cache must end up equal to.
import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import type { EventOrigin, Informer, InformerHooks } from '../../../src/controller/informer.ts';

export interface Seen {
  type: 'add' | 'update' | 'delete';
  name: string;
  origin: EventOrigin;
  /** data.v of the (new) object. */
  v: string | undefined;
}

export function recordEvents(inf: Informer<V1ConfigMap>): Seen[] {
  const log: Seen[] = [];
  const name = (o: V1ConfigMap) => o.metadata?.name ?? '';
  inf.addEventHandler({
    onAdd: (o, origin) => log.push({ type: 'add', name: name(o), origin, v: o.data?.v }),
    onUpdate: (_old, o, origin) => log.push({ type: 'update', name: name(o), origin, v: o.data?.v }),
    onDelete: (o, origin) => log.push({ type: 'delete', name: name(o), origin, v: o.data?.v }),
  });
  return log;
}

export interface HookCounts {
  relists: string[];
  restarts: string[];
  hooks: InformerHooks;
}

export function countHooks(): HookCounts {
  const relists: string[] = [];
  const restarts: string[] = [];
  return {
    relists,
    restarts,
    hooks: { relist: (r) => relists.push(r), watchRestart: (r) => restarts.push(r) },
  };
}

/** name → resourceVersion, sorted, from the cache and from a fresh LIST. */
export function snapshot(items: V1ConfigMap[]): Array<[string, string]> {
  return items
    .map((c): [string, string] => [c.metadata?.name ?? '', c.metadata?.resourceVersion ?? ''])
    .sort((a, b) => a[0].localeCompare(b[0]));
}

export async function freshList(core: CoreV1Api, namespace: string): Promise<Array<[string, string]>> {
  return snapshot((await core.listNamespacedConfigMap({ namespace })).items);
}

/** Resolves once the cache matches a fresh LIST (polled; the watch may lag a moment). */
export async function cacheMatchesList(
  inf: Informer<V1ConfigMap>,
  core: CoreV1Api,
  namespace: string,
): Promise<Array<[string, string]> | false> {
  const expected = await freshList(core, namespace);
  const actual = snapshot(inf.list());
  return JSON.stringify(expected) === JSON.stringify(actual) ? expected : false;
}
