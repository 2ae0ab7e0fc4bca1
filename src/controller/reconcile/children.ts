// Applying a child object for its owner, with the two things server-side apply alone does not give:
//  - it never takes over an object it does not own: a child of that name controlled by another
//    object, or not made by sluice (no managed-by label: another controller's, e.g. Argo Events',
//    or a user's), is left untouched and reported as a conflict;
//  - Kubernetes Events say what changed (Created/Updated) or failed (ApplyFailed, ChildConflict).
import type { EventType } from '../../kube/events.ts';
import type { ObjectLike } from '../apply.ts';
import type { ConditionInput } from '../conditions.ts';
import type { KubeObject } from '../kube-http.ts';
import { controllerOf } from '../owners.ts';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../resources/common.ts';
import type { ReconcileContext, SluiceObject } from './context.ts';

export type ChildOutcome<T extends KubeObject = KubeObject> =
  | { ok: true; object: T }
  | { ok: false; conflict: string };

/** Records a Kubernetes Event about `obj` (no-op without a recorder). */
export function emitEvent(
  ctx: ReconcileContext,
  obj: SluiceObject,
  type: EventType,
  reason: string,
  action: string,
  note: string,
): void {
  ctx.events?.record({
    regarding: {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      name: obj.metadata.name ?? '',
      namespace: obj.metadata.namespace ?? 'default',
      ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
    },
    type,
    reason,
    action,
    note,
  });
}

/** Why `existing` is not `owner`'s to change, or undefined when it is. */
export function foreignReason(existing: KubeObject, owner: SluiceObject): string | undefined {
  const ref = controllerOf(existing);
  const what = `${existing.kind ?? 'object'} ${existing.metadata?.name ?? ''}`;
  if (ref && ref.uid !== owner.metadata.uid)
    return `${what} already exists and is controlled by ${ref.kind} ${ref.name} (uid ${ref.uid}), not by this ${owner.kind}`;
  const by = existing.metadata?.labels?.[LABEL_MANAGED_BY];
  if (by !== MANAGED_BY)
    return `${what} already exists and was not made by sluice (${LABEL_MANAGED_BY}=${by ?? '<unset>'}); delete or rename it, sluice will not overwrite it`;
  return undefined;
}

/** A sluice child whose controller is an earlier object of the same kind and name as `owner`. */
function staleOwn(existing: KubeObject, owner: SluiceObject): boolean {
  const ref = controllerOf(existing);
  return (
    existing.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY &&
    !!ref &&
    ref.uid !== owner.metadata.uid &&
    ref.kind === owner.kind &&
    ref.name === owner.metadata.name
  );
}

const childKey = (o: ObjectLike) => `${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`;
/** What changes when the object's content does: its generation where it has one (status writes leave it). */
const versionOf = (o: KubeObject | undefined) =>
  o?.metadata?.generation !== undefined ? `g${o.metadata.generation}` : o?.metadata?.resourceVersion;

/**
 * Server-side applies `child` for `owner` unless an object of that name belongs to someone else.
 * Throws what the apply throws (after a Warning event).
 */
export async function applyChild<T extends KubeObject = KubeObject>(
  ctx: ReconcileContext,
  owner: SluiceObject,
  child: ObjectLike & KubeObject,
  opts: {
    /** Called when the apply fails: true when it fixed the cause and the apply should be tried once more. */
    retryAfter?: (err: unknown) => Promise<boolean>;
  } = {},
): Promise<ChildOutcome<T>> {
  const key = childKey(child);
  const cached = ctx.caches.children
    ?.get(child.kind ?? '')
    ?.get(`${child.metadata?.namespace}/${child.metadata?.name}`);
  const mine = (o: KubeObject | undefined) => !!o && foreignReason(o, owner) === undefined;
  let existing = mine(cached) ? cached : await ctx.applier.get(child);
  if (existing && staleOwn(existing, owner)) {
    // Made by sluice for an earlier object of this name (deleted and created again before the
    // garbage collector removed it): it is ours to replace.
    await ctx.applier.delete(child);
    forgetChild(ctx, child);
    existing = undefined;
  }
  const conflict = existing && foreignReason(existing, owner);
  if (conflict) {
    emitEvent(ctx, owner, 'Warning', 'ChildConflict', 'Apply', conflict);
    return { ok: false, conflict };
  }
  let applied: T;
  try {
    try {
      applied = await ctx.applier.apply<T>(child);
    } catch (err) {
      if (!(await opts.retryAfter?.(err))) throw err;
      applied = await ctx.applier.apply<T>(child);
    }
  } catch (err) {
    emitEvent(
      ctx,
      owner,
      'Warning',
      'ApplyFailed',
      'Apply',
      `${child.kind} ${child.metadata?.name}: ${(err as Error).message}`,
    );
    throw err;
  }
  const before = ctx.appliedVersions?.get(key) ?? versionOf(existing);
  const after = versionOf(applied);
  if (after) ctx.appliedVersions?.set(key, after);
  if (!existing)
    emitEvent(ctx, owner, 'Normal', 'Created', 'Apply', `created ${child.kind} ${child.metadata?.name}`);
  else if (before && after && before !== after)
    emitEvent(ctx, owner, 'Normal', 'Updated', 'Apply', `updated ${child.kind} ${child.metadata?.name}`);
  return { ok: true, object: applied };
}

/** Forgets what was applied under `child`'s name (after deleting it). */
export function forgetChild(ctx: ReconcileContext, child: ObjectLike): void {
  ctx.appliedVersions?.delete(childKey(child));
}

/**
 * Workloads another controller made for `obj` (Argo Events' Deployments and Services carry a
 * `controller` label and an ownerReference to the same object): while any is there, sluice does
 * not run its own beside it.
 */
export function foreignChildren(ctx: ReconcileContext, obj: SluiceObject): ConditionInput | undefined {
  const found: string[] = [];
  for (const cache of ctx.caches.foreign ?? [])
    for (const c of cache.list())
      if (
        c.metadata.namespace === obj.metadata.namespace &&
        c.metadata.ownerReferences?.some((r) => r.uid === obj.metadata.uid)
      )
        found.push(`${c.kind} ${c.metadata.name} (controller=${c.metadata.labels?.controller ?? '?'})`);
  if (!found.length) return undefined;
  return {
    type: 'Deployed',
    status: 'False',
    reason: 'ForeignController',
    message: `not deployed: another controller runs this ${obj.kind} (${found.sort().join(', ')}); scale Argo Events' controller to 0 and delete those objects (README: Migrating from Argo Events)`,
  };
}
