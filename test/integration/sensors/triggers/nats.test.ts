// The nats trigger against real nats-servers: the shared one (payload and Nats-Msg-Id as a core
// subscriber sees them, one message per idempotency key, JetStream deduplication by the header)
// and a private one with users and publish permissions (basic auth from Secrets, a refused
// subject, a wrong password) that is then stopped (transient failure while it is down).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NATSTrigger } from '../../../../src/api/sensor.ts';
import { natsTrigger } from '../../../../src/sensors/triggers/nats.ts';
import { type NatsServer, startNats } from '../../../harness/nats.ts';
import { waitFor } from '../../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../../harness/shared.ts';
import { makeCtx, triggerError } from './ctx.ts';

const missing = natsMissing();

const payload: NATSTrigger['payload'] = [
  { src: { dependencyName: 'dep', dataKey: 'body.file' }, dest: 'fileName' },
  { src: { dependencyName: 'dep', dataKey: 'body.bucket' }, dest: 'bucket' },
];
const data = { body: { file: 'a/b.txt', bucket: 'uploads' } };

describe.skipIf(missing)(`nats trigger${skipNote(missing)}`, () => {
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connect({ servers: natsUrl() });
  });
  afterAll(async () => {
    await nc?.drain();
  });

  it('publishes the payload with Nats-Msg-Id, once per idempotency key', async () => {
    const subject = uniqueName('trig.nats');
    const got: Msg[] = [];
    const sub = nc.subscribe(subject, {
      callback: (_e, m) => {
        got.push(m);
      },
    });
    await nc.flush();
    const runner = natsTrigger();
    const spec: NATSTrigger = { url: natsUrl(), subject, payload };
    const ctx = makeCtx({ data: { dep: data }, key: 'nats-key-1' });
    expect((await runner.fire(spec, ctx)).detail).toMatch(/published \d+ bytes/);
    expect((await runner.fire(spec, { ...ctx, attempt: 2 })).detail).toMatch(/already published/);
    await runner.fire(spec, makeCtx({ data: { dep: data }, key: 'nats-key-2' }));
    await waitFor('two messages', () => got.length >= 2);
    await nc.flush();
    expect(got).toHaveLength(2);
    expect(got[0]!.json()).toEqual({ fileName: 'a/b.txt', bucket: 'uploads' });
    expect(got[0]!.headers?.get('Nats-Msg-Id')).toBe('nats-key-1');
    expect(got[0]!.headers?.get('traceparent')).toBe(ctx.traceparent);
    expect(got[1]!.headers?.get('Nats-Msg-Id')).toBe('nats-key-2');
    sub.unsubscribe();
    await runner.close?.();
  });

  it('lets a JetStream stream drop a repeat from another runner (same key)', async () => {
    const jsm = await jetstreamManager(nc);
    const name = uniqueName('TRIGNATS').replace(/-/g, '_');
    const subject = `${name}.in`;
    await jsm.streams.add({ name, subjects: [subject], duplicate_window: 60_000_000_000 });
    try {
      const spec: NATSTrigger = { url: natsUrl(), subject, payload };
      // Two runners stand for two processes: neither remembers the other's keys.
      const a = natsTrigger();
      const b = natsTrigger();
      await a.fire(spec, makeCtx({ data: { dep: data }, key: 'js-key' }));
      await b.fire(spec, makeCtx({ data: { dep: data }, key: 'js-key' }));
      await b.fire(spec, makeCtx({ data: { dep: data }, key: 'js-key-2' }));
      await waitFor(
        'stream to hold the messages',
        async () => (await jsm.streams.info(name)).state.messages >= 2,
      );
      expect((await jsm.streams.info(name)).state.messages).toBe(2);
      await a.close?.();
      await b.close?.();
    } finally {
      await jsm.streams.delete(name);
    }
  });

  describe('with users and permissions', () => {
    let server: NatsServer;
    beforeAll(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-nats-trig-'));
      const conf = join(dir, 'auth.conf');
      writeFileSync(
        conf,
        `authorization {
  users = [
    { user: "sensor", password: "pw1", permissions: { publish: { allow: ["ok.>"] }, subscribe: { allow: ["_INBOX.>"] } } },
    { user: "reader", password: "pw2" }
  ]
}
`,
      );
      server = await startNats({ dir, args: ['--config', conf] });
    });
    afterAll(async () => {
      await server?.stop();
    });

    const secrets = { nats: { user: 'sensor', password: 'pw1', bad: 'nope' } };
    const auth = (pw = 'password'): NATSTrigger['auth'] => ({
      basic: { username: { name: 'nats', key: 'user' }, password: { name: 'nats', key: pw } },
    });

    it('authenticates from Secrets, and a refused subject is a rejection', async () => {
      const reader = await connect({ servers: server.url, user: 'reader', pass: 'pw2' });
      const got: Msg[] = [];
      reader.subscribe('ok.>', {
        callback: (_e, m) => {
          got.push(m);
        },
      });
      await reader.flush();
      const runner = natsTrigger();
      await runner.fire(
        { url: server.url, subject: 'ok.one', payload, auth: auth() },
        makeCtx({ data: { dep: data }, secrets }),
      );
      await waitFor('message from the authenticated runner', () => got.length === 1);
      expect(got[0]!.json()).toEqual({ fileName: 'a/b.txt', bucket: 'uploads' });

      const refused = await triggerError(
        runner.fire(
          { url: server.url, subject: 'denied.one', payload, auth: auth() },
          makeCtx({ data: { dep: data }, secrets }),
        ),
        'Rejected',
      );
      expect(refused.message).toMatch(/denied\.one/);
      // The connection survives a refusal: the next allowed publish still works.
      await runner.fire(
        { url: server.url, subject: 'ok.two', payload, auth: auth() },
        makeCtx({ data: { dep: data }, secrets }),
      );
      await waitFor('second message', () => got.length === 2);
      await runner.close?.();
      await reader.drain();
    });

    it('a wrong password is a misconfiguration, a stopped server transient', async () => {
      const runner = natsTrigger({ flushTimeoutMs: 1_000 });
      await triggerError(
        runner.fire(
          { url: server.url, subject: 'ok.x', payload, auth: auth('bad') },
          makeCtx({ data: { dep: data }, secrets }),
        ),
        'Misconfigured',
      );
      const spec: NATSTrigger = { url: server.url, subject: 'ok.x', payload, auth: auth() };
      await runner.fire(spec, makeCtx({ data: { dep: data }, secrets }));
      await server.stop();
      // The kept connection is now reconnecting: the publish is buffered and times out.
      let t0 = Date.now();
      await triggerError(runner.fire(spec, makeCtx({ data: { dep: data }, secrets })), 'Transient');
      expect(Date.now() - t0).toBeLessThan(5_000);
      // A fresh runner cannot connect at all.
      const fresh = natsTrigger();
      t0 = Date.now();
      await triggerError(fresh.fire(spec, makeCtx({ data: { dep: data }, secrets })), 'Transient');
      expect(Date.now() - t0).toBeLessThan(10_000);
      await Promise.all([runner.close?.(), fresh.close?.()]);
    });
  });
});
