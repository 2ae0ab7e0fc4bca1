// The slack trigger against a local HTTP server standing in for the Slack Web API: it records
// each call and answers the way Slack does (HTTP 200 with {ok:false,error} for most failures).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SlackTrigger } from '../../../../src/api/sensor.ts';
import { slackTrigger } from '../../../../src/sensors/triggers/slack.ts';
import { makeCtx, triggerError } from './ctx.ts';

interface Call {
  method: string;
  auth: string;
  body: Record<string, unknown>;
}
type Answer = { status?: number; headers?: Record<string, string>; body: unknown };

describe('slack trigger', () => {
  let server: Server;
  let url: string;
  const calls: Call[] = [];
  /** Decides the answer per call; reset by each test. */
  let answer: (c: Call, n: number) => Answer = () => ({ body: { ok: true } });
  let ts = 1000;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const c: Call = {
          method: (req.url ?? '').replace(/^\/api\//, ''),
          auth: String(req.headers.authorization ?? ''),
          body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'),
        };
        calls.push(c);
        const a = answer(c, calls.length);
        res.writeHead(a.status ?? 200, { 'content-type': 'application/json', ...(a.headers ?? {}) });
        res.end(JSON.stringify(a.body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const okPost = (c: Call): Answer => ({ body: { ok: true, channel: c.body.channel, ts: `${++ts}.000100` } });
  const secrets = { slack: { token: 'xoxb-test-token\n' } };
  const base: SlackTrigger = {
    slackToken: { name: 'slack', key: 'token' },
    channel: 'C0123',
    message: 'hello',
  };
  const reset = (a: typeof answer) => {
    calls.length = 0;
    answer = a;
  };

  it('posts the message with the token, attachments, blocks and sender', async () => {
    reset(okPost);
    const runner = slackTrigger({ apiUrl: url });
    const spec: SlackTrigger = {
      ...base,
      attachments: '[{"title":"A1","color":"#18be52"}]',
      blocks: '[{"type":"section","text":{"type":"mrkdwn","text":"*hi*"}}]',
      sender: { username: 'sluice-bot', icon: ':robot_face:' },
    };
    const res = await runner.fire(spec, makeCtx({ secrets }));
    expect(res.detail).toMatch(/posted to C0123/);
    expect(calls).toHaveLength(1);
    const c = calls[0]!;
    expect(c.method).toBe('chat.postMessage');
    expect(c.auth).toBe('Bearer xoxb-test-token');
    expect(c.body).toMatchObject({
      channel: 'C0123',
      text: 'hello',
      attachments: [{ title: 'A1', color: '#18be52' }],
      blocks: [{ type: 'section' }],
      username: 'sluice-bot',
      icon_emoji: ':robot_face:',
    });
    expect(c.body.thread_ts).toBeUndefined();
  });

  it('posts once per idempotency key', async () => {
    reset(okPost);
    const runner = slackTrigger({ apiUrl: url });
    const ctx = makeCtx({ secrets, key: 'same-key' });
    await runner.fire(base, ctx);
    const again = await runner.fire(base, { ...ctx, attempt: 2 });
    expect(again.detail).toMatch(/already posted/);
    await runner.fire(base, makeCtx({ secrets, key: 'other-key' }));
    expect(calls.filter((c) => c.method === 'chat.postMessage')).toHaveLength(2);
  });

  it('threads messages with the same aggregation key and broadcasts when asked', async () => {
    reset(okPost);
    const runner = slackTrigger({ apiUrl: url });
    const spec: SlackTrigger = {
      ...base,
      thread: { messageAggregationKey: 'build-42', broadcastMessageToChannel: true },
    };
    await runner.fire(spec, makeCtx({ secrets }));
    await runner.fire(spec, makeCtx({ secrets }));
    await runner.fire({ ...spec, thread: { messageAggregationKey: 'build-43' } }, makeCtx({ secrets }));
    expect(calls).toHaveLength(3);
    const firstTs = `${ts - 2}.000100`;
    expect(calls[0]!.body.thread_ts).toBeUndefined();
    expect(calls[1]!.body).toMatchObject({ thread_ts: firstTs, reply_broadcast: true });
    expect(calls[2]!.body.thread_ts).toBeUndefined();
  });

  it('joins a channel it is not in, then posts', async () => {
    reset((c, n) =>
      c.method === 'chat.postMessage' && n === 1
        ? { body: { ok: false, error: 'not_in_channel' } }
        : okPost(c),
    );
    const runner = slackTrigger({ apiUrl: url });
    await runner.fire(base, makeCtx({ secrets }));
    expect(calls.map((c) => c.method)).toEqual([
      'chat.postMessage',
      'conversations.join',
      'chat.postMessage',
    ]);
    expect(calls[1]!.body).toEqual({ channel: 'C0123' });
  });

  it('classifies Slack errors', async () => {
    const runner = slackTrigger({ apiUrl: url });
    reset(() => ({ body: { ok: false, error: 'ratelimited' }, headers: { 'retry-after': '7' } }));
    const limited = await triggerError(runner.fire(base, makeCtx({ secrets })), 'Transient');
    expect(limited.retryAfterMs).toBe(7000);
    reset(() => ({
      status: 429,
      body: { ok: false, error: 'ratelimited' },
      headers: { 'retry-after': '3' },
    }));
    expect((await triggerError(runner.fire(base, makeCtx({ secrets })), 'Transient')).retryAfterMs).toBe(
      3000,
    );
    reset(() => ({ status: 503, body: 'down' }));
    await triggerError(runner.fire(base, makeCtx({ secrets })), 'Transient');
    reset(() => ({ body: { ok: false, error: 'invalid_auth' } }));
    expect((await triggerError(runner.fire(base, makeCtx({ secrets })), 'Misconfigured')).message).toMatch(
      /invalid_auth/,
    );
    reset(() => ({ body: { ok: false, error: 'channel_not_found' } }));
    await triggerError(runner.fire(base, makeCtx({ secrets })), 'Misconfigured');
    reset(() => ({ body: { ok: false, error: 'invalid_blocks' } }));
    await triggerError(runner.fire(base, makeCtx({ secrets })), 'Rejected');
    // A failed post is not remembered: the next attempt with the same key posts.
    reset(okPost);
    const ctx = makeCtx({ secrets, key: 'after-failure' });
    answer = (c, n) => (n === 1 ? { body: { ok: false, error: 'internal_error' } } : okPost(c));
    await triggerError(runner.fire(base, ctx), 'Transient');
    await runner.fire(base, ctx);
    expect(calls).toHaveLength(2);
  });

  it('refuses bad specs without calling Slack', async () => {
    reset(okPost);
    const runner = slackTrigger({ apiUrl: url });
    await triggerError(runner.fire({ ...base, blocks: '{not json' }, makeCtx({ secrets })), 'Misconfigured');
    await triggerError(runner.fire({ ...base, channel: '' }, makeCtx({ secrets })), 'Misconfigured');
    await triggerError(
      runner.fire({ ...base, slackToken: { name: 'nope', key: 'token' } }, makeCtx({ secrets })),
      'Misconfigured',
    );
    expect(calls).toHaveLength(0);
  });

  it('fails transiently when the API cannot be reached', async () => {
    const runner = slackTrigger({ apiUrl: 'http://127.0.0.1:9/api' });
    await triggerError(runner.fire(base, makeCtx({ secrets })), 'Transient');
  });
});
