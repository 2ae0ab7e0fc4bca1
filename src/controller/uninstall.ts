// Leaving cleanly. Finalizers are only worth having while a controller can honour them, so:
//  - while it runs, the controller holds a finalizer on its own ClusterRole, ClusterRoleBinding and
//    ServiceAccount: `kubectl delete -f install.yaml` deletes those in the same breath as the CRDs,
//    and without them it could no longer remove the finalizers of the objects the CRD deletion is
//    removing (the CRDs then stayed Terminating for good);
//  - when the sluice CRDs are terminating, every finalizer makes one bounded attempt to clean bus
//    state and then goes (see `uninstalling` in the reconcile context);
//  - when it stops and is not coming back (its Deployment deleted or scaled to 0, its CRDs
//    terminating, its rights gone), it finalizes the objects being deleted, takes its finalizers off
//    the others (a controller that comes back puts them on again), and releases the hold in an
//    order that cannot cut its own rights half-way (release-grant.ts).
// A rolling update, a crash or a node drain keeps everything: a new pod continues.
import type { Logger } from '../observability/logger.ts';
import { isConflict, isNotFound, KubeApiError, type KubeHttp, type KubeObject } from './kube-http.ts';
import {
  BUS_FINALIZER,
  EVENTSOURCE_FINALIZER,
  type ReconcileContext,
  SENSOR_FINALIZER,
  type SluiceObject,
} from './reconcile/context.ts';
import { grantRelease, heldPaths, type ReleaseGrant, whileForbidden } from './release-grant.ts';

/** Put on the controller's ClusterRoleBinding and ServiceAccount while it runs. */
export const HOLD_FINALIZER = 'sluice.argoproj.io/controller-cleanup';
const OURS = new Set([BUS_FINALIZER, SENSOR_FINALIZER, EVENTSOURCE_FINALIZER]);

/** The controller's own objects (names from the Deployment's environment). */
export interface SelfRefs {
  /** Its Deployment: gone, being deleted or scaled to 0 means it is being uninstalled. */
  deployment?: { namespace: string; name: string };
  /** Its ClusterRole, ClusterRoleBinding and ServiceAccount, held with HOLD_FINALIZER while it runs. */
  clusterRole?: string;
  clusterRoleBinding?: string;
  serviceAccount?: { namespace: string; name: string };
}

/**
 * Reads the names from SLUICE_DEPLOYMENT, SLUICE_CLUSTER_ROLE, SLUICE_CLUSTER_ROLE_BINDING,
 * SLUICE_SERVICE_ACCOUNT and POD_NAMESPACE.
 */
export function selfRefsFromEnv(env: NodeJS.ProcessEnv = process.env): SelfRefs {
  const ns = env.POD_NAMESPACE;
  return {
    ...(ns && env.SLUICE_DEPLOYMENT ? { deployment: { namespace: ns, name: env.SLUICE_DEPLOYMENT } } : {}),
    ...(env.SLUICE_CLUSTER_ROLE ? { clusterRole: env.SLUICE_CLUSTER_ROLE } : {}),
    ...(env.SLUICE_CLUSTER_ROLE_BINDING ? { clusterRoleBinding: env.SLUICE_CLUSTER_ROLE_BINDING } : {}),
    ...(ns && env.SLUICE_SERVICE_ACCOUNT
      ? { serviceAccount: { namespace: ns, name: env.SLUICE_SERVICE_ACCOUNT } }
      : {}),
  };
}

function holdPaths(self: SelfRefs): string[] {
  const p = heldPaths(self);
  return [p.role, p.binding, p.account].filter((x): x is string => x !== undefined);
}

async function editFinalizers(
  http: KubeHttp,
  path: string,
  edit: (f: string[], obj: KubeObject) => string[] | undefined,
): Promise<void> {
  const obj = await http.request<KubeObject>('GET', path, { timeoutMs: 10_000 });
  const next = edit(obj.metadata?.finalizers ?? [], obj);
  if (!next) return;
  await http.request('PATCH', path, {
    body: { metadata: { finalizers: next, resourceVersion: obj.metadata?.resourceVersion } },
    contentType: 'application/merge-patch+json',
    timeoutMs: 10_000,
  });
}

/** Adds HOLD_FINALIZER to the controller's RBAC objects; a missing right or object is logged, not fatal. */
export async function holdRbac(http: KubeHttp, self: SelfRefs, log: Logger): Promise<void> {
  for (const path of holdPaths(self)) {
    try {
      await editFinalizers(http, path, (f, obj) =>
        f.includes(HOLD_FINALIZER) || obj.metadata?.deletionTimestamp ? undefined : [...f, HOLD_FINALIZER],
      );
    } catch (err) {
      log.warn(
        { path, err: (err as Error).message },
        'cannot hold this RBAC object while running; an uninstall that deletes it beside the CRDs may need the documented order',
      );
    }
  }
}

