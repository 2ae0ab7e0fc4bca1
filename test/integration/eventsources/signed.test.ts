// Signed webhook sources against a real nats-server: a good signature or token is accepted and
// the event is in the stream under the provider's delivery id (a redelivery is stored once); a
// missing one gets 401, a wrong one 403, and nothing is published; Slack's URL verification is
// answered; Stripe's event filter acknowledges without publishing.
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourceSpec } from '../../../src/api/eventsource.ts';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { type BusRef, eventStreamName } from '../../../src/bus/subjects.ts';
import { type CloudEvent, decodeEvent } from '../../../src/eventsources/envelope.ts';
import { type RunningEventSource, startEventSource } from '../../../src/eventsources/runtime.ts';
import { hmacHex } from '../../../src/eventsources/webhook/signed.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

const SECRETS: Record<string, string> = {
  gh: 'gh-secret',
  gl: 'gl-token',
  bbs: 'bbs-secret',
  sl: 'slack-signing',
};
const hook = (endpoint: string) => ({ port: '0', endpoint, method: 'POST' });
const spec = EventSourceSpec.parse({
  github: {
    push: {
      webhook: hook('/github'),
      repositories: [{ owner: 'o', names: ['r'] }],
      webhookSecret: { name: 's', key: 'gh' },
    },
  },
  gitlab: {
    mr: {
      webhook: hook('/gitlab'),
      projects: ['1'],
      accessToken: { name: 's', key: 'x' },
      gitlabBaseURL: 'https://gitlab.example',
      events: ['MergeRequestsEvents'],
      secretToken: { name: 's', key: 'gl' },
    },
  },
  bitbucketserver: {
    pr: {
      webhook: hook('/bbs'),
      bitbucketserverBaseURL: 'https://bitbucket.example/rest',
      repositories: [{ projectKey: 'P', repositorySlug: 'r' }],
      webhookSecret: { name: 's', key: 'bbs' },
    },
  },
  slack: {
    msg: { webhook: hook('/slack'), signingSecret: { name: 's', key: 'sl' }, token: { name: 's', key: 'x' } },
  },
  stripe: { pay: { webhook: hook('/stripe'), eventFilter: ['charge.succeeded'] } },
});

