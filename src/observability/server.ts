// The small HTTP server every role exposes: /metrics (Prometheus), /healthz (the process is
// alive and not wedged: a role may say it can no longer work, e.g. publishes that never settle)
// and /readyz (it is doing its job: caches synced, bus connected, ...).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface OpsServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** Returns undefined when ready, or the reason it is not. */
  notReady?: () => string | undefined;
  /** Returns undefined while the process can do its job, or why it cannot (/healthz 503). */
  notLive?: () => string | undefined;
}

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': opts.registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`metrics failed: ${err.message}\n`);
        },
      );
      return;
    }
    if (path === '/healthz') {
      const why = opts.notLive?.();
      res.writeHead(why ? 503 : 200, { 'content-type': 'text/plain' });
      res.end(why ? `not live: ${why}\n` : 'ok\n');
      return;
    }
    if (path === '/readyz') {
      const why = opts.notReady?.();
      res.writeHead(why ? 503 : 200, { 'content-type': 'text/plain' });
      res.end(why ? `not ready: ${why}\n` : 'ok\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
