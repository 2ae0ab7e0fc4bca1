// Signed webhook sources against a real nats-server, each type through the EventSource runtime:
// a good signature (or token) is answered 200 and the event is in the bus stream with the type,
// subject and the provider's delivery id; the same delivery sent twice is stored once; a missing
// signature gets 401 and a wrong one 403, with nothing published. Slack's URL verification is
// answered with its challenge and not published; Stripe's eventFilter acknowledges other types
// without publishing; Bitbucket Server splits refs_changed with oneEventPerChange.
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
import { MASKED_VALUE } from '../../../src/eventsources/webhook/headers.ts';
import { hmacHex } from '../../../src/eventsources/webhook/signed.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

const SECRETS: Record<string, string> = {
  gh: 'gh-secret',
  gl: 'gl-token',
  bbs: 'bbs-secret',
  sl: 'slack-signing',
  slt: 'slack-verification-token',
  auth: 'proxy-bearer',
};
// No method: provider webhooks need none (upstream checks only endpoint and port); POST is served.
const hook = (endpoint: string) => ({ port: '0', endpoint });
const spec = EventSourceSpec.parse({
  github: {
    push: {
      webhook: hook('/github'),
      repositories: [{ owner: 'o', names: ['r'] }],
      webhookSecret: { name: 's', key: 'gh' },
      metadata: { team: 'core' },
    },
  },
  gitlab: {
    mr: {
      webhook: hook('/gitlab'),
      accessToken: { name: 's', key: 'x' },
      gitlabBaseURL: 'https://gitlab.example',
      events: ['MergeRequestsEvents'],
      secretToken: { name: 's', key: 'gl' },
    },
  },
  bitbucket: {
    cloud: {
      webhook: { ...hook('/bitbucket'), authSecret: { name: 's', key: 'auth' } },
      repositories: [{ owner: 'w', repositorySlug: 'r' }],
    },
  },
  bitbucketserver: {
    pr: {
      webhook: hook('/bbs'),
      bitbucketserverBaseURL: 'https://bitbucket.example/rest',
      repositories: [{ projectKey: 'P', repositorySlug: 'r' }],
      webhookSecret: { name: 's', key: 'bbs' },
    },
    tags: {
      webhook: hook('/bbs-split'),
      bitbucketserverBaseURL: 'https://bitbucket.example/rest',
      repositories: [{ projectKey: 'P', repositorySlug: 'r' }],
      oneEventPerChange: true,
    },
  },
  slack: {
    msg: {
      webhook: hook('/slack'),
      signingSecret: { name: 's', key: 'sl' },
      token: { name: 's', key: 'slt' },
    },
  },
  stripe: { pay: { webhook: hook('/stripe'), eventFilter: ['charge.succeeded'], metadata: { env: 'test' } } },
});

