// Smoke test of the shared real control plane through @kubernetes/client-node: namespace,
// ConfigMap, CustomResourceDefinition + custom object, a watch that sees changes, and optimistic
// concurrency (a stale resourceVersion gets 409).
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1ConfigMap,
  Watch,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/proc.ts';
import { kubeConfig, kubeMissing, skipNote, uniqueName } from '../harness/shared.ts';

describe.skipIf(kubeMissing())(`Kubernetes API smoke${skipNote(kubeMissing())}`, () => {
  let kc: KubeConfig;
  let core: CoreV1Api;
  const namespace = uniqueName('smoke');

  beforeAll(async () => {
    kc = kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it('creates a ConfigMap, sees it change through a watch, and rejects a stale update with 409', async () => {
    const events: Array<{ type: string; name: string; value: string | undefined }> = [];
    const watch = new Watch(kc);
    const req = await watch.watch(
      `/api/v1/namespaces/${namespace}/configmaps`,
      {},
      (type, obj: V1ConfigMap) => events.push({ type, name: obj.metadata?.name ?? '', value: obj.data?.v }),
      () => undefined,
    );
    try {
      const created = await core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: 'cm' }, data: { v: '1' } },
      });
      const staleVersion = created.metadata?.resourceVersion;
      expect(staleVersion).toBeTruthy();

      const updated = await core.replaceNamespacedConfigMap({
        name: 'cm',
        namespace,
        body: { ...created, data: { v: '2' } },
      });
      expect(updated.metadata?.resourceVersion).not.toBe(staleVersion);

      const conflict = await core
        .replaceNamespacedConfigMap({
          name: 'cm',
          namespace,
          body: { metadata: { name: 'cm', resourceVersion: staleVersion }, data: { v: 'stale' } },
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(conflict).toBeInstanceOf(ApiException);
      expect((conflict as ApiException<unknown>).code).toBe(409);

      await core.deleteNamespacedConfigMap({ name: 'cm', namespace });
      await waitFor('watch to see ADDED, MODIFIED and DELETED', () => events.length >= 3);
      expect(events.map((e) => [e.type, e.value])).toEqual([
        ['ADDED', '1'],
        ['MODIFIED', '2'],
        ['DELETED', '2'],
      ]);
    } finally {
      req.abort();
    }
  });

  it('installs a CustomResourceDefinition and serves custom objects of it', async () => {
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    const group = `${uniqueName('smoke')}.sluice.test`;
    const crdName = `widgets.${group}`;
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: crdName },
        spec: {
          group,
          scope: 'Namespaced',
          names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: {
                      type: 'object',
                      properties: { size: { type: 'integer', minimum: 1 } },
                      required: ['size'],
                    },
                  },
                },
              },
            },
          ],
        },
      },
    });
    try {
      await waitFor('CRD to be Established', async () => {
        const crd = await ext.readCustomResourceDefinition({ name: crdName });
        return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      });
      const custom = kc.makeApiClient(CustomObjectsApi);
      const body = { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w1' }, spec: { size: 3 } };
      // The discovery cache may lag Established by a moment.
      await waitFor('custom object create to be served', () =>
        custom.createNamespacedCustomObject({ group, version: 'v1', namespace, plural: 'widgets', body }),
      );
      const got = (await custom.getNamespacedCustomObject({
        group,
        version: 'v1',
        namespace,
        plural: 'widgets',
        name: 'w1',
      })) as { spec: { size: number } };
      expect(got.spec.size).toBe(3);

      const invalid = await custom
        .createNamespacedCustomObject({
          group,
          version: 'v1',
          namespace,
          plural: 'widgets',
          body: { ...body, metadata: { name: 'w2' }, spec: { size: 0 } },
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect((invalid as ApiException<unknown>).code).toBe(422);
    } finally {
      await ext.deleteCustomResourceDefinition({ name: crdName });
    }
  });
});
