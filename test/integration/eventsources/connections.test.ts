// Connections as a resource (found attacking the front door): a connection that never sends a byte
// is closed after the header deadline (Node's own deadline starts with the first byte, so such
// connections stayed forever and could fill the connection bound), at the connection bound the
// oldest connections without a request in progress make way for new ones, and neither rule cuts a
// request that is quietly waiting for the bus.
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { post, startFrontDoor } from './front-door.ts';

function silent(port: number): { socket: Socket; closedAt: Promise<number> } {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const closedAt = new Promise<number>((r) => socket.on('close', () => r(Date.now())));
  return { socket, closedAt };
}

describe.skipIf(natsMissing())(`webhook connections${skipNote(natsMissing())}`, () => {
  it('silent connections are closed after the header deadline; at the bound the oldest idle ones make way', async () => {
    const door = await startFrontDoor({
      env: { SLUICE_WEBHOOK_HEADERS_TIMEOUT_MS: '2000', SLUICE_WEBHOOK_MAX_CONNECTIONS: '100' },
    });
    try {
      // Connections already open (the test's own keep-alive from the readiness check) count too:
      // being the oldest without a request in progress, they make way first.
      const busy = await door.es.metricValue('sluice_webhook_connections');
      const opened = Date.now();
      const conns = Array.from({ length: 150 }, () => silent(door.port));
      const closed = await Promise.all(conns.map((c) => c.closedAt.then((t) => t - opened)));
      const atOnce = closed.filter((ms) => ms < 1_000).length;
      const afterDeadline = closed.filter((ms) => ms >= 1_500 && ms < 5_000).length;
      process.stdout.write(`silent connections: ${JSON.stringify({ opened: 150, atOnce, afterDeadline })}\n`);
      expect(atOnce).toBe(50);
      expect(afterDeadline).toBe(100);
      expect(await door.es.metricValue('sluice_webhook_evicted_connections')).toBe(50 + busy);
      expect(await door.es.metricValue('sluice_webhook_refused_connections')).toBe(0);
      expect((await post(door.url, '{"after":1}')).status).toBe(200);
    } finally {
      await door.stop();
    }
  }, 60_000);

  it('a request waiting for the bus longer than the header deadline is not cut', async () => {
    const door = await startFrontDoor({ env: { SLUICE_WEBHOOK_HEADERS_TIMEOUT_MS: '1000' } });
    try {
      door.pauseNats();
      const waiting = post(door.url, '{"patient":1}', { 'idempotency-key': 'patient-1' });
      await new Promise((r) => setTimeout(r, 3_500));
      door.resumeNats();
      const r = await waiting;
      expect(r.status).toBe(200);
      expect(r.ms).toBeGreaterThanOrEqual(3_000);
      expect((await door.stored()).map((e) => e.id)).toEqual(['patient-1']);
    } finally {
      await door.stop();
    }
  }, 60_000);
});
