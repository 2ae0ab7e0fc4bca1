// The slow/partial-client attack of slow-clients.test.ts, run as its own process so the test's
// legitimate requests are timed by an event loop the attack does not load. Usage:
//   node slow-attack.ts PORT DURATION_MS [STALLED BODY_TRICKLERS HEADER_TRICKLERS]
// For DURATION_MS: STALLED connections upload a body just under 1 MiB and stall 10 bytes before
// its end; BODY_TRICKLERS send a body byte and HEADER_TRICKLERS a header line about every 2 s.
// Each connection the server cuts is re-opened a second later. Then every socket is destroyed and
// one JSON line of counts is printed.
import { connect, type Socket } from 'node:net';

const [port, durationMs, stalledN = 400, bodyN = 1_500, headerN = 500] = process.argv.slice(2).map(Number);
const MiB = 1024 * 1024;
const sockets = new Set<Socket>();
const headerTricklers = new WeakSet<Socket>();
let attacking = true;
let opened = 0;
let cut = 0;

function open(first: Buffer | string, headers = false): void {
  const s = connect(port!, '127.0.0.1');
  opened++;
  sockets.add(s);
  if (headers) headerTricklers.add(s);
  s.on('error', () => {});
  s.on('data', () => {});
  s.on('connect', () => s.write(first));
  s.on('close', () => {
    sockets.delete(s);
    cut++;
    setTimeout(() => {
      if (attacking) open(first, headers);
    }, 1_000);
  });
}

const bigHead = `POST /orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${MiB}\r\n\r\n`;
const big = Buffer.concat([Buffer.from(bigHead), Buffer.from(`{"pad":"${'x'.repeat(MiB - 18)}`)]);
const bodyHead =
  'POST /orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{';
for (let i = 0; i < stalledN; i++) open(big);
for (let i = 0; i < bodyN; i++) open(bodyHead);
for (let i = 0; i < headerN; i++) open('POST /orders HTTP/1.1\r\nHost: t\r\n', true);

let tick = 0;
const feeder = setInterval(() => {
  tick++;
  let i = 0;
  for (const s of sockets) {
    if (i++ % 20 !== tick % 20 || !s.writable || s.bytesWritten > 100_000) continue;
    s.write(headerTricklers.has(s) ? 'X-T: y\r\n' : ' ');
  }
}, 100);

setTimeout(() => {
  attacking = false;
  clearInterval(feeder);
  const openAtEnd = sockets.size;
  for (const s of sockets) s.destroy();
  process.stdout.write(`${JSON.stringify({ opened, cut, openAtEnd })}\n`);
  setTimeout(() => process.exit(0), 100);
}, durationMs);
