// Shared pieces of the desired-state builders: labels, owner references, spec hashes.
import { createHash } from 'node:crypto';
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';

export const MANAGED_BY = 'sluice';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_PART_OF = 'app.kubernetes.io/part-of';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
/** Hash of everything a pod is built from; a change rolls the Deployment/StatefulSet. */
export const ANNOTATION_SPEC_HASH = 'sluice.argoproj.io/spec-hash';
export const LABEL_OWNER_KIND = 'sluice.argoproj.io/owner-kind';
export const LABEL_OWNER_NAME = 'sluice.argoproj.io/owner-name';

/** The identity of a sluice object a builder needs. */
export interface Owner {
  apiVersion: string;
  kind: 'EventBus' | 'EventSource' | 'Sensor';
  name: string;
  namespace: string;
  uid: string;
}

export function ownerReference(owner: Owner): V1OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.name,
    uid: owner.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Labels shared by every child of `owner`; also the selector of its pods. */
export function selectorLabels(owner: Owner, component: string): Record<string, string> {
  return {
    [LABEL_NAME]: component,
    [LABEL_INSTANCE]: owner.name,
    [LABEL_OWNER_KIND]: owner.kind.toLowerCase(),
  };
}

export function childMeta(
  owner: Owner,
  name: string,
  component: string,
  extra: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
): V1ObjectMeta {
  return {
    name,
    namespace: owner.namespace,
    labels: {
      ...extra.labels,
      ...selectorLabels(owner, component),
      [LABEL_MANAGED_BY]: MANAGED_BY,
      [LABEL_PART_OF]: 'sluice',
      [LABEL_COMPONENT]: component,
      [LABEL_OWNER_NAME]: owner.name,
    },
    ...(extra.annotations && Object.keys(extra.annotations).length ? { annotations: extra.annotations } : {}),
    ownerReferences: [ownerReference(owner)],
  };
}

/** Stable hash of a JSON value (keys sorted), short enough for an annotation. */
export function specHash(value: unknown): string {
  return createHash('sha256').update(stableJson(value)).digest('hex').slice(0, 16);
}

export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Kubernetes names are at most 63 characters for labels/services; shorten with a hash if needed. */
export function dnsName(base: string, max = 63): string {
  if (base.length <= max) return base;
  const h = createHash('sha256').update(base).digest('hex').slice(0, 8);
  return `${base.slice(0, max - 9)}-${h}`;
}

type SecurityContext = Record<string, unknown>;
const caps = (sc: SecurityContext) =>
  ((sc.capabilities as { add?: unknown[] } | undefined)?.add ?? []).map((c) =>
    String(c).toUpperCase().replace(/^CAP_/, ''),
  );

/**
 * The securityContext a template gives, over sluice's `defaults`: each field the template sets
 * wins and the others keep their default, so a template that only sets `runAsUser` still drops
 * every capability and keeps a read-only root (`capabilities` merge one level down). Defaults that
 * would contradict what the template asks are left out: `runAsNonRoot` under `runAsUser: 0` (the
 * kubelet would refuse to start it), `allowPrivilegeEscalation: false` under `privileged` or an
 * added SYS_ADMIN (the API server refuses the pair). No template value: the defaults. Pure.
 */
export function withSecurityDefaults(defaults: SecurityContext, given: unknown): SecurityContext {
  if (!given || typeof given !== 'object' || Array.isArray(given)) return defaults;
  const sc = given as SecurityContext;
  const base: SecurityContext = { ...defaults };
  if (sc.runAsUser === 0 && sc.runAsNonRoot === undefined) delete base.runAsNonRoot;
  if ((sc.privileged === true || caps(sc).includes('SYS_ADMIN')) && sc.allowPrivilegeEscalation === undefined)
    delete base.allowPrivilegeEscalation;
  const merged: SecurityContext = { ...base, ...sc };
  if (base.capabilities && sc.capabilities && typeof sc.capabilities === 'object')
    merged.capabilities = { ...(base.capabilities as object), ...(sc.capabilities as object) };
  return merged;
}
