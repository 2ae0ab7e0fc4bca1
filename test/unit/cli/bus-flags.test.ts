import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { busOptionsFrom, urlCredentials } from '../../../src/cli/bus-flags.ts';

describe('bus connection flags (sluice dlq)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-flags-'));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const env = { XDG_CONFIG_HOME: join(dir, 'cfg') };

  it('takes credentials out of the URL', () => {
    expect(urlCredentials('nats://s3cret@bus:4222')).toEqual({
      url: 'nats://bus:4222',
      auth: { token: 's3cret' },
    });
    expect(urlCredentials('nats://me:p%40ss@a:4222,nats://b:4222')).toEqual({
      url: 'nats://a:4222,nats://b:4222',
      auth: { user: 'me', password: 'p@ss' },
    });
    expect(urlCredentials('nats://a:4222')).toEqual({ url: 'nats://a:4222' });
  });

  it('flags win over NATS_* variables, which win over the context', () => {
    mkdirSync(join(dir, 'cfg', 'nats', 'context'), { recursive: true });
    writeFileSync(
      join(dir, 'cfg', 'nats', 'context', 'prod.json'),
      JSON.stringify({ url: 'nats://ctx:4222', token: 'ctx-token', ca: file('ca.pem', 'CA') }),
    );
    writeFileSync(join(dir, 'cfg', 'nats', 'context.txt'), 'prod\n');
    expect(busOptionsFrom({}, env)).toMatchObject({
      url: 'nats://ctx:4222',
      auth: { token: 'ctx-token' },
      tls: { ca: 'CA' },
    });
    expect(
      busOptionsFrom({}, { ...env, NATS_URL: 'nats://env:4222', NATS_USER: 'u', NATS_PASSWORD: 'p' }),
    ).toMatchObject({
      url: 'nats://env:4222',
      auth: { user: 'u', password: 'p' },
    });
    expect(
      busOptionsFrom({ natsUrl: 'nats://flag:4222', token: 't' }, { ...env, NATS_URL: 'nats://env:4222' }),
    ).toMatchObject({
      url: 'nats://flag:4222',
      auth: { token: 't' },
    });
  });

  it('reads a creds file, an NKey seed file and user:password', () => {
    const creds = file('u.creds', '-----BEGIN NATS USER JWT-----\nx\n------END NATS USER JWT------\n');
    const noCtx = { XDG_CONFIG_HOME: join(dir, 'empty') };
    expect(busOptionsFrom({ creds }, noCtx).auth).toEqual({ creds: readBack(creds) });
    const seed = `SU${'A'.repeat(56)}`;
    expect(busOptionsFrom({ nkey: file('admin.nkey', `${seed}\n`) }, noCtx).auth).toEqual({ nkeySeed: seed });
    expect(busOptionsFrom({ user: 'me:pw' }, noCtx).auth).toEqual({ user: 'me', password: 'pw' });
    expect(() => busOptionsFrom({ creds: join(dir, 'missing.creds') }, noCtx)).toThrow(
      /cannot read credentials file/,
    );
    expect(() => busOptionsFrom({ tlscert: creds }, noCtx)).toThrow(/both --tlscert and --tlskey/);
  });
});

function readBack(p: string): string {
  return readFileSync(p, 'utf8');
}
