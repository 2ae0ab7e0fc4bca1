import { mkdtempSync, writeFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KubeConfigError, SimpleKubeConfig } from '../../../src/kube/config.ts';

function kubeconfig(user: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'kc-'));
  const file = join(dir, 'config');
  writeFileSync(join(dir, 'token'), 'from-file\n');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'ctx',
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'team-a' } }],
      clusters: [
        {
          name: 'c',
          cluster: {
            server: 'https://127.0.0.1:6443',
            'certificate-authority-data': Buffer.from('CA').toString('base64'),
            ...extra,
          },
        },
      ],
      users: [{ name: 'u', user }],
    }),
  );
  return file;
}

describe('SimpleKubeConfig', () => {
  it('reads server, namespace, CA and a bearer token', async () => {
    const kc = SimpleKubeConfig.loadFile(kubeconfig({ token: 'abc' }));
    expect(kc.getCurrentCluster()).toEqual({ server: 'https://127.0.0.1:6443', skipTLSVerify: false });
    expect(kc.getContextObject(kc.getCurrentContext())).toEqual({ namespace: 'team-a' });
    const opts: RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    expect((opts.headers as Record<string, string>).Authorization).toBe('Bearer abc');
    expect(opts.agent).toBeDefined();
  });
  it('re-reads a token file relative to the kubeconfig on each request', async () => {
    const file = kubeconfig({ tokenFile: 'token' });
    const kc = SimpleKubeConfig.loadFile(file);
    const opts: RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    expect((opts.headers as Record<string, string>).Authorization).toBe('Bearer from-file');
    writeFileSync(join(file, '..', 'token'), 'rotated');
    const again: RequestOptions = {};
    await kc.applyToHTTPSOptions(again);
    expect((again.headers as Record<string, string>).Authorization).toBe('Bearer rotated');
  });
  it('basic auth and insecure-skip-tls-verify', async () => {
    const kc = SimpleKubeConfig.loadFile(
      kubeconfig({ username: 'me', password: 'pw' }, { 'insecure-skip-tls-verify': true }),
    );
    expect(kc.getCurrentCluster()?.skipTLSVerify).toBe(true);
    const opts: RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    expect((opts.headers as Record<string, string>).Authorization).toBe(
      `Basic ${Buffer.from('me:pw').toString('base64')}`,
    );
  });
  it('refuses exec plugins with an actionable message', () => {
    expect(() => SimpleKubeConfig.loadFile(kubeconfig({ exec: { command: 'aws' } }))).toThrow(
      KubeConfigError,
    );
    expect(() => SimpleKubeConfig.loadFile(kubeconfig({ exec: { command: 'aws' } }))).toThrow(
      /token or client certificate/,
    );
  });
  it('names a missing file', () => {
    expect(() => SimpleKubeConfig.loadFile('/nonexistent/kubeconfig')).toThrow(
      /cannot read kubeconfig \/nonexistent/,
    );
  });
});