describe.skipIf(natsMissing())(`signed webhook EventSources${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  let es: RunningEventSource;
  let bus: BusRef;
  let base: string;
  const stored = async (type: string): Promise<CloudEvent[]> => {
    const jsm = await jetstreamManager(conn.nc);
    const info = await jsm.streams.info(eventStreamName(bus));
    const out: CloudEvent[] = [];
    for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(eventStreamName(bus), { seq }).catch(() => null);
      if (m) out.push(decodeEvent(m.data));
    }
    return out.filter((e) => e.type === type);
  };
  /** Stored messages of `type` as the exact text stored. */
  const texts = async (type: string): Promise<string[]> => {
    const jsm = await jetstreamManager(conn.nc);
    const info = await jsm.streams.info(eventStreamName(bus));
    const out: string[] = [];
    for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(eventStreamName(bus), { seq }).catch(() => null);
      if (m && decodeEvent(m.data).type === type) out.push(new TextDecoder().decode(m.data));
    }
    return out;
  };
  const post = (path: string, body: string, headers: Record<string, string>, type = 'application/json') =>
    fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': type, ...headers } });

  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
    bus = { namespace: uniqueName('signed'), busName: 'default' };
    const cfg = parseStreamConfig('retention: limits'); // no Sensor: keep what is published to read it back
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

  it('a provider webhook without a method answers POST and refuses other methods with 405', async () => {
    const res = await fetch(`${base}/github`, { method: 'GET' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });

  it('github: sha256 and legacy sha1 signatures; delivery id; upstream {headers, body, metadata}', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main' });
    const sig = `sha256=${hmacHex('sha256', SECRETS.gh!, body)}`;
    const headers = { 'x-hub-signature-256': sig, 'x-github-delivery': 'gh-1', 'x-github-event': 'push' };
    expect((await post('/github', body, headers)).status).toBe(200);
    expect((await post('/github', body, headers)).status).toBe(200);
    const legacy = {
      'x-hub-signature': `sha1=${hmacHex('sha1', SECRETS.gh!, body)}`,
      'x-github-delivery': 'gh-2',
    };
    expect((await post('/github', body, legacy)).status).toBe(200);
    expect((await post('/github', body, { 'x-github-delivery': 'gh-3' })).status).toBe(401);
    const zeros = {
      ...headers,
      'x-github-delivery': 'gh-4',
      'x-hub-signature-256': `sha256=${'0'.repeat(64)}`,
    };
    expect((await post('/github', body, zeros)).status).toBe(403);
    // Signed over other bytes: the body was changed on the way.
    expect((await post('/github', `${body} `, { ...headers, 'x-github-delivery': 'gh-5' })).status).toBe(403);
    const evs = await stored('github');
    expect(evs.map((e) => e.id)).toEqual(['gh-1', 'gh-2']);
    expect(evs[0]).toMatchObject({ subject: 'push', source: 'hosts', type: 'github' });
    const data = evs[0]!.data as { headers: Record<string, string[]>; body: unknown; metadata: unknown };
    expect(data.body).toEqual({ ref: 'refs/heads/main' });
    expect(data.headers['X-Github-Event']).toEqual(['push']);
    expect(data.headers['X-Github-Delivery']).toEqual(['gh-1']);
    expect(data.metadata).toEqual({ team: 'core' });
  });

  it('gitlab: X-Gitlab-Token checked and masked in the event; event UUID as id', async () => {
    const body = JSON.stringify({ object_kind: 'merge_request' });
    const ok = {
      'x-gitlab-token': 'gl-token',
      'x-gitlab-event-uuid': 'gl-1',
      'x-gitlab-event': 'Merge Request Hook',
    };
    expect((await post('/gitlab', body, ok)).status).toBe(200);
    expect((await post('/gitlab', body, ok)).status).toBe(200);
    expect((await post('/gitlab', body, { 'x-gitlab-event-uuid': 'gl-2' })).status).toBe(401);
    expect(
      (await post('/gitlab', body, { 'x-gitlab-token': 'nope', 'x-gitlab-event-uuid': 'gl-3' })).status,
    ).toBe(403);
    const evs = await stored('gitlab');
    expect(evs.map((e) => e.id)).toEqual(['gl-1']);
    expect(evs[0]!.subject).toBe('mr');
    const data = evs[0]!.data as { headers: Record<string, string[]>; body: unknown };
    expect(data.headers['X-Gitlab-Event']).toEqual(['Merge Request Hook']);
    expect(data.headers['X-Gitlab-Token']).toEqual([MASKED_VALUE]);
    expect(data.body).toEqual({ object_kind: 'merge_request' });
  });

  it('bitbucket server: X-Hub-Signature HMAC, X-Request-Id as id', async () => {
    const body = JSON.stringify({ eventKey: 'pr:opened' });
    const sig = `sha256=${hmacHex('sha256', SECRETS.bbs!, body)}`;
    expect((await post('/bbs', body, { 'x-hub-signature': sig, 'x-request-id': 'bb-1' })).status).toBe(200);
    expect((await post('/bbs', body, { 'x-hub-signature': sig, 'x-request-id': 'bb-1' })).status).toBe(200);
    expect((await post('/bbs', body, { 'x-request-id': 'bb-2' })).status).toBe(401);
    expect(
      (await post('/bbs', body, { 'x-hub-signature': 'sha256=bad', 'x-request-id': 'bb-3' })).status,
    ).toBe(403);
    const evs = (await stored('bitbucketserver')).filter((e) => e.subject === 'pr');
    expect(evs.map((e) => e.id)).toEqual(['bb-1']);
    expect((evs[0]!.data as { body: unknown }).body).toEqual({ eventKey: 'pr:opened' });
  });

  it('bitbucket server: oneEventPerChange publishes each ref change of repo:refs_changed once', async () => {
    const change = (ref: string) => ({ ref: { id: ref, type: 'TAG' }, refId: ref, type: 'ADD' });
    const body = JSON.stringify({
      eventKey: 'repo:refs_changed',
      repository: { slug: 'r', project: { key: 'P' } },
      changes: [change('refs/tags/v1'), change('refs/tags/v2')],
    });
    expect((await post('/bbs-split', body, { 'x-request-id': 'rc-1' })).status).toBe(200);
    expect((await post('/bbs-split', body, { 'x-request-id': 'rc-1' })).status).toBe(200);
    const evs = (await stored('bitbucketserver')).filter((e) => e.subject === 'tags');
    expect(evs.map((e) => e.id)).toEqual(['rc-1-0', 'rc-1-1']);
    expect(evs.map((e) => (e.data as { body: { changes: Array<{ refId: string }> } }).body.changes)).toEqual([
      [change('refs/tags/v1')],
      [change('refs/tags/v2')],
    ]);
  });

  it('bitbucket server: a delivery of more than 1000 changes is refused, not amplified into events', async () => {
    const change = (i: number) => ({
      ref: { id: `refs/tags/v${i}`, type: 'TAG' },
      refId: `refs/tags/v${i}`,
      type: 'ADD',
    });
    const body = JSON.stringify({
      eventKey: 'repo:refs_changed',
      repository: { slug: 'r', project: { key: 'P' } },
      changes: Array.from({ length: 1001 }, (_, i) => change(i)),
    });
    const before = (await stored('bitbucketserver')).length;
    expect((await post('/bbs-split', body, { 'x-request-id': 'rc-big' })).status).toBe(400);
    expect((await stored('bitbucketserver')).length).toBe(before);
  });

  it('bitbucket cloud: no shared secret upstream, so webhook.authSecret guards it; X-Request-UUID as id', async () => {
    const body = JSON.stringify({ push: { changes: [] } });
    const h = { authorization: 'Bearer proxy-bearer', 'x-request-uuid': 'bc-1', 'x-event-key': 'repo:push' };
    expect((await post('/bitbucket', body, h)).status).toBe(200);
    expect((await post('/bitbucket', body, h)).status).toBe(200);
    expect((await post('/bitbucket', body, { 'x-request-uuid': 'bc-2' })).status).toBe(401);
    const evs = await stored('bitbucket');
    expect(evs.map((e) => e.id)).toEqual(['bc-1']);
    const data = evs[0]!.data as { headers: Record<string, string[]> };
    expect(data.headers['X-Event-Key']).toEqual(['repo:push']);
    expect(data.headers.Authorization).toEqual([MASKED_VALUE]);
  });

  it('slack: signed requests only, challenge answered unpublished, event_id as id, forms', async () => {
    const ts = String(Math.floor(Date.now() / 1000));
    const sign = (b: string, t = ts) => ({
      'x-slack-request-timestamp': t,
      'x-slack-signature': `v0=${hmacHex('sha256', SECRETS.sl!, `v0:${t}:${b}`)}`,
    });
    const challenge = JSON.stringify({ token: SECRETS.slt, type: 'url_verification', challenge: 'abc123' });
    const r = await post('/slack', challenge, sign(challenge));
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('abc123');
    const event = JSON.stringify({
      token: SECRETS.slt,
      type: 'event_callback',
      event_id: 'Ev1',
      event: { type: 'message', text: 'hi' },
    });
    expect((await post('/slack', event, sign(event))).status).toBe(200);
    // Slack retries with the same event_id (and a new timestamp): stored once.
    const later = String(Number(ts) + 1);
    expect((await post('/slack', event, { ...sign(event, later), 'x-slack-retry-num': '1' })).status).toBe(
      200,
    );
    const old = String(Math.floor(Date.now() / 1000) - 600);
    expect((await post('/slack', event, sign(event, old))).status).toBe(403);
    expect(
      (await post('/slack', event, { ...sign(event), 'x-slack-signature': `v0=${'1'.repeat(64)}` })).status,
    ).toBe(403);
    expect((await post('/slack', event, {})).status).toBe(401);
    const wrongToken = JSON.stringify({ token: 'other', type: 'event_callback', event_id: 'Ev2', event: {} });
    expect((await post('/slack', wrongToken, sign(wrongToken))).status).toBe(403);
    const form = new URLSearchParams({ command: '/deploy', text: 'shop', user_id: 'U1' }).toString();
    expect((await post('/slack', form, sign(form), 'application/x-www-form-urlencoded')).status).toBe(200);
    const evs = await stored('slack');
    expect(evs).toHaveLength(2);
    expect(evs[0]).toMatchObject({
      id: 'Ev1',
      subject: 'msg',
      data: { type: 'message', Data: { text: 'hi' } },
    });
    expect(evs[1]!.data).toMatchObject({ command: '/deploy', text: 'shop', user_id: 'U1' });
  });

  it('stripe: event id as id, types outside eventFilter acknowledged unpublished, non-events refused', async () => {
    const ev = (id: string, type: string) =>
      JSON.stringify({ id, object: 'event', type, data: { object: {} } });
    expect((await post('/stripe', ev('evt_1', 'charge.succeeded'), {})).status).toBe(200);
    expect((await post('/stripe', ev('evt_1', 'charge.succeeded'), {})).status).toBe(200);
    expect((await post('/stripe', ev('evt_2', 'customer.created'), {})).status).toBe(200);
    expect((await post('/stripe', '{"hello":1}', {})).status).toBe(400);
    const evs = await stored('stripe');
    expect(evs.map((e) => e.id)).toEqual(['evt_1']);
    expect(evs[0]).toMatchObject({
      subject: 'pay',
      data: { event: { id: 'evt_1', type: 'charge.succeeded' }, metadata: { env: 'test' } },
    });
  });

  it('every provider publishes the delivery as sent: numbers, duplicate keys and key order unchanged', async () => {
    // What JSON.parse + JSON.stringify would change: 1234567890123456789 → ...800, 1e400 → null,
    // -0 / 1.0 → 0 / 1, the first "dup" dropped, "2" moved before "b".
    const tricky = '"n":1234567890123456789,"x":1e400,"z":-0,"f":1.0,"dup":1,"dup":2,"b":1,"2":0';
    const gh = `{"ref":"refs/heads/raw",${tricky}}`;
    // go-github decodes the signature's hex: upper case is accepted as well.
    const ghSig = `sha256=${hmacHex('sha256', SECRETS.gh!, gh).toUpperCase()}`;
    expect(
      (await post('/github', gh, { 'x-hub-signature-256': ghSig, 'x-github-delivery': 'gh-raw' })).status,
    ).toBe(200);
    const stripe = `{"id":"evt_raw","object":"event","type":"charge.succeeded",${tricky}}`;
    expect((await post('/stripe', stripe, {})).status).toBe(200);
    const ts = String(Math.floor(Date.now() / 1000));
    const slack = `{"token":"${SECRETS.slt}","type":"event_callback","event_id":"EvRaw","event":{"type":"message",${tricky}}}`;
    const slackSig = `v0=${hmacHex('sha256', SECRETS.sl!, `v0:${ts}:${slack}`)}`;
    expect(
      (await post('/slack', slack, { 'x-slack-request-timestamp': ts, 'x-slack-signature': slackSig }))
        .status,
    ).toBe(200);
    const change = (ref: string) =>
      `{"ref":{"id":"${ref}","type":"TAG"},"refId":"${ref}","type":"ADD",${tricky}}`;
    const bbs = `{"eventKey":"repo:refs_changed",${tricky},"changes":[${change('refs/tags/r1')}, ${change('refs/tags/r2')}]}`;
    expect((await post('/bbs-split', bbs, { 'x-request-id': 'rc-raw' })).status).toBe(200);

    expect((await texts('github')).filter((t) => t.includes(`"body":${gh}`))).toHaveLength(1);
    expect((await texts('stripe')).filter((t) => t.includes(`"event":${stripe}`))).toHaveLength(1);
    expect(
      (await texts('slack')).filter((t) => t.includes(`"Data":{"type":"message",${tricky}}`)),
    ).toHaveLength(1);
    const split = (await texts('bitbucketserver')).filter((t) => t.includes('"rc-raw-'));
    expect(split).toHaveLength(2);
    expect(split[0]).toContain(
      `"body":{"eventKey":"repo:refs_changed",${tricky},"changes":[${change('refs/tags/r1')}]}`,
    );
    expect(split[1]).toContain(
      `"body":{"eventKey":"repo:refs_changed",${tricky},"changes":[${change('refs/tags/r2')}]}`,
    );
    // Still one valid JSON document per event, with the same layout as before.
    for (const t of [...(await texts('github')), ...split]) expect(() => JSON.parse(t)).not.toThrow();
  });
});
