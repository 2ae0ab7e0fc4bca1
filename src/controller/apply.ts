// The thin layer between desired objects and the API server: server-side apply of children
// (idempotent create-or-update, field ownership tracked by the server), deletes, and status
// and finalizer patches on sluice objects.
import { isNotFound, type KubeHttp, type KubeObject } from './kube-http.ts';

export const FIELD_MANAGER = 'sluice-controller';

/** REST collection of a kind the controller manages (plural, namespaced). */
const RESOURCES: Record<string, { prefix: string; plural: string }> = {
  'v1/Secret': { prefix: '/api/v1', plural: 'secrets' },
  'v1/ConfigMap': { prefix: '/api/v1', plural: 'configmaps' },
  'v1/Service': { prefix: '/api/v1', plural: 'services' },
  'apps/v1/Deployment': { prefix: '/apis/apps/v1', plural: 'deployments' },
  'apps/v1/StatefulSet': { prefix: '/apis/apps/v1', plural: 'statefulsets' },
  'policy/v1/PodDisruptionBudget': { prefix: '/apis/policy/v1', plural: 'poddisruptionbudgets' },
  'networking.k8s.io/v1/NetworkPolicy': { prefix: '/apis/networking.k8s.io/v1', plural: 'networkpolicies' },
  'argoproj.io/v1alpha1/EventBus': { prefix: '/apis/argoproj.io/v1alpha1', plural: 'eventbus' },
  'argoproj.io/v1alpha1/EventSource': { prefix: '/apis/argoproj.io/v1alpha1', plural: 'eventsources' },
  'argoproj.io/v1alpha1/Sensor': { prefix: '/apis/argoproj.io/v1alpha1', plural: 'sensors' },
};

export interface ObjectLike {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

export function objectPath(obj: ObjectLike): string {
  const r = RESOURCES[`${obj.apiVersion}/${obj.kind}`];
  if (!r) throw new Error(`the controller does not manage ${obj.apiVersion} ${obj.kind}`);
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name;
  if (!ns || !name) throw new Error(`${obj.kind} needs a name and namespace`);
  return `${r.prefix}/namespaces/${encodeURIComponent(ns)}/${r.plural}/${encodeURIComponent(name)}`;
}

export function collectionOf(apiVersion: string, kind: string): string {
  const r = RESOURCES[`${apiVersion}/${kind}`];
  if (!r) throw new Error(`the controller does not manage ${apiVersion} ${kind}`);
  return `${r.prefix}/${r.plural}`;
}

export class Applier {
  private readonly http: KubeHttp;

  constructor(http: KubeHttp) {
    this.http = http;
  }

  /** Server-side apply: creates or updates `obj` to exactly the fields we set. */
  apply<T extends KubeObject>(obj: ObjectLike): Promise<T> {
    return this.http.request<T>('PATCH', objectPath(obj), {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: FIELD_MANAGER, force: true },
      timeoutMs: 30_000,
    });
  }

  /** Deletes `obj`; a missing object is not an error. Returns whether something was deleted. */
  async delete(obj: ObjectLike): Promise<boolean> {
    try {
      await this.http.request('DELETE', objectPath(obj), {
        body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' },
        timeoutMs: 30_000,
      });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async get<T extends KubeObject>(obj: ObjectLike): Promise<T | undefined> {
    try {
      return await this.http.request<T>('GET', objectPath(obj), { timeoutMs: 30_000 });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Merge-patches `obj` (RFC 7386: null removes a field). */
  mergePatch(obj: ObjectLike, body: unknown): Promise<KubeObject> {
    return this.http.request<KubeObject>('PATCH', objectPath(obj), {
      body,
      contentType: 'application/merge-patch+json',
      timeoutMs: 30_000,
    });
  }

  /** Merge-patches the status subresource. */
  patchStatus(obj: ObjectLike, status: unknown): Promise<KubeObject> {
    return this.http.request<KubeObject>('PATCH', `${objectPath(obj)}/status`, {
      body: { status },
      contentType: 'application/merge-patch+json',
      timeoutMs: 30_000,
    });
  }

  /** Replaces metadata.finalizers, guarded by resourceVersion (409 on a concurrent change). */
  /** The object as the API server has it now (not from a cache). Throws KubeApiError (404: gone). */
  read<T extends KubeObject = KubeObject>(obj: ObjectLike): Promise<T> {
    return this.http.request<T>('GET', objectPath(obj), { timeoutMs: 10_000 });
  }

  setFinalizers(obj: ObjectLike & { metadata?: { resourceVersion?: string } }, finalizers: string[]) {
    return this.http.request<KubeObject>('PATCH', objectPath(obj), {
      body: { metadata: { finalizers, resourceVersion: obj.metadata?.resourceVersion } },
      contentType: 'application/merge-patch+json',
      timeoutMs: 30_000,
    });
  }
}
