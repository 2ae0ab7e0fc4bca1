// Hook registration of the gitlab, bitbucket, bitbucketserver and stripe sources, and of github
// as a GitHub App, against one local HTTP server that answers like each provider's REST API (the
// real ones need the internet) and records every call: each hook is created once, with the
// provider's credentials, public URL, events and secret; a restart finds it and creates nothing;
// deleteHookOnFinish removes what the run created; an API error on one site is logged and the
// others still get their hook; bitbucketserver re-creates a hook deleted behind its back
// (checkInterval) and skips branch updates that have an open pull request.
import { createVerify, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

interface Call {
  method: string;
  path: string;
  query: URLSearchParams;
  auth: string;
  privateToken: string;
  body: unknown;
}

const PUBLIC = 'https://events.example.com';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PEM = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const SECRETS: Record<string, string> = {
  glAccess: 'glpat-1',
  glSecret: 'gl-secret',
  bbUser: 'alice',
  bbPass: 'app-pass',
  bbsToken: 'bbs-token',
  bbsSecret: 'bbs-secret',
  stripeKey: 'sk_test_1',
  ghSecret: 'gh-secret',
  ghKey: PEM,
};

/** Checks a GitHub App JWT: RS256 signature by our key, issuer = app id, not expired. */
function appJwtOk(jwt: string, appID: string): boolean {
  const [h, p, s] = jwt.split('.');
  if (!h || !p || !s) return false;
  const ok = createVerify('RSA-SHA256').update(`${h}.${p}`).verify(publicKey, Buffer.from(s, 'base64url'));
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as { iss: string; exp: number };
  return ok && claims.iss === appID && claims.exp > Date.now() / 1000;
}

describe.skipIf(natsMissing())(`hook registration with provider APIs${skipNote(natsMissing())}`, () => {
  let api: Server;
  let apiUrl: string;
  const calls: Call[] = [];
  /** Hooks per collection path (the URL path of the list), as the stand-in stores them. */
  const hooks = new Map<string, Array<{ id: string; url: string }>>();
  let nextId = 1;
  let conn: BusConnection;
  let bus: BusRef;

  const posts = () => calls.filter((c) => c.method === 'POST');
  const created = () => posts().map((c) => c.path);

  beforeAll(async () => {
    api = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const path = url.pathname;
        const text = Buffer.concat(chunks).toString();
        const form = (req.headers['content-type'] ?? '').includes('form');
        const body = !text
          ? undefined
          : form
            ? Object.fromEntries(new URLSearchParams(text))
            : JSON.parse(text);
        if (form)
          (body as Record<string, unknown>)['enabled_events[]'] = new URLSearchParams(text).getAll(
            'enabled_events[]',
          );
        calls.push({
          method: req.method ?? '',
          path,
          query: url.searchParams,
          auth: String(req.headers.authorization),
          privateToken: String(req.headers['private-token']),
          body,
        });
        const send = (status: number, json?: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(json === undefined ? '' : JSON.stringify(json));
        };
        // GitHub App: installation token for a valid app JWT.
        if (path === '/github/app/installations/7/access_tokens' && req.method === 'POST') {
          const jwt = String(req.headers.authorization).replace(/^Bearer /, '');
          if (!appJwtOk(jwt, '42')) return send(401, { message: 'bad JWT' });
          return send(201, {
            token: 'ghs_installation',
            expires_at: new Date(Date.now() + 3_600_000).toISOString(),
          });
        }
        // Bitbucket Server: repositories of a project, two pages.
        if (path === '/bbs/rest/api/1.0/projects/PRJ/repos') {
          return url.searchParams.get('start') === '1'
            ? send(200, { values: [{ slug: 'b' }], isLastPage: true })
            : send(200, { values: [{ slug: 'a' }], isLastPage: false, nextPageStart: 1 });
        }
        // Bitbucket Server: open pull requests from a branch.
        if (path.endsWith('/pull-requests')) {
          return send(200, {
            values: url.searchParams.get('at') === 'refs/heads/feature' ? [{ id: 1 }] : [],
          });
        }
        if (path.includes('forbidden')) return send(403, { message: 'not allowed' });
        const m = /^(.*\/(?:hooks|webhooks|webhook_endpoints))(?:\/([^/]+))?$/.exec(path);
        if (!m) return send(404, { message: `no route ${path}` });
        const coll = m[1]!;
        const list = hooks.get(coll) ?? [];
        if (req.method === 'GET') {
          const items = coll.startsWith('/github')
            ? list.map((h) => ({ id: Number(h.id), config: { url: h.url } }))
            : coll.startsWith('/bitbucket/')
              ? list.map((h) => ({ uuid: h.id, url: h.url }))
              : list.map((h) => ({ id: coll.startsWith('/stripe') ? h.id : Number(h.id), url: h.url }));
          if (coll.startsWith('/gitlab') || coll.startsWith('/github')) return send(200, items);
          if (coll.startsWith('/stripe')) return send(200, { data: items, has_more: false });
          return send(200, { values: items, isLastPage: true });
        }
        if (req.method === 'POST') {
          const b = body as { url?: string; config?: { url: string } };
          const n = nextId++;
          const id = coll.startsWith('/bitbucket/')
            ? `{uuid-${n}}`
            : coll.startsWith('/stripe')
              ? `we_${n}`
              : String(n);
          hooks.set(coll, [...list, { id, url: b.config?.url ?? b.url ?? '' }]);
          const made = coll.startsWith('/bitbucket/')
            ? { uuid: id }
            : { id: coll.startsWith('/stripe') ? id : n };
          return send(201, made);
        }
        if (req.method === 'DELETE' && m[2]) {
          hooks.set(
            coll,
            list.filter((h) => h.id !== decodeURIComponent(m[2]!)),
          );
          return send(204);
        }
        send(405);
      });
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    process.env.SLUICE_BITBUCKET_API_URL = `${apiUrl}/bitbucket`;
    process.env.SLUICE_STRIPE_API_URL = `${apiUrl}/stripe`;
    conn = await BusConnection.open({ url: natsUrl() });
    bus = { namespace: uniqueName('hooks'), busName: 'default' };
    const cfg = parseStreamConfig('retention: limits'); // no Sensor: keep what is published to read it back
    if (!cfg.ok) throw new Error(cfg.errors.join());
    await ensureStreams(await jetstreamManager(conn.nc), bus, cfg.settings, 1);
  });
  afterAll(async () => {
    await conn?.close();
    await new Promise<void>((r) => api.close(() => r()));
  });

  const spec = (deleteHookOnFinish: boolean) => {
    const webhook = (endpoint: string) => ({ port: '0', endpoint, method: 'POST', url: PUBLIC });
    return EventSourceSpec.parse({
      gitlab: {
        mr: {
          webhook: webhook('/gitlab'),
          projects: ['grp/app', 'forbidden'],
          groups: ['grp'],
          accessToken: { name: 's', key: 'glAccess' },
          secretToken: { name: 's', key: 'glSecret' },
          gitlabBaseURL: `${apiUrl}/gitlab/`,
          events: ['MergeRequestsEvents', 'TagPushEvents'],
          enableSSLVerification: true,
          deleteHookOnFinish,
        },
      },
      bitbucket: {
        push: {
          webhook: webhook('/bitbucket'),
          repositories: [{ owner: 'team', repositorySlug: 'site' }],
          events: ['repo:push', 'pullrequest:created'],
          auth: { basic: { username: { name: 's', key: 'bbUser' }, password: { name: 's', key: 'bbPass' } } },
          deleteHookOnFinish,
        },
      },
      bitbucketserver: {
        refs: {
          webhook: webhook('/bbs'),
          bitbucketserverBaseURL: `${apiUrl}/bbs/rest`,
          projects: ['PRJ'],
          repositories: [{ projectKey: 'X', repositorySlug: 'y' }],
          events: ['repo:refs_changed'],
          accessToken: { name: 's', key: 'bbsToken' },
          webhookSecret: { name: 's', key: 'bbsSecret' },
          skipBranchRefsChangedOnOpenPR: true,
          checkInterval: '150ms',
          deleteHookOnFinish,
        },
      },
      stripe: {
        pay: {
          webhook: webhook('/stripe'),
          createWebhook: true,
          apiKey: { name: 's', key: 'stripeKey' },
          eventFilter: ['charge.succeeded', 'charge.failed'],
        },
      },
      github: {
        app: {
          webhook: webhook('/github'),
          repositories: [{ owner: 'acme', names: ['shop'] }],
          events: ['push'],
          webhookSecret: { name: 's', key: 'ghSecret' },
          githubApp: { appID: 42, installationID: 7, privateKey: { name: 's', key: 'ghKey' } },
          githubBaseURL: `${apiUrl}/github`,
          githubUploadURL: `${apiUrl}/github`,
          deleteHookOnFinish,
        },
      },
    });
  };
  const start = (deleteHookOnFinish: boolean): Promise<RunningEventSource> =>
    startEventSource({
      name: 'hooks',
      namespace: bus.namespace,
      spec: spec(deleteHookOnFinish),
      bus,
      publisher: new Publisher(conn.nc),
      nc: conn.nc,
      registry: newRegistry(),
      log: createLogger({ level: 'silent' }),
      resolveSecret: async (sel) => SECRETS[sel.key] ?? 'unused',
      host: '127.0.0.1',
    });

  it('creates every hook once with the right credentials and settings, and none on a restart', async () => {
    let es = await start(false);
    await es.stop();
    expect(created().sort()).toEqual(
      [
        '/bbs/rest/api/1.0/projects/PRJ/repos/a/webhooks',
        '/bbs/rest/api/1.0/projects/PRJ/repos/b/webhooks',
        '/bbs/rest/api/1.0/projects/X/repos/y/webhooks',
        '/bitbucket/repositories/team/site/hooks',
        '/github/app/installations/7/access_tokens',
        '/github/repos/acme/shop/hooks',
        '/gitlab/api/v4/groups/grp/hooks',
        '/gitlab/api/v4/projects/grp%2Fapp/hooks',
        '/stripe/v1/webhook_endpoints',
      ].sort(),
    );
    const post = (p: string) => posts().find((c) => c.path.endsWith(p))!;
    // GitLab: PRIVATE-TOKEN, the secret token, event fields in GitLab's names, push off unless listed.
    const gl = post('/projects/grp%2Fapp/hooks');
    expect(gl.privateToken).toBe('glpat-1');
    expect(gl.body).toEqual({
      url: `${PUBLIC}/gitlab`,
      push_events: false,
      merge_requests_events: true,
      tag_push_events: true,
      enable_ssl_verification: true,
      token: 'gl-secret',
    });
    // Bitbucket Cloud: basic auth with the app password.
    const bb = post('/repositories/team/site/hooks');
    expect(bb.auth).toBe(`Basic ${Buffer.from('alice:app-pass').toString('base64')}`);
    expect(bb.body).toMatchObject({
      url: `${PUBLIC}/bitbucket`,
      active: true,
      events: ['repo:push', 'pullrequest:created'],
    });
    // Bitbucket Server: bearer token, HMAC secret in the hook configuration.
    const bbs = post('/X/repos/y/webhooks');
    expect(bbs.auth).toBe('Bearer bbs-token');
    expect(bbs.body).toMatchObject({
      url: `${PUBLIC}/bbs`,
      events: ['repo:refs_changed'],
      configuration: { secret: 'bbs-secret' },
    });
    // Stripe: form-encoded, subscribed to the filtered types.
    const st = post('/v1/webhook_endpoints');
    expect(st.auth).toBe('Bearer sk_test_1');
    expect(st.body).toMatchObject({
      url: `${PUBLIC}/stripe`,
      'enabled_events[]': ['charge.succeeded', 'charge.failed'],
    });
    // GitHub App: the hook is created with the installation token the app JWT was exchanged for.
    const gh = post('/repos/acme/shop/hooks');
    expect(gh.auth).toBe('Bearer ghs_installation');
    expect(gh.body).toMatchObject({
      config: { url: `${PUBLIC}/github`, secret: 'gh-secret' },
      events: ['push'],
    });
    // The forbidden project was refused by the API, logged, and did not stop the others.
    expect(calls.some((c) => c.path.includes('forbidden'))).toBe(true);

    // Restart: every hook is found, nothing is created (the app token is fetched again).
    const before = posts().length;
    es = await start(false);
    await es.stop();
    expect(created().slice(before)).toEqual(['/github/app/installations/7/access_tokens']);
    expect(calls.filter((c) => c.method === 'DELETE')).toHaveLength(0);
  });

  it('deleteHookOnFinish removes the hooks the run created; checkInterval re-creates a deleted one', async () => {
    hooks.clear();
    const es = await start(true);
    const bbsColl = '/bbs/rest/api/1.0/projects/X/repos/y/webhooks';
    const createdBefore = posts().filter((c) => c.path === bbsColl).length;
    // Someone deletes the Bitbucket Server hook: the next check puts it back.
    hooks.set(bbsColl, []);
    const deadline = Date.now() + 5_000;
    while ((hooks.get(bbsColl) ?? []).length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(hooks.get(bbsColl)).toHaveLength(1);
    expect(posts().filter((c) => c.path === bbsColl).length).toBe(createdBefore + 1);
    await es.stop();
    const deleted = calls.filter((c) => c.method === 'DELETE').map((c) => c.path.replace(/\/[^/]+$/, ''));
    expect(deleted.sort()).toEqual(
      [
        '/bbs/rest/api/1.0/projects/PRJ/repos/a/webhooks',
        '/bbs/rest/api/1.0/projects/PRJ/repos/b/webhooks',
        bbsColl,
        '/bitbucket/repositories/team/site/hooks',
        '/github/repos/acme/shop/hooks',
        '/gitlab/api/v4/groups/grp/hooks',
        '/gitlab/api/v4/projects/grp%2Fapp/hooks',
      ].sort(),
    );
    // Stripe has no deleteHookOnFinish upstream: its endpoint stays.
    for (const [coll, list] of hooks)
      expect(list, coll).toEqual(coll.startsWith('/stripe') ? [expect.anything()] : []);
  });

  it('bitbucketserver: skipBranchRefsChangedOnOpenPR drops branch updates that have an open pull request', async () => {
    const es = await start(false);
    try {
      const base = `http://127.0.0.1:${es.ports.get('0')}`;
      const { hmacHex } = await import('../../../src/eventsources/webhook/signed.ts');
      const change = (ref: string) => ({ ref: { id: ref, type: 'BRANCH' }, refId: ref, type: 'UPDATE' });
      const send = (id: string, refs: string[]) => {
        const body = JSON.stringify({
          eventKey: 'repo:refs_changed',
          repository: { slug: 'y', project: { key: 'X' } },
          changes: refs.map(change),
        });
        return fetch(`${base}/bbs`, {
          method: 'POST',
          body,
          headers: {
            'content-type': 'application/json',
            'x-request-id': id,
            'x-hub-signature': `sha256=${hmacHex('sha256', SECRETS.bbsSecret!, body)}`,
          },
        });
      };
      expect((await send('r-1', ['refs/heads/feature', 'refs/heads/main'])).status).toBe(200);
      expect((await send('r-2', ['refs/heads/feature'])).status).toBe(200);
      const jsm = await jetstreamManager(conn.nc);
      const info = await jsm.streams.info(eventStreamName(bus));
      const evs: CloudEvent[] = [];
      for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(eventStreamName(bus), { seq }).catch(() => null);
        if (m) evs.push(decodeEvent(m.data));
      }
      expect(evs.map((e) => e.id)).toEqual(['r-1']);
      expect((evs[0]!.data as { body: { changes: unknown[] } }).body.changes).toEqual([
        change('refs/heads/main'),
      ]);
      const prCalls = calls.filter((c) => c.path.endsWith('/pull-requests'));
      expect(prCalls.map((c) => c.query.get('at'))).toEqual([
        'refs/heads/feature',
        'refs/heads/main',
        'refs/heads/feature',
      ]);
      expect(prCalls.every((c) => c.query.get('state') === 'OPEN' && c.auth === 'Bearer bbs-token')).toBe(
        true,
      );
    } finally {
      await es.stop();
    }
  });

  it('bitbucketserver: project and slug from the delivery never build another API path; lookups are bounded', async () => {
    const es = await start(false);
    try {
      const base = `http://127.0.0.1:${es.ports.get('0')}`;
      const { hmacHex } = await import('../../../src/eventsources/webhook/signed.ts');
      const { MAX_PR_LOOKUPS } = await import('../../../src/eventsources/webhook/bitbucketserver.ts');
      const change = (ref: string) => ({ ref: { id: ref, type: 'BRANCH' }, refId: ref, type: 'UPDATE' });
      const send = (id: string, repository: unknown, refs: string[]) => {
        const body = JSON.stringify({ eventKey: 'repo:refs_changed', repository, changes: refs.map(change) });
        return fetch(`${base}/bbs`, {
          method: 'POST',
          body,
          headers: {
            'content-type': 'application/json',
            'x-request-id': id,
            'x-hub-signature': `sha256=${hmacHex('sha256', SECRETS.bbsSecret!, body)}`,
          },
        });
      };
      const before = calls.length;
      // Path tricks in the (possibly unsigned) body: nothing is asked, every change is kept.
      for (const [i, repo] of [
        { slug: '..', project: { key: 'X' } },
        { slug: 'y', project: { key: '../../admin' } },
        { slug: 'a/b', project: { key: 'X' } },
        { slug: 'y', project: { key: 'X..' } },
      ].entries()) {
        expect((await send(`t-${i}`, repo, ['refs/heads/feature'])).status).toBe(200);
      }
      expect(calls.slice(before)).toEqual([]);
      // 200 branch updates: at most MAX_PR_LOOKUPS calls; the rest are kept unchecked.
      const refs = Array.from({ length: 200 }, (_, i) => `refs/heads/b${i}`);
      const started = Date.now();
      expect((await send('many', { slug: 'y', project: { key: 'X' } }, refs)).status).toBe(200);
      const asked = calls.slice(before).filter((c) => c.path.endsWith('/pull-requests'));
      process.stdout.write(
        `bitbucketserver lookups: ${JSON.stringify({ changes: 200, calls: asked.length, ms: Date.now() - started })}\n`,
      );
      expect(asked.length).toBe(MAX_PR_LOOKUPS);
      expect(asked.every((c) => c.path.includes('/projects/X/repos/y/'))).toBe(true);
    } finally {
      await es.stop();
    }
  });
});
