// Protocol edge cases of the informer that a real API server produces only rarely or with poor
// timing control, played by a scripted loopback HTTP server: resuming from a BOOKMARK's version,
// a watch answered with HTTP 410 (not an ERROR event), and a LIST continue token that expired.
// The common paths run against the real API server in test/integration/controller.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { type EventOrigin, Informer } from '../../../src/controller/informer.ts';

type Handler = (url: URL, res: ServerResponse, req: IncomingMessage) => void;

async function scriptedServer(handle: Handler) {
  const requests: URL[] = [];
  const open = new Set<ServerResponse>();
  const srv = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(url);
    open.add(res);
    res.on('close', () => open.delete(res));
    handle(url, res, req);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  if (!addr || typeof addr === 'string') throw new Error('no port');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${addr.port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return {
    kc,
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const res of open) res.destroy();
        srv.close(() => r());
      }),
  };
}

const cmObj = (name: string, rv: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'ns', resourceVersion: rv },
});
const item = (name: string, rv: string) => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });
const json = (res: ServerResponse, code: number, body: unknown) => {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
};
const expired = { kind: 'Status', status: 'Failure', reason: 'Expired', code: 410, message: 'too old' };

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup) await c();
  cleanup = [];
});

describe('Informer protocol handling (scripted server)', () => {
  it('pages the LIST, falls back to one full LIST when the continue token expired, resumes from a bookmark, relists on HTTP 410', async () => {
    let watches = 0;
    let relisted = false;
    const server = await scriptedServer((url, res) => {
      const q = url.searchParams;
      if (q.get('watch') !== 'true') {
        if (relisted) {
          // After the 410: a changed, b gone, c unchanged.
          json(res, 200, {
            kind: 'ConfigMapList',
            apiVersion: 'v1',
            metadata: { resourceVersion: '20' },
            items: [item('a', '19'), item('c', '12')],
          });
        } else if (q.get('continue') === 'tok') {
          json(res, 410, { ...expired, reason: 'Expired', message: 'continue token expired' });
        } else if (q.get('limit')) {
          json(res, 200, {
            kind: 'ConfigMapList',
            apiVersion: 'v1',
            metadata: { resourceVersion: '10', continue: 'tok' },
            items: [item('a', '5')],
          });
        } else {
          json(res, 200, {
            kind: 'ConfigMapList',
            apiVersion: 'v1',
            metadata: { resourceVersion: '11' },
            items: [item('a', '5'), item('b', '6')],
          });
        }
        return;
      }
      watches++;
      if (watches === 1) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(`${JSON.stringify({ type: 'ADDED', object: cmObj('c', '12') })}\n`);
        // A bookmark moves the resume point without touching the cache.
        res.end(
          `${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: '13' } } })}\n`,
        );
      } else if (watches === 2) {
        relisted = true;
        json(res, 410, expired);
      } else {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(''); // held open until the informer stops
      }
    });
    cleanup.push(server.close);
    const events: Array<[string, string, EventOrigin]> = [];
    const relists: string[] = [];
    const restarts: string[] = [];
    const inf = new Informer({
      kubeConfig: server.kc,
      path: '/api/v1/configmaps',
      namespace: 'ns',
      pageSize: 1,
      backoff: { initialMs: 10, maxMs: 20 },
      hooks: { relist: (r) => relists.push(r), watchRestart: (r) => restarts.push(r) },
    });
    inf.addEventHandler({
      onAdd: (o, origin) => events.push(['add', o.metadata?.name ?? '', origin]),
      onUpdate: (_o, n, origin) => events.push(['update', n.metadata?.name ?? '', origin]),
      onDelete: (o, origin) => events.push(['delete', o.metadata?.name ?? '', origin]),
    });
    inf.start();
    cleanup.push(() => inf.stop());
    await inf.waitForSync(5000);
    await expect.poll(() => watches, { timeout: 5000 }).toBe(3);
    await expect.poll(() => inf.lastSyncResourceVersion(), { timeout: 5000 }).toBe('20');

    const lists = server.requests.filter((u) => u.searchParams.get('watch') !== 'true');
    expect(
      lists.map((u) => [u.pathname, u.searchParams.get('limit'), u.searchParams.get('continue')]),
    ).toEqual([
      ['/api/v1/namespaces/ns/configmaps', '1', null],
      ['/api/v1/namespaces/ns/configmaps', '1', 'tok'],
      ['/api/v1/namespaces/ns/configmaps', null, null],
      ['/api/v1/namespaces/ns/configmaps', '1', null],
    ]);
    const watchUrls = server.requests.filter((u) => u.searchParams.get('watch') === 'true');
    expect(watchUrls.map((u) => u.searchParams.get('resourceVersion'))).toEqual(['11', '13', '20']);
    expect(watchUrls.every((u) => u.searchParams.get('allowWatchBookmarks') === 'true')).toBe(true);
    expect(watchUrls.every((u) => Number(u.searchParams.get('timeoutSeconds')) >= 300)).toBe(true);

    expect(events).toEqual([
      ['add', 'a', 'initial-list'],
      ['add', 'b', 'initial-list'],
      ['add', 'c', 'watch'],
      ['delete', 'b', 'relist'],
      ['update', 'a', 'relist'],
    ]);
    expect(relists).toEqual(['initial', 'gone']);
    expect(restarts).toEqual(['closed', 'gone']);
    // LIST items are stamped with the list's kind.
    expect(inf.get('ns/a')).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap' });
  });

  it('backs off instead of spinning when the server keeps failing, and recovers', async () => {
    let lists = 0;
    const server = await scriptedServer((url, res) => {
      if (url.searchParams.get('watch') === 'true') {
        res.writeHead(200);
        res.write('');
        return;
      }
      lists++;
      if (lists <= 4) json(res, 500, { kind: 'Status', code: 500, message: 'etcd unavailable' });
      else
        json(res, 200, {
          kind: 'ConfigMapList',
          apiVersion: 'v1',
          metadata: { resourceVersion: '1' },
          items: [],
        });
    });
    cleanup.push(server.close);
    const errors: string[] = [];
    const inf = new Informer({
      kubeConfig: server.kc,
      path: '/api/v1/configmaps',
      backoff: { initialMs: 40, maxMs: 160 },
      hooks: { error: (_e, phase) => errors.push(phase) },
    });
    const t0 = Date.now();
    inf.start();
    cleanup.push(() => inf.stop());
    await inf.waitForSync(5000);
    // Four failures back off at least 20+40+80+80 ms (half of 40, 80, 160, 160 as the jitter floor).
    expect(Date.now() - t0).toBeGreaterThanOrEqual(220);
    expect(errors).toEqual(['list', 'list', 'list', 'list']);
  });

  it('a handler that throws does not stop the others or the informer', async () => {
    const server = await scriptedServer((url, res) => {
      if (url.searchParams.get('watch') === 'true') {
        res.writeHead(200);
        res.write('');
        return;
      }
      json(res, 200, {
        kind: 'ConfigMapList',
        apiVersion: 'v1',
        metadata: { resourceVersion: '1' },
        items: [item('a', '1')],
      });
    });
    cleanup.push(server.close);
    const errors: string[] = [];
    const seen: string[] = [];
    const inf = new Informer({
      kubeConfig: server.kc,
      path: '/api/v1/configmaps',
      hooks: { error: (_e, phase) => errors.push(phase) },
    });
    inf.addEventHandler({
      onAdd: () => {
        throw new Error('bad handler');
      },
    });
    inf.addEventHandler({ onAdd: (o) => seen.push(o.metadata?.name ?? '') });
    inf.start();
    cleanup.push(() => inf.stop());
    await inf.waitForSync(5000);
    expect(seen).toEqual(['a']);
    expect(errors).toEqual(['handler']);
  });
});
