// The controller's own HTTP layer against the real kube-apiserver, over the keep-alive connection
// the controller uses (SimpleKubeConfig): a request with a body on a method Node does not frame by
// itself (DELETE with DeleteOptions) must not leave bytes on the connection. Unframed, the server
// read the body as the start of the next request and answered that one "400 Bad Request" (found on
// the real node: the managed bus's Secret read after the old ConfigMap's delete always failed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Applier } from '../../../src/controller/apply.ts';
import { KubeHttp } from '../../../src/controller/kube-http.ts';
import { SimpleKubeConfig } from '../../../src/kube/config.ts';
import { kubeconfigPath, kubeMissing, skipNote, uniqueName } from '../../harness/shared.ts';

describe.skipIf(kubeMissing())(`controller HTTP to the API server${skipNote(kubeMissing())}`, () => {
  const namespace = uniqueName('kubehttp');
  let http: KubeHttp;
  let applier: Applier;

  beforeAll(async () => {
    http = new KubeHttp(SimpleKubeConfig.loadFile(kubeconfigPath()!));
    applier = new Applier(http);
    await http.request('POST', '/api/v1/namespaces', { body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    await http?.request('DELETE', `/api/v1/namespaces/${namespace}`).catch(() => undefined);
  });

  it('DELETE with a body, then GET/PATCH on the same keep-alive connection: every answer is the real one', async () => {
    const cm = (name: string) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace },
      data: { k: name },
    });
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace } };
    type SecretObject = { metadata?: { name?: string }; data?: Record<string, string> };
    await applier.apply(cm('a'));
    // Sequential calls reuse the one idle socket of the keep-alive agent.
    for (let i = 0; i < 3; i++) {
      expect(await applier.delete(cm('missing'))).toBe(false);
      expect(await applier.get(secret)).toBeUndefined();
    }
    expect(await applier.delete(cm('a'))).toBe(true);
    await applier.apply({ ...secret, type: 'Opaque', stringData: { x: 'y' } } as typeof secret);
    const got = await applier.get<SecretObject>(secret);
    expect(Buffer.from(got?.data?.x ?? '', 'base64').toString()).toBe('y');
    expect(await applier.delete(secret)).toBe(true);
    expect(await applier.get(secret)).toBeUndefined();
  });
});