/** Removes HOLD_FINALIZER from the object at `path` (read first: the finalizers are replaced). */
async function release(http: KubeHttp, path: string): Promise<void> {
  try {
    await editFinalizers(http, path, (f) =>
      f.includes(HOLD_FINALIZER) ? f.filter((x) => x !== HOLD_FINALIZER) : undefined,
    );
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/**
 * Removes HOLD_FINALIZER again. When none of the held objects is being deleted, the order does
 * not matter. When they are (`kubectl delete -f install.yaml`, `helm uninstall`), each release
 * ends part of the controller's rights, so it first grants itself a release grant that does not
 * depend on them and releases the role, the binding and, last, the ServiceAccount (see
 * release-grant.ts). What still fails is logged with the command that finishes it.
 */
export async function releaseRbac(http: KubeHttp, self: SelfRefs, log: Logger): Promise<void> {
  const paths = heldPaths(self);
  const held = holdPaths(self);
  const going = await Promise.all(
    held.map((path) =>
      http.request<KubeObject>('GET', path, { timeoutMs: 10_000 }).then(
        (o) => !!o.metadata?.deletionTimestamp && (o.metadata.finalizers ?? []).includes(HOLD_FINALIZER),
        () => false,
      ),
    ),
  );
  const step = async (path: string | undefined) => {
    if (!path) return;
    try {
      await whileForbidden(() => release(http, path));
    } catch (err) {
      log.error(
        { path, err: (err as Error).message },
        `could not release the RBAC hold; finish with: kubectl patch --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]' <the object at ${path}>`,
      );
    }
  };
  if (!going.some(Boolean) || !self.serviceAccount) {
    for (const path of held) await step(path);
    return;
  }
  let grant: ReleaseGrant | undefined;
  try {
    grant = await grantRelease(http, self, log);
    log.info(
      { namespaceGoing: grant.namespaceGoing, namespacedGrant: grant.namespaced },
      'releasing the RBAC holds in order through a release grant',
    );
  } catch (err) {
    log.error(
      { err: (err as Error).message },
      'cannot grant the release of the RBAC holds; releasing them in order anyway',
    );
  }
  await step(paths.role);
  await step(paths.binding);
  if (grant && !grant.namespaceGoing && grant.namespaced) {
    try {
      await whileForbidden(() => grant.dropClusterGrant());
    } catch (err) {
      log.warn(
        { err: (err as Error).message },
        'could not delete the cluster-wide release grant; it goes with the namespace',
      );
    }
  }
  await step(paths.account);
}

/**
 * Why the controller is leaving for good, or undefined when another pod will continue (rolling
 * update, crash, drain). `crdsTerminating` is what the CRD watch saw.
 */
export async function departureReason(
  http: KubeHttp,
  self: SelfRefs,
  crdsTerminating: string | undefined,
): Promise<string | undefined> {
  if (crdsTerminating) return crdsTerminating;
  const d = self.deployment;
  if (!d) return undefined;
  try {
    const dep = await http.request<KubeObject & { spec?: { replicas?: number } }>(
      'GET',
      `/apis/apps/v1/namespaces/${d.namespace}/deployments/${d.name}`,
      { timeoutMs: 10_000 },
    );
    if (dep.metadata?.deletionTimestamp) return `Deployment ${d.namespace}/${d.name} is being deleted`;
    if (dep.spec?.replicas === 0) return `Deployment ${d.namespace}/${d.name} is scaled to 0`;
    return undefined;
  } catch (err) {
    if (isNotFound(err)) return `Deployment ${d.namespace}/${d.name} was deleted`;
    if (err instanceof KubeApiError && (err.code === 401 || err.code === 403))
      return `the controller lost its API rights (${err.code})`;
    return undefined;
  }
}

type Kind = 'EventBus' | 'EventSource' | 'Sensor';
type Cache = ReconcileContext['caches']['buses'];
interface Released {
  finalized: number;
  released: number;
  failed: string[];
}
/** Objects released at once (each finalize makes bounded attempts at its bus of up to 5 s). */
const RELEASE_CONCURRENCY = 8;

/**
 * On departure: objects being deleted are finalized (one bounded attempt at their bus state, by the
 * reconcilers in uninstall mode), the others just lose sluice's finalizers. Users before buses,
 * RELEASE_CONCURRENCY at a time. Cleaning stops at `deadlineMs`; whatever still carries a sluice
 * finalizer then just loses it (its bus state stays on the server, and is listed in `failed`), so
 * a departure with an unreachable bus and many objects still ends within the pod's grace period
 * instead of leaving CRDs and the namespace Terminating for good.
 */
export async function releaseFinalizers(
  ctx: ReconcileContext,
  finalize: (kind: Kind, key: string) => Promise<unknown>,
  deadlineMs: number,
): Promise<Released> {
  const out: Released = { finalized: 0, released: 0, failed: [] };
  const until = Date.now() + deadlineMs;
  for (const [kind, cache] of [
    ['Sensor', ctx.caches.sensors],
    ['EventSource', ctx.caches.sources],
    ['EventBus', ctx.caches.buses],
  ] as const) {
    const keys = (cache.list() as SluiceObject[])
      .filter((o) => o.metadata.finalizers?.some((f) => OURS.has(f)))
      .map((o) => `${o.metadata.namespace}/${o.metadata.name}`);
    let next = 0;
    const worker = async () => {
      while (next < keys.length)
        await releaseOne(ctx, kind, cache as Cache, keys[next++]!, finalize, until, out);
    };
    await Promise.all(Array.from({ length: Math.min(RELEASE_CONCURRENCY, keys.length) }, worker));
  }
  return out;
}

/**
 * Resolves `{done: true, err?}` once `p` settles, or `{done: false}` when `ms` pass first (`p` is
 * then left running). Never rejects.
 */
export function settledWithin(
  p: Promise<unknown> | undefined,
  ms: number,
): Promise<{ done: boolean; err?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    Promise.resolve(p).then(
      () => ({ done: true }),
      (err: unknown) => ({ done: true, err }),
    ),
    new Promise<{ done: boolean }>((r) => {
      timer = setTimeout(() => r({ done: false }), Math.max(0, ms));
    }),
  ]).finally(() => clearTimeout(timer));
}

