// Releasing the RBAC holds in an order that cannot cut the controller off half-way.
//
// While it runs, the controller holds (HOLD_FINALIZER) its ClusterRole, ClusterRoleBinding and
// ServiceAccount, so `kubectl delete -f install.yaml` or `helm uninstall` leave it its rights until
// it has released its objects' finalizers. Releasing the holds is the hard part: each of the three
// is needed for the next release (the role and the binding are the grant, the ServiceAccount is the
// identity), so whichever goes first ends the controller's rights to release the others. Sending
// the three at once and hoping each is authorized before the API server's caches see the first
// deletion lost that race one time in four (the namespace then stayed Terminating for good).
//
// So when the held objects are being deleted, the controller first grants itself a *release grant*
// that does not depend on them, and releases in a fixed order:
//   1. a ClusterRole + ClusterRoleBinding `<role>-release` (get/patch on exactly the held role,
//      binding and ServiceAccount), owned by the controller's Namespace, so the garbage collector
//      removes them with it; and, when that namespace is not being deleted, a Role + RoleBinding
//      `<serviceaccount>-release` (get/patch on the ServiceAccount) owned by the ServiceAccount;
//   2. the ClusterRole hold, then the ClusterRoleBinding hold (the release grant authorizes both);
//   3. when the namespace stays, the cluster-wide release grant deletes itself (its binding goes
//      with it, by owner), so nothing outlives the uninstall;
//   4. last, the ServiceAccount hold (the identity ends with it): through the namespaced grant, or
//      through the cluster-wide one when the namespace is going (then both go with the namespace).
// A 403 right after the grant was created means the authorizer has not seen it yet: retried for a
// few seconds (a refused PATCH changes nothing). Creating the grant is bounded by RBAC's escalation
// check: the controller can only grant rights it holds itself.
import type { Logger } from '../observability/logger.ts';
import { isConflict, isNotFound, KubeApiError, type KubeHttp, type KubeObject } from './kube-http.ts';

const RBAC = '/apis/rbac.authorization.k8s.io/v1';
/** How long a 403 is taken for "the authorizer has not seen the release grant yet" (ms). */
const GRANT_SETTLE_MS = 8_000;

/** The held objects (names as in the controller's environment). */
export interface HeldRbac {
  clusterRole?: string | undefined;
  clusterRoleBinding?: string | undefined;
  serviceAccount?: { namespace: string; name: string } | undefined;
}

/** Path of each held object, in release order (role, binding, then the identity last). */
export function heldPaths(h: HeldRbac): { role?: string; binding?: string; account?: string } {
  return {
    ...(h.clusterRole ? { role: `${RBAC}/clusterroles/${encodeURIComponent(h.clusterRole)}` } : {}),
    ...(h.clusterRoleBinding
      ? { binding: `${RBAC}/clusterrolebindings/${encodeURIComponent(h.clusterRoleBinding)}` }
      : {}),
    ...(h.serviceAccount
      ? {
          account: `/api/v1/namespaces/${encodeURIComponent(h.serviceAccount.namespace)}/serviceaccounts/${encodeURIComponent(h.serviceAccount.name)}`,
        }
      : {}),
  };
}

/** Name of the cluster-wide release grant (ClusterRole and ClusterRoleBinding) for role `role`. */
export const releaseGrantName = (role: string) => `${role}-release`.slice(0, 253);

const owner = (o: KubeObject, apiVersion: string, kind: string) => ({
  apiVersion,
  kind,
  name: o.metadata?.name ?? '',
  uid: o.metadata?.uid ?? '',
});

/** What a grant object gives: its rules, or what it binds to whom (JSON, for comparison). */
const grantOf = (o: KubeObject) => {
  const g = o as KubeObject & {
    rules?: unknown;
    roleRef?: { kind?: string; name?: string };
    subjects?: Array<{ kind?: string; name?: string; namespace?: string }>;
  };
  type Rule = { apiGroups?: string[]; resources?: string[]; resourceNames?: string[]; verbs?: string[] };
  return JSON.stringify([
    (g.rules as Rule[] | undefined)?.map((r) => [r.apiGroups, r.resources, r.resourceNames, r.verbs]) ?? null,
    g.roleRef ? [g.roleRef.kind, g.roleRef.name] : null,
    g.subjects?.map((s) => [s.kind, s.name, s.namespace ?? null]) ?? null,
  ]);
};

/**
 * POSTs `body` to `path`; an object that exists already (e.g. from a departure that was cut short)
 * is read instead, and used only when it grants exactly what `body` does: a ClusterRole that grants
 * something else is deleted and made again, anything else is refused (thrown). Returns the object.
 */
async function createOrGet(http: KubeHttp, path: string, body: KubeObject): Promise<KubeObject> {
  try {
    return await http.request<KubeObject>('POST', path, { body, timeoutMs: 10_000 });
  } catch (err) {
    if (!isConflict(err) || (err as KubeApiError).reason !== 'AlreadyExists') throw err;
    const name = body.metadata?.name ?? '';
    const found = await http.request<KubeObject>('GET', `${path}/${encodeURIComponent(name)}`, {
      timeoutMs: 10_000,
    });
    if (grantOf(found) === grantOf(body)) return found;
    // Someone else's object under the grant's name (only the controller's own token could have
    // made one, and the admission policy keeps it to this shape): never adopted. The ClusterRole
    // the controller may delete and make again; anything else is refused.
    if (body.kind !== 'ClusterRole')
      throw new Error(
        `${body.kind} ${name} exists and grants something else; not using it (delete it if it is not yours)`,
      );
    await http.request('DELETE', `${path}/${encodeURIComponent(name)}`, { timeoutMs: 10_000 });
    return http.request<KubeObject>('POST', path, { body, timeoutMs: 10_000 });
  }
}

