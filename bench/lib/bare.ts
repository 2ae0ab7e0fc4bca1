// S3 baseline: a bare Node HTTP server, in its own process, that reads the body and answers 202.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveParent } from './child.ts';
import { HOST } from './common.ts';

let received = 0;
const server = createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    received++;
    res.writeHead(202, { 'content-type': 'text/plain' });
    res.end('accepted\n');
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, HOST, () => {
  serveParent(
    { url: `http://${HOST}:${(server.address() as AddressInfo).port}` },
    { received: () => received },
  );
});
