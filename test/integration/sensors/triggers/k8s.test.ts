// The k8s trigger against the real kube-apiserver: create once per idempotency key (generateName
// → a name from the key, AlreadyExists of our own object is success), update, the four patch
// strategies, liveObject, delete, sources (inline, ConfigMap, URL, file), policy.k8s label waits, and the
// classification of API errors.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StandardK8STrigger } from '../../../../src/api/sensor.ts';
import { jsonPatchOps, k8sTrigger } from '../../../../src/sensors/triggers/k8s.ts';
import { deterministicName, IDEMPOTENCY_ANNOTATION } from '../../../../src/sensors/triggers/kube-api.ts';
import { kubeConfig, kubeMissing, skipNote, uniqueName } from '../../../harness/shared.ts';
import { makeCtx, triggerError } from './ctx.ts';

const missing = kubeMissing();

describe.skipIf(missing)(`k8s trigger${skipNote(missing)}`, () => {
  const ns = uniqueName('trig-k8s');
  let kc: KubeConfig;
  let core: CoreV1Api;
  const runner = k8sTrigger();
  const ctx = (o: Parameters<typeof makeCtx>[0] = {}) => makeCtx({ namespace: ns, kube: kc, ...o });
  const cm = (name: string) => core.readNamespacedConfigMap({ name, namespace: ns });
  const cmList = async (prefix: string) =>
    (await core.listNamespacedConfigMap({ namespace: ns })).items.filter((c) =>
      c.metadata?.name?.startsWith(prefix),
    );

  beforeAll(async () => {
    kc = kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
  });
  afterAll(async () => {
    await runner.close?.();
    await core?.deleteNamespace({ name: ns }).catch(() => {});
  });

  const configMap = (
    meta: Record<string, unknown>,
    data: Record<string, string> = { greeting: 'hello' },
  ) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta,
    data,
  });

  it('creates the object once per idempotency key, with parameters applied', async () => {
    const spec: StandardK8STrigger = {
      operation: 'create',
      source: { resource: configMap({ generateName: 'hello-world-' }) },
      parameters: [{ src: { dependencyName: 'dep', dataKey: 'body.message' }, dest: 'data.greeting' }],
    };
    const c = ctx({ data: { dep: { body: { message: 'from the event' } } }, key: 'k8s-create-1' });
    const first = await runner.fire(spec, c);
    const name = deterministicName('hello-world-', 'k8s-create-1');
    expect(first.detail).toBe(`created ConfigMap ${ns}/${name}`);
    const obj = await cm(name);
    expect(obj.data).toEqual({ greeting: 'from the event' });
    expect(obj.metadata?.annotations?.[IDEMPOTENCY_ANNOTATION]).toBe('k8s-create-1');
    expect(obj.metadata?.labels).toMatchObject({
      'events.argoproj.io/sensor': 'test-sensor',
      'events.argoproj.io/trigger': 'test-trigger',
    });
    const again = await runner.fire(spec, { ...c, attempt: 2 });
    expect(again.detail).toBe(`already created ConfigMap ${ns}/${name}`);
    expect(await cmList('hello-world-')).toHaveLength(1);
    // A new trigger call (another key) creates another object.
    await runner.fire(spec, ctx({ data: { dep: { body: { message: 'x' } } }, key: 'k8s-create-2' }));
    expect(await cmList('hello-world-')).toHaveLength(2);
  });

  it('treats AlreadyExists of an object from elsewhere as a rejection', async () => {
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'taken' }, data: { a: '1' } },
    });
    const spec: StandardK8STrigger = { source: { resource: configMap({ name: 'taken' }) } };
    const err = await triggerError(runner.fire(spec, ctx()), 'Rejected');
    expect(err.message).toMatch(/AlreadyExists.*not created by this trigger/);
    expect((await cm('taken')).data).toEqual({ a: '1' });
  });

  it('loads the object from inline YAML and from a ConfigMap key', async () => {
    const inline = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-inline\ndata:\n  kind: inline\n';
    await runner.fire({ source: { inline } }, ctx());
    expect((await cm('from-inline')).data).toEqual({ kind: 'inline' });
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: { name: 'object-source' },
        data: { obj: JSON.stringify(configMap({ name: 'from-cm' }, { kind: 'cm' })) },
      },
    });
    await runner.fire({ source: { configmap: { name: 'object-source', key: 'obj' } } }, ctx());
    expect((await cm('from-cm')).data).toEqual({ kind: 'cm' });
    await triggerError(
      runner.fire({ source: { configmap: { name: 'object-source', key: 'nope' } } }, ctx()),
      'Misconfigured',
    );
    await triggerError(runner.fire({ source: { inline: 'a: [1' } }, ctx()), 'Misconfigured');
    const git = await triggerError(
      runner.fire(
        {
          source: { git: { url: 'https://example.org/r.git', cloneDirectory: '/tmp/x', filePath: 'a.yaml' } },
        },
        ctx(),
      ),
      'Unsupported',
    );
    expect(git.message).toMatch(/source\.git is not supported/);
  });

  it('loads the object from a URL and from a file', async () => {
    const yaml = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-url\ndata:\n  kind: url\n';
    const server = createServer((req, res) => {
      if (req.url === '/obj.yaml') {
        res.writeHead(200, { 'content-type': 'application/yaml' });
        res.end(yaml);
      } else if (req.url === '/busy') {
        res.writeHead(503);
        res.end();
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await runner.fire({ source: { url: { path: `${base}/obj.yaml` } } }, ctx());
      expect((await cm('from-url')).data).toEqual({ kind: 'url' });
      await triggerError(runner.fire({ source: { url: { path: `${base}/busy` } } }, ctx()), 'Transient');
      await triggerError(
        runner.fire({ source: { url: { path: `${base}/missing` } } }, ctx()),
        'Misconfigured',
      );
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
    const dir = mkdtempSync(join(tmpdir(), 'sluice-k8s-src-'));
    writeFileSync(join(dir, 'obj.json'), JSON.stringify(configMap({ name: 'from-file' }, { kind: 'file' })));
    await runner.fire({ source: { file: { path: join(dir, 'obj.json') } } }, ctx());
    expect((await cm('from-file')).data).toEqual({ kind: 'file' });
    await triggerError(
      runner.fire({ source: { file: { path: join(dir, 'absent.yaml') } } }, ctx()),
      'Misconfigured',
    );
  });

  it('updates (creating when missing) and patches with each strategy', async () => {
    const name = 'patched';
    const update: StandardK8STrigger = {
      operation: 'update',
      source: { resource: configMap({ name }, { a: '1', b: '2' }) },
    };
    expect((await runner.fire(update, ctx())).detail).toMatch(/created .* \(update of a missing object\)/);
    await runner.fire({ ...update, source: { resource: configMap({ name }, { a: 'updated' }) } }, ctx());
    expect((await cm(name)).data).toEqual({ a: 'updated' });

    const patch = (strategy: StandardK8STrigger['patchStrategy'], data: Record<string, string>) =>
      runner.fire(
        { operation: 'patch', patchStrategy: strategy, source: { resource: configMap({ name }, data) } },
        ctx(),
      );
    await patch(undefined, { merge: 'yes' });
    expect((await cm(name)).data).toEqual({ a: 'updated', merge: 'yes' });
    await patch('application/strategic-merge-patch+json', { strategic: 'yes' });
    expect((await cm(name)).data).toEqual({ a: 'updated', merge: 'yes', strategic: 'yes' });
    await patch('application/json-patch+json', { a: 'json', json: 'yes' });
    expect((await cm(name)).data).toEqual({ a: 'json', merge: 'yes', strategic: 'yes', json: 'yes' });
    expect((await patch('application/json-patch+json', { a: 'json' })).detail).toMatch(
      /already as requested/,
    );
    await patch('application/apply-patch+yaml', { applied: 'yes' });
    const after = await cm(name);
    expect(after.data).toMatchObject({ applied: 'yes', a: 'json' });
    expect(
      after.metadata?.managedFields?.some((f) => f.manager === 'sluice' && f.operation === 'Apply'),
    ).toBe(true);
  });

  it('liveObject applies the parameters onto the object as it is in the cluster', async () => {
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'live', labels: { keep: 'me' } }, data: { counter: '1', other: 'x' } },
    });
    const spec: StandardK8STrigger = {
      operation: 'update',
      liveObject: true,
      source: { resource: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'live' } } },
      parameters: [{ src: { dependencyName: 'dep', dataKey: 'n' }, dest: 'data.counter' }],
    };
    await runner.fire(spec, ctx({ data: { dep: { n: '2' } } }));
    const live = await cm('live');
    expect(live.data).toEqual({ counter: '2', other: 'x' });
    expect(live.metadata?.labels).toEqual({ keep: 'me' });
    await triggerError(
      runner.fire(
        {
          ...spec,
          source: { resource: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'absent' } } },
        },
        ctx({ data: { dep: { n: '2' } } }),
      ),
      'Rejected',
    );
  });

  it('deletes, and an object already gone is success', async () => {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'doomed' } } });
    const spec: StandardK8STrigger = {
      operation: 'delete',
      source: { resource: configMap({ name: 'doomed' }) },
    };
    expect((await runner.fire(spec, ctx())).detail).toBe(`deleted ConfigMap ${ns}/doomed`);
    await expect(cm('doomed')).rejects.toThrow();
    expect((await runner.fire(spec, ctx())).detail).toBe(`ConfigMap ${ns}/doomed already gone`);
  });

  it('policy.k8s waits for labels; running out of checks fails only with errorOnBackoffTimeout', async () => {
    const labelled: StandardK8STrigger = {
      source: { resource: configMap({ generateName: 'labelled-', labels: { phase: 'Done' } }) },
    };
    const policy = (errorOnBackoffTimeout: boolean) => ({
      k8s: { labels: { phase: 'Done' }, backoff: { duration: '50ms', steps: 3 }, errorOnBackoffTimeout },
    });
    expect((await runner.fire(labelled, ctx(), policy(true))).detail).toMatch(/labels phase reached/);
    const unlabelled: StandardK8STrigger = {
      source: { resource: configMap({ generateName: 'unlabelled-' }) },
    };
    const t0 = Date.now();
    const err = await triggerError(runner.fire(unlabelled, ctx(), policy(true)), 'Transient');
    expect(err.message).toMatch(/did not get labels/);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect((await runner.fire(unlabelled, ctx(), policy(false))).detail).toMatch(
      /not an error without errorOnBackoffTimeout/,
    );
  });

  it('classifies API errors', async () => {
    // 422 Invalid: the server refuses this object.
    const invalid = await triggerError(
      runner.fire({ source: { resource: configMap({ name: 'Not_Valid' }) } }, ctx()),
      'Rejected',
    );
    expect(invalid.message).toMatch(/422/);
    const unknownKind = await triggerError(
      runner.fire(
        { source: { resource: { apiVersion: 'v1', kind: 'NoSuchKind', metadata: { name: 'x' } } } },
        ctx(),
      ),
      'Misconfigured',
    );
    expect(unknownKind.message).toMatch(/no kind NoSuchKind in v1/);
    await triggerError(
      runner.fire(
        {
          source: { resource: { apiVersion: 'nope.example.org/v9', kind: 'Thing', metadata: { name: 'x' } } },
        },
        ctx(),
      ),
      'Misconfigured',
    );
    // Neither name nor generateName.
    await triggerError(runner.fire({ source: { resource: configMap({}) } }, ctx()), 'Misconfigured');
    // No API server listening: transient.
    const dead = new KubeConfig();
    dead.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:9', skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    await triggerError(
      runner.fire({ source: { resource: configMap({ name: 'a' }) } }, makeCtx({ namespace: ns, kube: dead })),
      'Transient',
    );
    // No Kubernetes access at all.
    await triggerError(
      runner.fire({ source: { resource: configMap({ name: 'a' }) } }, makeCtx({ namespace: ns })),
      'Misconfigured',
    );
  });

  it('computes JSON patch operations (pure)', () => {
    expect(jsonPatchOps({ a: { b: 1, c: 2 }, d: [1] }, { a: { b: 3, 'x/y': 1 }, d: [1], e: 'n' })).toEqual([
      { op: 'replace', path: '/a/b', value: 3 },
      { op: 'add', path: '/a/x~1y', value: 1 },
      { op: 'add', path: '/e', value: 'n' },
    ]);
  });
});
