// The release grant (src/controller/release-grant.ts) against a scripted API server: an object of
// the grant's name that someone else made is never adopted when it grants something else, and one
// left by an earlier departure (the same grant) is reused. Plus whileForbidden's bounded retry.
import { describe, expect, it } from 'vitest';
import { KubeApiError, type KubeHttp, type KubeObject } from '../../../src/controller/kube-http.ts';
import { grantRelease, whileForbidden } from '../../../src/controller/release-grant.ts';
import { createLogger } from '../../../src/observability/logger.ts';

const held = {
  clusterRole: 'sluice-controller',
  clusterRoleBinding: 'sluice-controller',
  serviceAccount: { namespace: 'sluice-system', name: 'sluice-controller' },
};
const log = createLogger({ level: 'silent' });
const exists = () => new KubeApiError(409, { reason: 'AlreadyExists' } as never, 'POST');

/** An API server holding `existing` (by path) where every POST of those paths is refused 409. */
function api(existing: Record<string, KubeObject>) {
  const posted: string[] = [];
  const deleted: string[] = [];
  const http = {
    request: async (method: string, path: string, o: { body?: KubeObject } = {}) => {
      if (method === 'DELETE') {
        deleted.push(path);
        delete existing[path];
        return {};
      }
      if (path === '/api/v1/namespaces/sluice-system')
        return { metadata: { name: 'sluice-system', uid: 'ns-uid', deletionTimestamp: 'now' } };
      if (method === 'POST') {
        const full = `${path}/${o.body?.metadata?.name}`;
        if (existing[full]) throw exists();
        posted.push(full);
        return { ...o.body, metadata: { ...o.body?.metadata, uid: 'u' } };
      }
      if (method === 'GET' && existing[path]) return existing[path];
      throw new KubeApiError(404, undefined, `${method} ${path}`);
    },
  } as unknown as KubeHttp;
  return { http, posted, deleted };
}

const ROLE = '/apis/rbac.authorization.k8s.io/v1/clusterroles/sluice-controller-release';

describe('release grant', () => {
  it('never adopts a ClusterRole of its name that grants something else: deletes it and makes its own', async () => {
    const squatted = {
      metadata: { name: 'sluice-controller-release', uid: 'x' },
      rules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }],
    } as KubeObject;
    const { http, posted, deleted } = api({ [ROLE]: squatted });
    await grantRelease(http, held, log);
    expect(deleted).toEqual([ROLE]);
    expect(posted).toContain(ROLE);
  });

  it('refuses a binding of its name that binds something else', async () => {
    const BINDING = '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/sluice-controller-release';
    const squatted = {
      metadata: { name: 'sluice-controller-release', uid: 'x' },
      roleRef: { kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'User', name: 'mallory' }],
    } as KubeObject;
    const { http } = api({ [BINDING]: squatted });
    await expect(grantRelease(http, held, log)).rejects.toThrow(/grants something else/);
  });

  it('reuses the grant an earlier departure left (same rules, whatever the key order)', async () => {
    const first = api({});
    await grantRelease(first.http, held, log);
    const role = first.posted.find((p) => p.endsWith('clusterroles/sluice-controller-release'))!;
    // The API server returns rule fields in its own order.
    const { http } = api({
      [role]: {
        metadata: { name: 'sluice-controller-release', uid: 'r' },
        rules: [
          {
            verbs: ['get', 'patch'],
            apiGroups: ['rbac.authorization.k8s.io'],
            resources: ['clusterroles'],
            resourceNames: ['sluice-controller'],
          },
          {
            verbs: ['get', 'patch'],
            apiGroups: ['rbac.authorization.k8s.io'],
            resources: ['clusterrolebindings'],
            resourceNames: ['sluice-controller'],
          },
          {
            verbs: ['get', 'patch'],
            apiGroups: [''],
            resources: ['serviceaccounts'],
            resourceNames: ['sluice-controller'],
          },
          {
            verbs: ['delete'],
            apiGroups: ['rbac.authorization.k8s.io'],
            resources: ['clusterroles'],
            resourceNames: ['sluice-controller-release'],
          },
        ],
      } as KubeObject,
    });
    const g = await grantRelease(http, held, log);
    expect(g.namespaceGoing).toBe(true);
  });

  it('whileForbidden retries a 403 until the grant is seen, and not past its bound', async () => {
    let calls = 0;
    const ok = await whileForbidden(async () => {
      if (++calls < 3) throw new KubeApiError(403, undefined, 'PATCH');
      return 'done';
    }, 2_000);
    expect(ok).toBe('done');
    const t0 = Date.now();
    await expect(
      whileForbidden(async () => {
        throw new KubeApiError(403, undefined, 'PATCH');
      }, 300),
    ).rejects.toThrow(/403/);
    expect(Date.now() - t0).toBeLessThan(1_000);
    await expect(
      whileForbidden(async () => {
        throw new KubeApiError(404, undefined, 'PATCH');
      }),
    ).rejects.toThrow(/404/);
  });
});
