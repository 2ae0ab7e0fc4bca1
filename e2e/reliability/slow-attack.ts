// The slow/partial-client attacks of slow-clients.test.ts, run as their own process so the test's
// legitimate requests are timed by an event loop the attack does not load. Usage:
//   node slow-attack.ts PORT DURATION_MS [stalled=400] [body=1500] [header=500] [hold=0] [flood=0]
// For DURATION_MS, each kind of connection is kept open, re-opened a second after the server cuts it:
//   stalled  uploads a body just under 1 MiB and stalls before its end, sending one more byte every
//            4 s (under the 5 s body idle timeout: as the adversary's stalled_big.py)
//   body     sends a JSON head declaring 100,000 bytes, then a body byte about every 2 s
//   header   sends a header line about every 2 s, never finishing the header section
//   hold     declares 64 KiB (a "small" request), sends 65,000 bytes at once, then one byte every
//            200 ms: never quiet, holding the byte budget (the adversary's small_hold.py)
//   flood    connections that send one header byte every 3 s (the adversary's conn_cap.py), opened
//            0.5 ms apart: fills the connection bound
// Then every socket is destroyed and one JSON line of counts is printed.
import { connect, type Socket } from 'node:net';

const [portArg, durationArg, ...rest] = process.argv.slice(2);
const port = Number(portArg);
const durationMs = Number(durationArg);
const counts = { stalled: 400, body: 1_500, header: 500, hold: 0, flood: 0 };
for (const kv of rest) {
  const [k, v] = kv.split('=');
  if (k && k in counts) counts[k as keyof typeof counts] = Number(v);
}
const MiB = 1024 * 1024;
const sockets = new Set<Socket>();
/** What each socket sends when it is due: every `every` feeder ticks (100 ms), staggered. */
interface Drip {
  every: number;
  next(): string | undefined;
}
const drips = new Map<Socket, Drip>();
let attacking = true;
let opened = 0;
let cut = 0;

function open(first: Buffer | string, drip: () => Drip): void {
  const s = connect(port, '127.0.0.1');
  opened++;
  sockets.add(s);
  s.on('error', () => {});
  s.on('data', () => {});
  s.on('connect', () => {
    s.write(first);
    drips.set(s, drip());
  });
  s.on('close', () => {
    sockets.delete(s);
    drips.delete(s);
    cut++;
    setTimeout(() => {
      if (attacking) open(first, drip);
    }, 1_000);
  });
}

/** A drip that sends `text` every `ms`, at most `limit` times. */
const drip = (ms: number, limit: number, text: string) => (): Drip => {
  let n = 0;
  return { every: Math.round(ms / 100), next: () => (n++ < limit ? text : undefined) };
};

const bigHead = `POST /orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${MiB}\r\n\r\n`;
const big = Buffer.concat([Buffer.from(bigHead), Buffer.from(`{"pad":"${'x'.repeat(MiB - 18)}`)]);
const bodyHead =
  'POST /orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{';
const holdHead = `POST /orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n{"a":"${'x'.repeat(65_000 - 6)}`;

for (let i = 0; i < counts.stalled; i++) open(big, drip(4_000, 9, ' '));
for (let i = 0; i < counts.body; i++) open(bodyHead, drip(2_000, 99_000, ' '));
for (let i = 0; i < counts.header; i++)
  open('POST /orders HTTP/1.1\r\nHost: t\r\n', drip(2_000, 1e9, 'X-T: y\r\n'));
for (let i = 0; i < counts.hold; i++) open(holdHead, drip(200, 530, 'x'));
const flood = 'GET /health HTTP/1.1\r\nX-aaaaaaaaaaaaaaaaaaaaaaaaaa: b\r\n';
for (let i = 0; i < counts.flood; i++) {
  setTimeout(() => {
    if (!attacking) return;
    open(flood[0]!, () => {
      let at = 1;
      return { every: 30, next: () => (at < flood.length ? flood[at++] : undefined) };
    });
  }, i * 0.5);
}

// Every 100 ms, the sockets whose turn it is (staggered by their position) get their drip.
let tick = 0;
const feeder = setInterval(() => {
  tick++;
  let i = 0;
  for (const [s, d] of drips) {
    i++;
    if (i % d.every !== tick % d.every || !s.writable) continue;
    const text = d.next();
    if (text !== undefined) s.write(text);
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