/** The rules of the release grant: get/patch on exactly the held objects. */
function releaseRules(h: HeldRbac) {
  const sa = h.serviceAccount!;
  return [
    ...(h.clusterRole
      ? [
          {
            apiGroups: ['rbac.authorization.k8s.io'],
            resources: ['clusterroles'],
            resourceNames: [h.clusterRole],
            verbs: ['get', 'patch'],
          },
        ]
      : []),
    ...(h.clusterRoleBinding
      ? [
          {
            apiGroups: ['rbac.authorization.k8s.io'],
            resources: ['clusterrolebindings'],
            resourceNames: [h.clusterRoleBinding],
            verbs: ['get', 'patch'],
          },
        ]
      : []),
    { apiGroups: [''], resources: ['serviceaccounts'], resourceNames: [sa.name], verbs: ['get', 'patch'] },
  ];
}

/** What was granted: whether the namespace is going, and how to remove the cluster-wide grant. */
export interface ReleaseGrant {
  namespaceGoing: boolean;
  /** True when the namespaced grant (for the ServiceAccount) exists. */
  namespaced: boolean;
  /** Deletes the cluster-wide grant (its binding goes with it, by owner). */
  dropClusterGrant(): Promise<void>;
}

/**
 * Creates the release grant for `h` (see the header): the cluster-wide one always, the namespaced
 * one when the ServiceAccount's namespace is not being deleted. Throws the API error when the
 * cluster-wide one cannot be created (the caller then falls back to releasing at once).
 */
export async function grantRelease(http: KubeHttp, h: HeldRbac, log: Logger): Promise<ReleaseGrant> {
  const sa = h.serviceAccount!;
  const name = releaseGrantName(h.clusterRole ?? h.clusterRoleBinding ?? sa.name);
  const ns = await http.request<KubeObject>('GET', `/api/v1/namespaces/${encodeURIComponent(sa.namespace)}`, {
    timeoutMs: 10_000,
  });
  const namespaceGoing = !!ns.metadata?.deletionTimestamp;
  const labels = { 'app.kubernetes.io/part-of': 'sluice', 'app.kubernetes.io/component': 'release-grant' };
  const role = await createOrGet(http, `${RBAC}/clusterroles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name, labels, ownerReferences: [owner(ns, 'v1', 'Namespace')] },
    rules: [
      ...releaseRules(h),
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterroles'],
        resourceNames: [name],
        verbs: ['delete'],
      },
    ],
  } as KubeObject);
  const subjects = [{ kind: 'ServiceAccount', name: sa.name, namespace: sa.namespace }];
  await createOrGet(http, `${RBAC}/clusterrolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name, labels, ownerReferences: [owner(role, 'rbac.authorization.k8s.io/v1', 'ClusterRole')] },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
    subjects,
  } as KubeObject);
  let namespaced = false;
  if (!namespaceGoing) {
    try {
      const account = await http.request<KubeObject>('GET', heldPaths(h).account!, { timeoutMs: 10_000 });
      const nsPath = `${RBAC}/namespaces/${encodeURIComponent(sa.namespace)}`;
      const local = releaseGrantName(sa.name);
      const ownedBy = [owner(account, 'v1', 'ServiceAccount')];
      await createOrGet(http, `${nsPath}/roles`, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: local, labels, ownerReferences: ownedBy },
        rules: [
          {
            apiGroups: [''],
            resources: ['serviceaccounts'],
            resourceNames: [sa.name],
            verbs: ['get', 'patch'],
          },
        ],
      } as KubeObject);
      await createOrGet(http, `${nsPath}/rolebindings`, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: local, labels, ownerReferences: ownedBy },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: local },
        subjects,
      } as KubeObject);
      namespaced = true;
    } catch (err) {
      // E.g. the namespace started terminating meanwhile: the cluster-wide grant releases the
      // ServiceAccount then, and goes with the namespace.
      log.warn(
        { err: (err as Error).message },
        'no namespaced release grant; the cluster-wide one stays until the namespace goes',
      );
    }
  }
  return {
    namespaceGoing,
    namespaced,
    dropClusterGrant: async () => {
      try {
        await http.request('DELETE', `${RBAC}/clusterroles/${encodeURIComponent(name)}`, {
          timeoutMs: 10_000,
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
  };
}

/**
 * Runs `attempt` again while it is refused with 403 for up to GRANT_SETTLE_MS (the authorizer
 * has not seen a new grant yet). Other errors are thrown at once.
 */
export async function whileForbidden<T>(attempt: () => Promise<T>, settleMs = GRANT_SETTLE_MS): Promise<T> {
  const until = Date.now() + settleMs;
  for (let wait = 50; ; wait = Math.min(wait * 2, 1_000)) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.code !== 403 || Date.now() + wait > until) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
