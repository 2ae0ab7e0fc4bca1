// Kubernetes access shared by the k8s and argoWorkflow triggers: API discovery (apiVersion + kind
// → resource path, namespaced or not), requests with the attempt's abort signal and a timeout,
// create-once semantics keyed by the idempotency key, and the mapping of API errors to
// TriggerError codes.
import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError, KubeHttp } from '../../controller/kube-http.ts';
import { ParameterError } from '../params/index.ts';
import type { KubeDoc } from './artifact.ts';
import { type TriggerContext, TriggerError } from './trigger.ts';

/** Annotation holding the idempotency key of the trigger call that created the object. */
export const IDEMPOTENCY_ANNOTATION = 'sluice.argoproj.io/idempotency-key';
/** Labels upstream puts on objects a trigger creates (kept for selectors written against it). */
export const SENSOR_LABEL = 'events.argoproj.io/sensor';
export const TRIGGER_LABEL = 'events.argoproj.io/trigger';

const REQUEST_TIMEOUT_MS = 30_000;
const HASH_CHARS = 10;
const MAX_NAME = 63;

export interface ResourceInfo {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

interface ApiResourceList {
  resources?: Array<{ name: string; kind: string; namespaced: boolean }>;
}

/**
 * A name for an object whose manifest only has `generateName`: the prefix plus a hash of the
 * idempotency key, so that every attempt of the same trigger call names the same object.
 */
export function deterministicName(generateName: string, key: string): string {
  const hash = createHash('sha256').update(key).digest('hex').slice(0, HASH_CHARS);
  return generateName.slice(0, MAX_NAME - HASH_CHARS) + hash;
}

const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** A TriggerError for anything thrown while talking to the API server. */
export function classifyKubeError(err: unknown, what: string, signal?: AbortSignal): TriggerError {
  if (err instanceof TriggerError) return err;
  if (err instanceof ParameterError) return new TriggerError('Rejected', err.message, { cause: err });
  if (err instanceof KubeApiError) {
    const code = err.code;
    const details = (err.status as { details?: { retryAfterSeconds?: number } } | undefined)?.details;
    const retryAfterMs = details?.retryAfterSeconds ? details.retryAfterSeconds * 1000 : undefined;
    const msg = `${what}: ${err.message}`;
    if (code === 408 || code === 429 || code >= 500 || code === 0) {
      return new TriggerError('Transient', msg, { cause: err, ...(retryAfterMs ? { retryAfterMs } : {}) });
    }
    if (code === 415) return new TriggerError('Misconfigured', msg, { cause: err });
    if (code === 401 || code === 403) {
      return new TriggerError('Rejected', `${msg} (check the Sensor's service account and RBAC)`, {
        cause: err,
      });
    }
    return new TriggerError('Rejected', msg, { cause: err });
  }
  const e = err as Error;
  if (signal?.aborted)
    return new TriggerError('Transient', `${what}: aborted (${String(signal.reason)})`, { cause: err });
  return new TriggerError('Transient', `${what}: ${e?.message ?? String(err)}`, { cause: err });
}

export class KubeClient {
  readonly http: KubeHttp;
  private readonly discovery = new Map<string, Promise<ApiResourceList>>();

  constructor(kc: KubeConfig) {
    this.http = new KubeHttp(kc);
  }

  private async resources(apiVersion: string, fresh: boolean, signal: AbortSignal): Promise<ApiResourceList> {
    let p = fresh ? undefined : this.discovery.get(apiVersion);
    if (!p) {
      const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      p = this.http.request<ApiResourceList>('GET', path, { signal, timeoutMs: REQUEST_TIMEOUT_MS });
      this.discovery.set(apiVersion, p);
      p.catch(() => this.discovery.delete(apiVersion));
    }
    return p;
  }

  /** Which resource serves `kind` in `apiVersion`; asks the server again once before giving up. */
  async resource(
    apiVersion: string | undefined,
    kind: string | undefined,
    signal: AbortSignal,
  ): Promise<ResourceInfo> {
    if (!apiVersion || !kind) {
      throw new TriggerError('Misconfigured', 'the object needs apiVersion and kind');
    }
    for (const fresh of [false, true]) {
      let list: ApiResourceList;
      try {
        list = await this.resources(apiVersion, fresh, signal);
      } catch (err) {
        if (err instanceof KubeApiError && err.code === 404) {
          throw new TriggerError(
            'Misconfigured',
            `the API server does not serve ${apiVersion} (is its CRD installed?)`,
            {
              cause: err,
            },
          );
        }
        throw classifyKubeError(err, `discovery of ${apiVersion}`, signal);
      }
      const r = list.resources?.find((x) => x.kind === kind && !x.name.includes('/'));
      if (r) return { apiVersion, kind, plural: r.name, namespaced: r.namespaced };
    }
    throw new TriggerError(
      'Misconfigured',
      `the API server has no kind ${kind} in ${apiVersion} (is its CRD installed?)`,
    );
  }

