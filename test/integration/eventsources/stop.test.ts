// Issue 13, item 5: SIGTERM is bounded. `sluice eventsource` stops accepting, cuts clients still
// sending their request, lets requests waiting for the bus finish within the grace period (default
// 10 s) and exits well before the kubelet's SIGKILL (30 s). On main, five slow clients made a stop
// take 43 s.
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { post, startFrontDoor } from './front-door.ts';
import { head, jsonPost, raw } from './raw-http.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens a connection that sends `first` then one more byte every second until closed. */
function slowClient(port: number, first: string, drip: string): { socket: Socket; closed: Promise<void> } {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.on('data', () => {});
  socket.on('connect', () => socket.write(first));
  const timer = setInterval(() => socket.writable && socket.write(drip), 1_000);
  const closed = new Promise<void>((r) =>
    socket.on('close', () => {
      clearInterval(timer);
      r();
    }),
  );
  return { socket, closed };
}

/** SIGTERM; resolves with the time to exit (ms) and the exit code. */
async function term(
  door: Awaited<ReturnType<typeof startFrontDoor>>,
): Promise<{ ms: number; code: number | null }> {
  const t = Date.now();
  await door.es.proc.stop(40_000);
  return { ms: Date.now() - t, code: await door.es.proc.exited() };
}

describe.skipIf(natsMissing())(`bounded graceful stop${skipNote(natsMissing())}`, () => {
  it('SIGTERM with slow clients connected: they are cut and the process exits at once', async () => {
    const door = await startFrontDoor();
    try {
      const json = { 'Content-Type': 'application/json' };
      const clients = [
        ...Array.from({ length: 50 }, () =>
          slowClient(door.port, head('/orders', { ...json, 'Content-Length': 10_000 }), ' '),
        ),
        ...Array.from({ length: 10 }, () =>
          slowClient(door.port, 'POST /orders HTTP/1.1\r\nHost: t\r\n', 'X-A: b\r\n'),
        ),
        ...Array.from({ length: 10 }, () =>
          slowClient(
            door.port,
            `${head('/orders', { ...json, 'Content-Length': 600_000 })}{"pad":"${'x'.repeat(500_000)}`,
            '',
          ),
        ),
      ];
      // Keep-alive connections idle after a request.
      for (let i = 0; i < 10; i++) expect((await post(door.url, `{"i":${i}}`)).status).toBe(200);
      await sleep(1_500);
      const stop = await term(door);
      await Promise.all(clients.map((c) => c.closed));
      process.stdout.write(`stop with 70 slow clients: ${JSON.stringify(stop)}\n`);
      expect(stop.code).toBe(0);
      expect(stop.ms).toBeLessThan(5_000);
    } finally {
      await door.stop();
    }
  }, 60_000);

  it('requests waiting for the bus are answered when it comes back within the grace period', async () => {
    const door = await startFrontDoor();
    try {
      door.pauseNats();
      const waiting = Array.from({ length: 5 }, (_, i) =>
        raw(door.port, [jsonPost('/orders', `{"i":${i}}`, { 'Idempotency-Key': `stop-${i}` })], {
          timeoutMs: 20_000,
          responses: 1,
        }),
      );
      await sleep(500);
      const stopping = term(door);
      await sleep(2_000);
      door.resumeNats();
      const stop = await stopping;
      const answers = (await Promise.all(waiting)).map((r) => r.status);
      const stored = (await door.stored()).map((e) => e.id).sort();
      process.stdout.write(`stop while publishing: ${JSON.stringify({ ...stop, answers, stored })}\n`);
      expect(answers).toEqual([200, 200, 200, 200, 200]);
      expect(stored).toEqual(['stop-0', 'stop-1', 'stop-2', 'stop-3', 'stop-4']);
      expect(stop.code).toBe(0);
      expect(stop.ms).toBeLessThan(10_000);
    } finally {
      await door.stop();
    }
  }, 60_000);

  it('a bus that stays silent past the grace period: 503 and exit within grace + a few seconds', async () => {
    const door = await startFrontDoor({ env: { SLUICE_STOP_GRACE_MS: '3000' } });
    try {
      door.pauseNats();
      const waiting = Array.from({ length: 3 }, (_, i) =>
        raw(door.port, [jsonPost('/orders', `{"i":${i}}`, { 'Idempotency-Key': `late-${i}` })], {
          timeoutMs: 20_000,
          responses: 1,
        }),
      );
      await sleep(500);
      const stop = await term(door);
      const answers = (await Promise.all(waiting)).map((r) => r.status);
      process.stdout.write(`stop with the bus paused: ${JSON.stringify({ ...stop, answers })}\n`);
      expect(answers).toEqual([503, 503, 503]);
      expect(stop.ms).toBeLessThan(3_000 + 5_000);
    } finally {
      door.resumeNats();
      await door.stop();
    }
  }, 60_000);
});