/** One object of releaseFinalizers: finalize it while there is time, then take off what is left. */
async function releaseOne(
  ctx: ReconcileContext,
  kind: Kind,
  cache: Cache,
  key: string,
  finalize: (kind: Kind, key: string) => Promise<unknown>,
  until: number,
  out: Released,
): Promise<void> {
  const deleting = !!cache.get(key)?.metadata.deletionTimestamp;
  let cleaned = false;
  if (deleting) {
    const r =
      Date.now() < until ? await settledWithin(finalize(kind, key), until - Date.now()) : { done: false };
    if (!r.done) out.failed.push(`${kind}/${key}: out of time; its bus state stays on the server`);
    else if (r.err) out.failed.push(`${kind}/${key}: ${(r.err as Error).message}; its bus state may stay`);
    else cleaned = true;
  }
  // A 409 means the cache is a step behind the object (e.g. the finalize just removed the
  // finalizer, or the CRDs are going and the watch is gone): read it from the API server.
  let cur = cache.get(key) as SluiceObject | undefined;
  for (let attempt = 1; ; attempt++) {
    if (!cur?.metadata.finalizers?.some((f) => OURS.has(f))) {
      if (cleaned) out.finalized++;
      return;
    }
    try {
      await ctx.applier.setFinalizers(
        cur,
        (cur.metadata.finalizers ?? []).filter((f) => !OURS.has(f)),
      );
      if (cleaned) out.finalized++;
      else out.released++;
      return;
    } catch (err) {
      if (isNotFound(err)) return;
      if (isConflict(err) && attempt < 5) {
        try {
          cur = await ctx.applier.read<SluiceObject>(cur);
        } catch (readErr) {
          if (isNotFound(readErr)) return;
          out.failed.push(`${kind}/${key}: ${(readErr as Error).message}`);
          return;
        }
        continue;
      }
      out.failed.push(`${kind}/${key}: ${(err as Error).message}`);
      return;
    }
  }
}

/**
 * Waits until every cached object still carrying a sluice finalizer shows a deletionTimestamp, or
 * `ms` pass (the CRDs are being deleted, so the API server is about to mark them all).
 */
export async function awaitDeletionMarks(ctx: ReconcileContext, ms: number): Promise<void> {
  const until = Date.now() + ms;
  const unmarked = () =>
    [ctx.caches.sensors, ctx.caches.sources, ctx.caches.buses].some((c) =>
      (c.list() as SluiceObject[]).some(
        (o) => !o.metadata.deletionTimestamp && o.metadata.finalizers?.some((f) => OURS.has(f)),
      ),
    );
  while (unmarked() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
}

/** Metadata of the sluice CRDs as watched (label app.kubernetes.io/part-of=sluice). */
export function terminatingCrds(crds: KubeObject[]): string | undefined {
  const going = crds
    .filter((c) => c.metadata?.deletionTimestamp)
    .map((c) => c.metadata?.name ?? '')
    .sort();
  return going.length ? `CustomResourceDefinition ${going.join(', ')} is being deleted` : undefined;
}
