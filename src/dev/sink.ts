// A tiny HTTP sink for demos (`sluice dev --sink PORT`): prints each request it receives and
// answers 200, or 500 when the JSON body has `"fail": true`, so retries and dead letters can be
// watched without writing a server. Each idempotency key is counted once as an "effect".
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DevSink {
  url: string;
  close(): Promise<void>;
}

export async function startDevSink(
  port: number,
  host: string,
  say: (line: string) => void,
): Promise<DevSink> {
  const seen = new Set<string>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let fail = false;
      try {
        fail = (JSON.parse(text) as { fail?: unknown })?.fail === true;
      } catch {
        // not JSON: fine
      }
      const key = String(req.headers['idempotency-key'] ?? '');
      const repeat = key !== '' && seen.has(key) && !fail;
      if (!fail && key) seen.add(key);
      const status = fail ? 500 : 200;
      say(
        `sink: ${req.method} ${req.url} ${text.slice(0, 200)} -> ${status}${repeat ? ' (repeat of an effect already done)' : ''}`,
      );
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(fail ? 'failing on purpose ("fail": true)\n' : 'ok\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://localhost:${actual}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
