import { describe, expect, it } from 'vitest';
import { BusConfig, busServers, credentialToAuth } from '../../../src/api/bus-config.ts';
import { Backoff, natsConnectionOptions } from '../../../src/bus/connection.ts';

// A syntactically valid user NKey seed (base32 alphabet, "SU" prefix) for option building only.
const SEED = `SU${'A'.repeat(56)}`;
const CREDS = `-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.e30.sig\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${SEED}\n------END USER NKEY SEED------\n`;

describe('bus config schema', () => {
  it('accepts a URL list and each kind of auth', () => {
    for (const auth of [{ user: 'u', password: 'p' }, { token: 't' }, { nkeySeed: SEED }, { creds: CREDS }]) {
      expect(BusConfig.safeParse({ url: 'nats://a:4222, nats://b:4222', auth }).success).toBe(true);
    }
    expect(busServers('nats://a:4222, nats://b:4222,')).toEqual(['nats://a:4222', 'nats://b:4222']);
  });

  it('rejects mixed or malformed auth, bad URLs and half a client certificate', () => {
    expect(BusConfig.safeParse({ url: 'nats://a', auth: { token: 't', user: 'u' } }).success).toBe(false);
    expect(BusConfig.safeParse({ url: 'nats://a', auth: { nkeySeed: 'not-a-seed' } }).success).toBe(false);
    expect(BusConfig.safeParse({ url: 'nats://a', auth: { creds: 'plain text' } }).success).toBe(false);
    expect(BusConfig.safeParse({ url: 'nats://a b' }).success).toBe(false);
    expect(BusConfig.safeParse({ url: '' }).success).toBe(false);
    expect(BusConfig.safeParse({ url: 'nats://a', tls: { cert: 'PEM' } }).success).toBe(false);
  });

  it('reads a single Secret credential the way the controller passes it', () => {
    expect(credentialToAuth('user:pa:ss')).toEqual({ user: 'user', password: 'pa:ss' });
    expect(credentialToAuth('s3cret')).toEqual({ token: 's3cret' });
    expect(credentialToAuth(SEED)).toEqual({ nkeySeed: SEED });
    expect(credentialToAuth(CREDS)).toEqual({ creds: CREDS.trim() });
    expect(credentialToAuth('  ')).toBeUndefined();
  });
});

describe('nats.js options', () => {
  it('maps each kind of auth and TLS, and reconnects forever', () => {
    const base = natsConnectionOptions({ url: 'nats://a:4222,nats://b:4222' });
    expect(base).toMatchObject({ servers: ['nats://a:4222', 'nats://b:4222'], maxReconnectAttempts: -1 });
    expect(base.user ?? base.token ?? base.authenticator ?? base.tls).toBeUndefined();
    expect(natsConnectionOptions({ url: 'x', auth: { user: 'u', password: 'p' } })).toMatchObject({
      user: 'u',
      pass: 'p',
    });
    expect(natsConnectionOptions({ url: 'x', auth: { token: 't' } }).token).toBe('t');
    expect(typeof natsConnectionOptions({ url: 'x', auth: { nkeySeed: SEED } }).authenticator).toBe(
      'function',
    );
    expect(typeof natsConnectionOptions({ url: 'x', auth: { creds: CREDS } }).authenticator).toBe('function');
    expect(natsConnectionOptions({ url: 'x', credential: 'u:p' })).toMatchObject({ user: 'u', pass: 'p' });
    expect(natsConnectionOptions({ url: 'x', tls: { ca: 'CA', insecureSkipVerify: true } }).tls).toEqual({
      ca: 'CA',
      rejectUnauthorized: false,
    });
    expect(natsConnectionOptions({ url: 'x', tls: {} }).tls).toEqual({});
  });

  it('hands nats.js the current backoff delay', () => {
    const b = new Backoff(100, 1000, () => 1);
    const o = natsConnectionOptions({ url: 'x' }, b);
    expect(o.reconnectDelayHandler?.()).toBe(100);
    b.failed();
    expect(o.reconnectDelayHandler?.()).toBe(200);
  });
});

describe('reconnect backoff', () => {
  it('doubles per failure up to the cap and starts over after a success', () => {
    const top = new Backoff(250, 5000, () => 1);
    const seen = [top.delayMs];
    for (let i = 0; i < 6; i++) {
      top.failed();
      seen.push(top.delayMs);
    }
    expect(seen).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
    top.reset();
    expect(top.delayMs).toBe(250);
  });

  it('draws each delay from the upper half of its step (jitter)', () => {
    expect(new Backoff(1000, 5000, () => 0).delayMs).toBe(500);
    const spread = new Set(Array.from({ length: 50 }, () => new Backoff(1000, 5000).delayMs));
    expect(spread.size).toBeGreaterThan(10);
    for (const d of spread) expect(d >= 500 && d <= 1000).toBe(true);
  });

  it('keeps the same delay until the next failure (nats.js asks repeatedly)', () => {
    const b = new Backoff(1000, 5000);
    expect(b.delayMs).toBe(b.delayMs);
  });
});
