// The email trigger against a real SMTP server (the smtp-server package) on loopback: the message
// as received, authentication, one message per idempotency key, and SMTP answer classification.
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmailTrigger } from '../../../../src/api/sensor.ts';
import { emailTrigger, messageIdFor } from '../../../../src/sensors/triggers/email.ts';
import { makeCtx, triggerError } from './ctx.ts';

interface Received {
  from: string;
  to: string[];
  user: string | undefined;
  headers: Record<string, string>;
  body: string;
}

function parseMessage(raw: string): { headers: Record<string, string>; body: string } {
  const cut = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, cut).replace(/\r\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0) headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
  }
  return { headers, body: raw.slice(cut + 4) };
}

describe('email trigger', () => {
  const received: Received[] = [];
  let server: SMTPServer;
  let port: number;

  beforeAll(async () => {
    server = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      authOptional: true,
      logger: false,
      onAuth(auth, _session, cb) {
        if (auth.username === 'mailer' && auth.password === 's3cret')
          return cb(null, { user: auth.username });
        return cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      },
      onRcptTo(address, _session, cb) {
        const a = address.address;
        if (a.startsWith('busy@'))
          return cb(Object.assign(new Error('Mailbox busy, try later'), { responseCode: 450 }));
        if (a.startsWith('nobody@'))
          return cb(Object.assign(new Error('No such user'), { responseCode: 550 }));
        return cb();
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            user: session.user as string | undefined,
            ...parseMessage(Buffer.concat(chunks).toString('utf8')),
          });
          cb();
        });
      },
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const secrets = { smtp: { password: 's3cret' } };
  const spec = (o: Partial<EmailTrigger> = {}): EmailTrigger => ({
    host: '127.0.0.1',
    port,
    username: 'mailer',
    smtpPassword: { name: 'smtp', key: 'password' },
    from: 'sluice@example.org',
    to: ['ops@example.org', 'dev@example.org'],
    subject: 'Build finished',
    body: 'Hi,\n\nthe build is done.\n',
    ...o,
  });

  it('sends the message with a Message-ID derived from the idempotency key', async () => {
    received.length = 0;
    const runner = emailTrigger();
    const ctx = makeCtx({ secrets, key: 'mail-key-1' });
    const res = await runner.fire(spec(), ctx);
    expect(res.detail).toMatch(/sent .* to 2 recipient/);
    expect(received).toHaveLength(1);
    const m = received[0]!;
    expect(m.user).toBe('mailer');
    expect(m.from).toBe('sluice@example.org');
    expect(m.to).toEqual(['ops@example.org', 'dev@example.org']);
    expect(m.headers.subject).toBe('Build finished');
    expect(m.headers['message-id']).toBe(messageIdFor('mail-key-1', 'sluice@example.org'));
    expect(m.headers['message-id']).toMatch(/^<[0-9a-f]{32}\.sluice@example\.org>$/);
    expect(m.headers.traceparent).toBe(ctx.traceparent);
    expect(m.body.replace(/\r\n/g, '\n')).toContain('the build is done.');
    await runner.close?.();
  });

  it('sends once per idempotency key', async () => {
    received.length = 0;
    const runner = emailTrigger();
    const ctx = makeCtx({ secrets, key: 'mail-key-2' });
    await runner.fire(spec(), ctx);
    expect((await runner.fire(spec(), { ...ctx, attempt: 2 })).detail).toMatch(/already sent/);
    await runner.fire(spec(), makeCtx({ secrets, key: 'mail-key-3' }));
    expect(received).toHaveLength(2);
    expect(new Set(received.map((m) => m.headers['message-id'])).size).toBe(2);
    await runner.close?.();
  });

  it('classifies SMTP answers: 4xx transient, 5xx rejected, bad login misconfigured', async () => {
    received.length = 0;
    const runner = emailTrigger();
    const busy = await triggerError(
      runner.fire(spec({ to: ['busy@example.org'] }), makeCtx({ secrets })),
      'Transient',
    );
    expect(busy.message).toMatch(/450/);
    const nobody = await triggerError(
      runner.fire(spec({ to: ['nobody@example.org'] }), makeCtx({ secrets })),
      'Rejected',
    );
    expect(nobody.message).toMatch(/550/);
    await triggerError(
      runner.fire(spec(), makeCtx({ secrets: { smtp: { password: 'wrong' } } })),
      'Misconfigured',
    );
    // One refused recipient among good ones: sent to the others, reported in the detail.
    const partial = await runner.fire(
      spec({ to: ['ops@example.org', 'nobody@example.org'] }),
      makeCtx({ secrets }),
    );
    expect(partial.detail).toMatch(/to 1 recipient.*refused: nobody@example.org/);
    expect(received).toHaveLength(1);
    expect(received[0]!.to).toEqual(['ops@example.org']);
    await runner.close?.();
  });

  it('fails transiently when the server cannot be reached, and refuses bad specs', async () => {
    const runner = emailTrigger();
    await triggerError(runner.fire(spec({ port: 9 }), makeCtx({ secrets })), 'Transient');
    await triggerError(runner.fire(spec({ to: [] }), makeCtx({ secrets })), 'Misconfigured');
    await triggerError(runner.fire(spec({ host: '' }), makeCtx({ secrets })), 'Misconfigured');
    await triggerError(runner.fire(spec(), makeCtx({})), 'Misconfigured');
    await runner.close?.();
  });
});
