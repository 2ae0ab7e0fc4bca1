// Event ids from outside, against `sluice eventsource` and a real nats-server (found attacking the
// front door). An id that can never be published (CR/LF, too long) must be refused at once with
// 400 and must not cost the process anything: on main, ~80 unsigned Stripe deliveries whose `id`
// held CR/LF were each re-published for 10 s and answered 503 (so the sender retries forever),
// and every attempt leaked a publisher slot until all publishing of the process waited forever
// while /health still said OK. And the same Idempotency-Key with other content must not be
// silently swallowed (on main: 5 bodies, 5 × 200, 1 stored).
import { describe, expect, it } from 'vitest';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { post, startFrontDoor } from './front-door.ts';

describe.skipIf(natsMissing())(`event ids from outside${skipNote(natsMissing())}`, () => {
  it('ids that can never be published are refused 400 at once, and the process keeps publishing', async () => {
    const door = await startFrontDoor({ sources: { stripe: { st: { webhook: { endpoint: '/stripe' } } } } });
    try {
      const stripe = `${door.base}/stripe`;
      const started = Date.now();
      const hostile = await Promise.all(
        Array.from({ length: 150 }, (_, i) =>
          post(stripe, JSON.stringify({ id: `evt_${i}\r\nx`, type: 'charge.succeeded' })),
        ),
      );
      const long = await post(
        stripe,
        JSON.stringify({ id: `evt_${'x'.repeat(300)}`, type: 'charge.succeeded' }),
      );
      const badKey = await post(door.url, '{"k":1}', { 'idempotency-key': 'k'.repeat(300) });
      const hostileMs = Date.now() - started;
      const answers = hostile.map((r) => r.status);
      // Afterwards everything works: plain webhook, Stripe, health, liveness, readiness.
      const after = [
        (await post(door.url, '{"after":1}')).status,
        (await post(stripe, JSON.stringify({ id: `evt_ok_${Date.now()}`, type: 'charge.succeeded' }))).status,
      ];
      const health = (await fetch(`${door.base}/health`)).status;
      const counts = {
        hostile: answers.length,
        answered400: answers.filter((s) => s === 400).length,
        hostileMs,
        long: long.status,
        badIdempotencyKey: badKey.status,
        after,
        health,
        healthz: await door.ops('/healthz'),
        readyz: await door.ops('/readyz'),
        stored: await door.storedCount(),
      };
      process.stdout.write(`unpublishable ids: ${JSON.stringify(counts)}\n`);
      expect(counts.answered400).toBe(150);
      expect(long.status).toBe(400);
      expect(badKey.status).toBe(400);
      expect(hostileMs).toBeLessThan(10_000);
      expect(after).toEqual([200, 200]);
      expect([health, counts.healthz, counts.readyz]).toEqual([200, 200, 200]);
      expect(counts.stored).toBe(2);
    } finally {
      await door.stop();
    }
  }, 90_000);

  it('the same Idempotency-Key with other content is 422; with the same content, one event', async () => {
    const door = await startFrontDoor();
    try {
      const key = { 'idempotency-key': `order-${Date.now()}` };
      const same = [];
      for (let i = 0; i < 3; i++) same.push((await post(door.url, '{"amount":1}', key)).status);
      const other = [];
      for (let i = 2; i <= 5; i++) other.push((await post(door.url, `{"amount":${i}}`, key)).status);
      const stored = await door.stored();
      process.stdout.write(
        `idempotency key reuse: ${JSON.stringify({ same, other, stored: stored.length })}\n`,
      );
      expect(same).toEqual([200, 200, 200]);
      expect(other).toEqual([422, 422, 422, 422]);
      expect(stored.map((e) => e.id)).toEqual([key['idempotency-key']]);
    } finally {
      await door.stop();
    }
  }, 60_000);
});
