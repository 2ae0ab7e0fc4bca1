// Issue 13, item 4: an ambiguous 503 must not become a duplicate. With the nats-server SIGSTOPped
// (TCP open, nothing answered), a publish sits in a buffer and is stored when the server resumes,
// after the webhook may already have answered. Senders here give no Idempotency-Key and retry on
// 503 as told; every event must be stored exactly once. On main, 3 of 3 such probes were stored
// twice.
import { describe, expect, it } from 'vitest';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { type FrontDoor, post, startFrontDoor } from './front-door.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `body` until it gets a 2xx (honouring Retry-After); returns every status seen. */
async function sendUntilAccepted(door: FrontDoor, body: string, deadlineMs = 60_000): Promise<number[]> {
  const seen: number[] = [];
  const end = Date.now() + deadlineMs;
  for (;;) {
    const r = await post(door.url, body);
    seen.push(r.status);
    if (r.status >= 200 && r.status < 300) return seen;
    if (Date.now() > end) return seen;
    await sleep(Math.min(2_000, (Number(r.retryAfter) || 0.5) * 1000));
  }
}

/** How many stored events carry each body id. */
async function copiesById(door: FrontDoor): Promise<Map<string, number>> {
  const copies = new Map<string, number>();
  for (const e of await door.stored()) {
    const id = (e.data as { body: { probe?: string } }).body.probe;
    if (id) copies.set(id, (copies.get(id) ?? 0) + 1);
  }
  return copies;
}

function tally(statuses: number[][]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const s of statuses.flat()) t[s] = (t[s] ?? 0) + 1;
  return t;
}

describe.skipIf(natsMissing())(`ambiguous 503 with NATS paused${skipNote(natsMissing())}`, () => {
  it('stores every event once: short pause answered 200, long pause 503 then the retry reuses the id', async () => {
    const door = await startFrontDoor({ env: { SLUICE_WEBHOOK_PUBLISH_DEADLINE_MS: '3000' } });
    try {
      // A pause shorter than the publish deadline: the re-published message is confirmed, 200.
      door.pauseNats();
      const short = Array.from({ length: 10 }, (_, i) =>
        sendUntilAccepted(door, JSON.stringify({ probe: `short-${i}` })),
      );
      await sleep(2_000);
      door.resumeNats();
      const shortAnswers = await Promise.all(short);
      expect(shortAnswers.every((s) => s.length === 1 && s[0] === 200)).toBe(true);

      // A pause longer than the deadline: 503, the sender retries, the retry reuses the id.
      door.pauseNats();
      const long = Array.from({ length: 10 }, (_, i) =>
        sendUntilAccepted(door, JSON.stringify({ probe: `long-${i}` })),
      );
      await sleep(8_000);
      door.resumeNats();
      const longAnswers = await Promise.all(long);
      expect(longAnswers.every((s) => s.includes(503) && s[s.length - 1] === 200)).toBe(true);

      const copies = await copiesById(door);
      const counts = {
        shortPause: { requests: 10, answers: tally(shortAnswers) },
        longPause: { requests: 10, answers: tally(longAnswers) },
        storedEvents: [...copies.values()].reduce((a, b) => a + b, 0),
        distinctEvents: copies.size,
        duplicates: [...copies.values()].filter((n) => n > 1).length,
      };
      process.stdout.write(`ambiguous 503: ${JSON.stringify(counts)}\n`);
      expect(counts.distinctEvents).toBe(20);
      expect(counts.duplicates).toBe(0);
      expect(counts.storedEvents).toBe(20);
    } finally {
      await door.stop();
    }
  }, 120_000);

  it('the remembered id outlives the process: a retry after a restart is still the same event', async () => {
    const door = await startFrontDoor({ env: { SLUICE_WEBHOOK_PUBLISH_DEADLINE_MS: '2000' } });
    try {
      door.pauseNats();
      const first = await post(door.url, JSON.stringify({ probe: 'restart-1' }));
      expect(first.status).toBe(503);
      door.resumeNats();
      // The buffered publish is stored now; the id reaches the EventSource's KV bucket.
      await expect.poll(async () => (await copiesById(door)).get('restart-1'), { timeout: 10_000 }).toBe(1);
      await door.restart();
      const retried = await sendUntilAccepted(door, JSON.stringify({ probe: 'restart-1' }));
      expect(retried).toEqual([200]);
      const copies = await copiesById(door);
      process.stdout.write(
        `ambiguous 503 across a restart: ${JSON.stringify({ first: first.status, retry: retried, copies: copies.get('restart-1') })}\n`,
      );
      expect(copies.get('restart-1')).toBe(1);
      // A different request with no key is a new event, as before.
      expect((await post(door.url, JSON.stringify({ probe: 'restart-2' }))).status).toBe(200);
    } finally {
      await door.stop();
    }
  }, 120_000);
});