  path(r: ResourceInfo, namespace: string | undefined, name?: string): string {
    const base = r.apiVersion.includes('/') ? `/apis/${r.apiVersion}` : `/api/${r.apiVersion}`;
    const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    return `${base}${ns}/${r.plural}${name ? `/${encodeURIComponent(name)}` : ''}`;
  }

  request<T>(
    method: string,
    path: string,
    signal: AbortSignal,
    opts: { body?: unknown; contentType?: string; query?: Record<string, string | boolean> } = {},
  ): Promise<T> {
    return this.http.request<T>(method, path, { ...opts, signal, timeoutMs: REQUEST_TIMEOUT_MS });
  }

  /** GET, or undefined for 404. */
  async get(
    r: ResourceInfo,
    namespace: string | undefined,
    name: string,
    signal: AbortSignal,
  ): Promise<KubeDoc | undefined> {
    try {
      return await this.request<KubeDoc>('GET', this.path(r, namespace, name), signal);
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) return undefined;
      throw err;
    }
  }
}

const clients = new WeakMap<KubeConfig, KubeClient>();

/** One client (and discovery cache) per KubeConfig object. */
export function kubeClient(ctx: TriggerContext): KubeClient {
  let kc: KubeConfig;
  try {
    kc = ctx.kubeConfig();
  } catch (err) {
    throw new TriggerError('Misconfigured', (err as Error).message, { cause: err });
  }
  let c = clients.get(kc);
  if (!c) {
    c = new KubeClient(kc);
    clients.set(kc, c);
  }
  return c;
}

/** `ns/name` or `name`, for messages. */
export const describeObject = (kind: string | undefined, ns: string | undefined, name: string | undefined) =>
  `${kind ?? 'object'} ${ns ? `${ns}/` : ''}${name ?? '(unnamed)'}`;

/**
 * Creates `obj` at most once per idempotency key: a `generateName` becomes a name derived from the
 * key, the key is recorded in an annotation, and AlreadyExists for an object carrying the same key
 * counts as success (an earlier attempt created it).
 */
export async function createOnce(
  client: KubeClient,
  r: ResourceInfo,
  obj: KubeDoc,
  ctx: TriggerContext,
): Promise<{ object: KubeDoc; existed: boolean }> {
  obj.metadata ??= {};
  const meta = obj.metadata;
  if (!meta.name && meta.generateName) {
    meta.name = deterministicName(meta.generateName, ctx.idempotencyKey);
    delete meta.generateName;
  }
  if (!meta.name)
    throw new TriggerError('Misconfigured', `${r.kind} has neither metadata.name nor metadata.generateName`);
  meta.annotations = { ...(meta.annotations ?? {}), [IDEMPOTENCY_ANNOTATION]: ctx.idempotencyKey };
  const labels: Record<string, string> = { ...(meta.labels ?? {}) };
  if (LABEL_VALUE.test(ctx.sensorName) && ctx.sensorName.length <= 63)
    labels[SENSOR_LABEL] ??= ctx.sensorName;
  if (LABEL_VALUE.test(ctx.triggerName) && ctx.triggerName.length <= 63)
    labels[TRIGGER_LABEL] ??= ctx.triggerName;
  meta.labels = labels;
  delete meta.resourceVersion;
  const ns = r.namespaced ? meta.namespace : undefined;
  const what = `create ${describeObject(r.kind, ns, meta.name)}`;
  try {
    const created = await client.request<KubeDoc>('POST', client.path(r, ns), ctx.signal, { body: obj });
    return { object: created, existed: false };
  } catch (err) {
    if (!(err instanceof KubeApiError && err.code === 409)) throw classifyKubeError(err, what, ctx.signal);
  }
  let existing: KubeDoc | undefined;
  try {
    existing = await client.get(r, ns, meta.name, ctx.signal);
  } catch (err) {
    throw classifyKubeError(err, `${what} (reading the existing object)`, ctx.signal);
  }
  // Deleted between the 409 and the read: let the runtime try again.
  if (!existing) throw new TriggerError('Transient', `${what}: AlreadyExists, then gone when read`);
  const key = existing.metadata?.annotations?.[IDEMPOTENCY_ANNOTATION];
  if (key === ctx.idempotencyKey) return { object: existing, existed: true };
  throw new TriggerError(
    'Rejected',
    `${what}: AlreadyExists${key ? ' (created by a different trigger call)' : ' (not created by this trigger)'}`,
  );
}