describe.skipIf(natsMissing())(`signed webhook EventSources${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  let es: RunningEventSource;
  let bus: BusRef;
  let base: string;
  const stored = async (): Promise<CloudEvent[]> => {
    const jsm = await jetstreamManager(conn.nc);
    const info = await jsm.streams.info(eventStreamName(bus));
    const out: CloudEvent[] = [];
    for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(eventStreamName(bus), { seq }).catch(() => null);
      if (m) out.push(decodeEvent(m.data));
    }
    return out;
  };
  const post = (path: string, body: string, headers: Record<string, string>) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
    });

  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
    bus = { namespace: uniqueName('signed'), busName: 'default' };
    const cfg = parseStreamConfig('');
    if (!cfg.ok) throw new Error(cfg.errors.join());
    await ensureStreams(await jetstreamManager(conn.nc), bus, cfg.settings, 1);
    es = await startEventSource({
      name: 'hosts',
      namespace: bus.namespace,
      spec,
      bus,
      publisher: new Publisher(conn.nc),
      nc: conn.nc,
      registry: newRegistry(),
      log: createLogger({ level: 'silent' }),
      resolveSecret: async (sel) => SECRETS[sel.key] ?? 'unused',
      host: '127.0.0.1',
    });
    base = `http://127.0.0.1:${es.ports.get('0')}`;
  });
  afterAll(async () => {
    await es?.stop();
    await conn?.close();
  });

  it('github: HMAC-SHA256 signature, delivery id, redelivery stored once; 401 unsigned, 403 wrong', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main' });
    const sig = `sha256=${hmacHex('sha256', SECRETS.gh!, body)}`;
    const headers = { 'x-hub-signature-256': sig, 'x-github-delivery': 'gh-1', 'x-github-event': 'push' };
    expect((await post('/github', body, headers)).status).toBe(200);
    expect((await post('/github', body, headers)).status).toBe(200);
    expect((await post('/github', body, { 'x-github-delivery': 'gh-2' })).status).toBe(401);
    expect(
      (await post('/github', body, { ...headers, 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` })).status,
    ).toBe(403);
    expect((await post('/github', `${body} `, headers)).status).toBe(403);
    const evs = (await stored()).filter((e) => e.type === 'github');
    expect(evs).toHaveLength(1);
    expect(evs[0]).toMatchObject({ id: 'gh-1', subject: 'push', source: 'hosts' });
    expect((evs[0]!.data as { body: unknown }).body).toEqual({ ref: 'refs/heads/main' });
    expect((evs[0]!.data as { header: Record<string, string[]> }).header['x-github-event']).toEqual(['push']);
  });

  it('gitlab: X-Gitlab-Token; bitbucket server: signature', async () => {
    const body = JSON.stringify({ object_kind: 'merge_request' });
    expect(
      (await post('/gitlab', body, { 'x-gitlab-token': 'gl-token', 'x-gitlab-event-uuid': 'gl-1' })).status,
    ).toBe(200);
    expect((await post('/gitlab', body, {})).status).toBe(401);
    expect((await post('/gitlab', body, { 'x-gitlab-token': 'nope' })).status).toBe(403);
    const bb = JSON.stringify({ eventKey: 'pr:opened' });
    const sig = `sha256=${hmacHex('sha256', SECRETS.bbs!, bb)}`;
    expect((await post('/bbs', bb, { 'x-hub-signature': sig, 'x-request-id': 'bb-1' })).status).toBe(200);
    expect((await post('/bbs', bb, { 'x-hub-signature': 'sha256=bad' })).status).toBe(403);
    const evs = await stored();
    expect(evs.filter((e) => e.type === 'gitlab').map((e) => e.id)).toEqual(['gl-1']);
    expect(evs.filter((e) => e.type === 'bitbucketserver').map((e) => e.id)).toEqual(['bb-1']);
  });

  it('slack: signed requests, URL verification answered, stale timestamps refused', async () => {
    const ts = String(Math.floor(Date.now() / 1000));
    const sign = (b: string, t = ts) => `v0=${hmacHex('sha256', SECRETS.sl!, `v0:${t}:${b}`)}`;
    const challenge = JSON.stringify({ type: 'url_verification', challenge: 'abc123' });
    const r = await post('/slack', challenge, {
      'x-slack-request-timestamp': ts,
      'x-slack-signature': sign(challenge),
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ challenge: 'abc123' });
    const event = JSON.stringify({
      type: 'event_callback',
      event_id: 'Ev1',
      event: { type: 'message', text: 'hi' },
    });
    expect(
      (await post('/slack', event, { 'x-slack-request-timestamp': ts, 'x-slack-signature': sign(event) }))
        .status,
    ).toBe(200);
    const old = String(Math.floor(Date.now() / 1000) - 600);
    expect(
      (
        await post('/slack', event, {
          'x-slack-request-timestamp': old,
          'x-slack-signature': sign(event, old),
        })
      ).status,
    ).toBe(403);
    expect((await post('/slack', event, {})).status).toBe(401);
    const evs = (await stored()).filter((e) => e.type === 'slack');
    expect(evs.map((e) => e.id)).toEqual(['Ev1']);
    expect((evs[0]!.data as { event: { text: string } }).event.text).toBe('hi');
  });

  it('stripe: event id as id, unsubscribed types acknowledged without publishing, non-events refused', async () => {
    const ev = (id: string, type: string) =>
      JSON.stringify({ id, object: 'event', type, data: { object: {} } });
    expect((await post('/stripe', ev('evt_1', 'charge.succeeded'), {})).status).toBe(200);
    expect((await post('/stripe', ev('evt_2', 'customer.created'), {})).status).toBe(200);
    expect((await post('/stripe', '{"hello":1}', {})).status).toBe(400);
    const evs = (await stored()).filter((e) => e.type === 'stripe');
    expect(evs.map((e) => e.id)).toEqual(['evt_1']);
  });
});
