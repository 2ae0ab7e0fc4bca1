// Ownership between a custom resource and the objects made for it. A child carries exactly one
// ownerReference with `controller: true` (garbage collection deletes it with its owner, and
// blockOwnerDeletion keeps foreground deletion of the owner waiting for it); when a child changes,
// that reference leads back to the owner's work-queue key.
import type { InformerHandlers } from './informer.ts';
import type { KubeObject } from './kube-http.ts';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Identifies a kind regardless of version: `group` is '' for the core API. */
export interface GroupKind {
  group: string;
  kind: string;
  /** False for cluster-scoped owner kinds, whose key is just the name (default true). */
  namespaced?: boolean;
}

/** `argoproj.io/v1alpha1` → `argoproj.io`; `v1` → ''. */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** The controller ownerReference that makes `owner` the controller of its children. */
export function controllerRef(owner: KubeObject): OwnerReference {
  const { apiVersion, kind } = owner;
  const name = owner.metadata?.name;
  const uid = owner.metadata?.uid;
  if (!apiVersion || !kind || !name || !uid) {
    throw new Error(
      'an owner needs apiVersion, kind, metadata.name and metadata.uid (read it from the API first)',
    );
  }
  return { apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true };
}

/** The child's controller ownerReference, if it has one. */
export function controllerOf(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.controller === true);
}

/** True when `obj` is controlled by exactly this `owner` (same uid). */
export function isControlledBy(obj: KubeObject, owner: KubeObject): boolean {
  const ref = controllerOf(obj);
  return ref !== undefined && ref.uid === owner.metadata?.uid;
}

/**
 * A copy of `child`'s ownerReferences with `owner` set as controller. Other (non-controller)
 * references are kept; an existing controller reference to the same owner is refreshed. Throws
 * when a different object already controls the child, since adopting it would steal it.
 */
export function withControllerRef(child: KubeObject, owner: KubeObject): OwnerReference[] {
  const ref = controllerRef(owner);
  const existing = child.metadata?.ownerReferences ?? [];
  const current = existing.find((r) => r.controller === true);
  if (current && current.uid !== ref.uid) {
    throw new Error(
      `${child.kind ?? 'object'} ${child.metadata?.name ?? ''} is already controlled by ${current.kind} ${current.name}`,
    );
  }
  return [...existing.filter((r) => r.uid !== ref.uid), ref];
}

/**
 * The work-queue key (`namespace/name`) of the object of kind `owner` that controls `obj`, or
 * undefined when it has none of that kind. The version is ignored, like the API server's GC does,
 * so a child written under v1alpha1 still maps to its owner after a version bump.
 */
export function ownerKey(obj: KubeObject, owner: GroupKind): string | undefined {
  const ref = controllerOf(obj);
  if (!ref || ref.kind !== owner.kind || groupOf(ref.apiVersion) !== owner.group) return undefined;
  // A namespaced owner always lives in its child's namespace (the GC rejects anything else).
  const ns = owner.namespaced === false ? undefined : obj.metadata?.namespace;
  return ns ? `${ns}/${ref.name}` : ref.name;
}

/**
 * Informer handlers for a child resource that enqueue the controlling owner of kind `owner`
 * on every add/update/delete. An update that moved the child to another owner enqueues both.
 */
export function enqueueOwner<T extends KubeObject>(
  owner: GroupKind,
  enqueue: (key: string) => void,
): InformerHandlers<T> {
  const push = (obj: T) => {
    const key = ownerKey(obj, owner);
    if (key) enqueue(key);
  };
  return {
    onAdd: push,
    onUpdate(oldObj, newObj) {
      const before = ownerKey(oldObj, owner);
      const after = ownerKey(newObj, owner);
      if (before && before !== after) enqueue(before);
      if (after) enqueue(after);
    },
    onDelete: push,
  };
}
