// GitHub hook registration against a local HTTP server answering like the GitHub REST API (the
// real one needs the internet): the hook is created once per repository with the public URL,
// events and secret; a second start finds it and creates nothing; deleteHookOnFinish removes
// what was created; an API error is logged and the source still serves deliveries.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourceSpec } from '../../../src/api/eventsource.ts';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import type { BusRef } from '../../../src/bus/subjects.ts';
import { startEventSource } from '../../../src/eventsources/runtime.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

interface Call {
  method: string;
  path: string;
  auth: string;
  body: unknown;
}

describe.skipIf(natsMissing())(`github hook registration${skipNote(natsMissing())}`, () => {
  let api: Server;
  let apiUrl: string;
  const calls: Call[] = [];
  const hooks = new Map<string, Array<{ id: number; config: { url: string } }>>();
  let nextId = 1;
  let conn: BusConnection;

  beforeAll(async () => {
    api = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = (req.url ?? '').split('?')[0]!;
        const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
        calls.push({ method: req.method ?? '', path, auth: String(req.headers.authorization), body });
        const send = (status: number, json?: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(json === undefined ? '' : JSON.stringify(json));
        };
        if (path.includes('/forbidden/')) return send(403, { message: 'Must have admin rights' });
        const m = /^\/repos\/([^/]+)\/([^/]+)\/hooks(?:\/(\d+))?$/.exec(path);
        if (!m) return send(404, { message: 'Not Found' });
        const key = `${m[1]}/${m[2]}`;
        const list = hooks.get(key) ?? [];
        if (req.method === 'GET') return send(200, list);
        if (req.method === 'POST') {
          const h = { id: nextId++, config: { url: (body as { config: { url: string } }).config.url } };
          hooks.set(key, [...list, h]);
          return send(201, h);
        }
        if (req.method === 'DELETE') {
          hooks.set(
            key,
            list.filter((h) => String(h.id) !== m[3]),
          );
          return send(204);
        }
        send(405);
      });
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
    await new Promise<void>((r) => api.close(() => r()));
  });

  it('creates each hook once, keeps it across restarts, removes it with deleteHookOnFinish', async () => {
    const bus: BusRef = { namespace: uniqueName('ghhooks'), busName: 'default' };
    const cfg = parseStreamConfig('retention: limits'); // no Sensor: keep what is published to read it back
    if (!cfg.ok) throw new Error(cfg.errors.join());
    await ensureStreams(await jetstreamManager(conn.nc), bus, cfg.settings, 1);
    const spec = (deleteHookOnFinish: boolean) =>
      EventSourceSpec.parse({
        github: {
          push: {
            webhook: { port: '0', endpoint: '/push', method: 'POST', url: 'https://events.example.com' },
            repositories: [{ owner: 'acme', names: ['shop', 'forbidden'] }],
            events: ['push', 'pull_request'],
            apiToken: { name: 'gh', key: 'token' },
            webhookSecret: { name: 'gh', key: 'secret' },
            githubBaseURL: apiUrl,
            githubUploadURL: apiUrl,
            deleteHookOnFinish,
          },
        },
      });
    const start = (deleteHookOnFinish: boolean) =>
      startEventSource({
        name: 'gh',
        namespace: bus.namespace,
        spec: spec(deleteHookOnFinish),
        bus,
        publisher: new Publisher(conn.nc),
        nc: conn.nc,
        registry: newRegistry(),
        log: createLogger({ level: 'silent' }),
        resolveSecret: async (sel) => (sel.key === 'token' ? 'ghp_test' : 's3cret'),
        host: '127.0.0.1',
      });
    let es = await start(false);
    await es.stop();
    const posts = calls.filter((c) => c.method === 'POST');
    expect(posts.map((c) => c.path)).toEqual(['/repos/acme/shop/hooks']);
    expect(posts[0]!.auth).toBe('Bearer ghp_test');
    expect(posts[0]!.body).toMatchObject({
      name: 'web',
      events: ['push', 'pull_request'],
      config: { url: 'https://events.example.com/push', content_type: 'json', secret: 's3cret' },
    });
    // Second start: the hook exists, nothing is created; the source still serves (the 403 repo is only logged).
    es = await start(true);
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(1);
    expect(
      (await fetch(`http://127.0.0.1:${es.ports.get('0')}/push`, { method: 'POST', body: '{}' })).status,
    ).toBe(401);
    await es.stop();
    // It created nothing this time, so it deletes nothing.
    expect(calls.filter((c) => c.method === 'DELETE')).toHaveLength(0);
    // A run that creates the hook removes it on stop.
    hooks.clear();
    es = await start(true);
    await es.stop();
    expect(calls.filter((c) => c.method === 'DELETE').map((c) => c.path)).toEqual([
      '/repos/acme/shop/hooks/2',
    ]);
    expect(hooks.get('acme/shop')).toEqual([]);
  });
});
