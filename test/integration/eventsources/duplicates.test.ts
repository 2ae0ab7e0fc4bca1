// Ways an ambiguous answer still became a duplicate on main (found attacking the front door), each
// against `sluice eventsource` and a real nats-server that the test pauses (SIGSTOP: TCP stays
// open, a publish sits in a buffer and is stored when the server resumes). Senders give no
// Idempotency-Key unless said, and retry as told. On main:
// - a proxy's X-Request-Id (a new one per attempt) was the event id: the retry was a new event;
// - a retry that overlapped the first attempt (sender timeout shorter than the publish deadline)
//   got a new id: stored twice;
// - SIGTERM with the bus paused answered 503 while the ids could not be stored: 44-49 of 50
//   retries after the restart were stored twice;
// - SIGKILL during an unconfirmed publish: nothing remembered the id (2 of 5 runs duplicated);
// - one ambiguous 503 made three other senders' identical bodies "retries" (200, not stored);
// - a request pipelined behind a Host-less one (Node answers 400 + close) was published although
//   its sender never got an answer.
import { describe, expect, it } from 'vitest';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { type FrontDoor, post, startFrontDoor } from './front-door.ts';
import { raw } from './raw-http.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once the stored count has not changed for `quietMs` (at most 15 s). */
async function settled(door: FrontDoor, quietMs = 2_000): Promise<number> {
  let last = -1;
  let since = Date.now();
  for (const end = Date.now() + 15_000; Date.now() < end; await sleep(200)) {
    const n = await door.storedCount();
    if (n !== last) {
      last = n;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) break;
  }
  return last;
}

/** Tally of statuses. */
function tally(statuses: number[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const s of statuses) t[s] = (t[s] ?? 0) + 1;
  return t;
}

/** Sends until a 2xx (honouring Retry-After); returns every status seen. */
async function untilAccepted(door: FrontDoor, body: string, headers: Record<string, string> = {}) {
  const seen: number[] = [];
  const end = Date.now() + 60_000;
  for (;;) {
    const r = await post(door.url, body, headers);
    seen.push(r.status);
    if ((r.status >= 200 && r.status < 300) || Date.now() > end) return seen;
    await sleep(Math.min(2_000, (Number(r.retryAfter) || 0.5) * 1000));
  }
}

const tag = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2)}`;

describe.skipIf(natsMissing())(`no duplicate after an ambiguous answer${skipNote(natsMissing())}`, () => {
  it('a new X-Request-Id per attempt (a proxy) does not make the retry a new event', async () => {
    const door = await startFrontDoor({ env: { SLUICE_WEBHOOK_PUBLISH_DEADLINE_MS: '2000' } });
    try {
      const marker = tag('xrid');
      const body = JSON.stringify({ marker });
      door.pauseNats();
      const first = await post(door.url, body, { 'x-request-id': crypto.randomUUID() });
      door.resumeNats();
      await expect.poll(() => door.copies(marker), { timeout: 10_000 }).toBe(1);
      const retry = await untilAccepted(door, body, { 'x-request-id': crypto.randomUUID() });
      const copies = await door.copies(marker);
      process.stdout.write(
        `X-Request-Id per attempt: ${JSON.stringify({ first: first.status, retry, copies })}\n`,
      );
      expect(first.status).toBe(503);
      expect(retry).toEqual([200]);
      expect(copies).toBe(1);
    } finally {
      await door.stop();
    }
  }, 60_000);

  it('a retry that overlaps the first attempt joins its id; identical requests at once are one event', async () => {
    const door = await startFrontDoor();
    try {
      const marker = tag('overlap');
      const body = JSON.stringify({ marker });
      door.pauseNats();
      const first = await post(door.url, body, {}, 1_000); // the sender gives up after 1 s
      const retry = untilAccepted(door, body); // ... and retries while the first still publishes
      await sleep(1_500);
      door.resumeNats();
      const answers = await retry;
      await sleep(500);
      const copies = await door.copies(marker);
      process.stdout.write(
        `overlapping retry: ${JSON.stringify({ first: first.status, retry: answers, copies })}\n`,
      );
      expect(first.status).toBe(0);
      expect(answers).toEqual([200]);
      expect(copies).toBe(1);
    } finally {
      await door.stop();
    }
  }, 60_000);

  it('other senders posting the same bytes are their own events; the first sender’s retry is not', async () => {
    const door = await startFrontDoor({ env: { SLUICE_WEBHOOK_PUBLISH_DEADLINE_MS: '2000' } });
    try {
      const marker = tag('alert');
      const body = JSON.stringify({ alert: 'disk full', host: 'db1', marker });
      door.pauseNats();
      const a = await post(door.url, body, { 'user-agent': 'monitor-A' });
      door.resumeNats();
      await expect.poll(() => door.copies(marker), { timeout: 10_000 }).toBe(1);
      const others = [];
      for (const s of ['monitor-B', 'monitor-C', 'monitor-D']) {
        others.push((await post(door.url, body, { 'user-agent': s })).status);
      }
      const afterOthers = await door.copies(marker);
      const aRetry = (await post(door.url, body, { 'user-agent': 'monitor-A' })).status;
      const afterRetry = await door.copies(marker);
      // A got its 200: the next identical request from A's software is a new delivery.
      const aAgain = (await post(door.url, body, { 'user-agent': 'monitor-A' })).status;
      const counts = {
        a: a.status,
        others,
        afterOthers,
        aRetry,
        afterRetry,
        aAgain,
        final: await door.copies(marker),
      };
      process.stdout.write(`same bytes, several senders: ${JSON.stringify(counts)}\n`);
      expect(a.status).toBe(503);
      expect(others).toEqual([200, 200, 200]);
      expect(afterOthers).toBe(4);
      expect(aRetry).toBe(200);
      expect(afterRetry).toBe(4);
      expect(counts.final).toBe(5);
    } finally {
      await door.stop();
    }
  }, 60_000);

  it('a request pipelined behind one Node refuses (no Host) is never published', async () => {
    const door = await startFrontDoor();
    try {
      const marker = tag('smuggled');
      const statuses: number[][] = [];
      for (let i = 0; i < 10; i++) {
        const b = JSON.stringify({ m: `${marker}-${i}` });
        const inner = `POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n${b}`;
        const r = await raw(door.port, [`POST /orders HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}${inner}`], {
          timeoutMs: 3_000,
        });
        statuses.push(r.statuses);
      }
      await expect((await post(door.url, '{"after":1}')).status).toBe(200);
      const copies = await door.copies(marker);
      process.stdout.write(`pipelined behind a Host-less request: ${JSON.stringify({ statuses, copies })}\n`);
      expect(statuses.every((s) => s.length === 1 && s[0] === 400)).toBe(true);
      expect(copies).toBe(0);
    } finally {
      await door.stop();
    }
  }, 60_000);

  /**
   * Pauses the bus, sends `n` requests without a key (all at once, or after the bus has been slow
   * for a moment), ends the process (`how`), resumes the bus, starts the process again (on the
   * same disk or as a new pod) and retries each request until accepted; returns the counts.
   */
  async function endMidPublish(o: { how: 'SIGTERM' | 'SIGKILL'; newPod: boolean; slowFirst: boolean }) {
    const door = await startFrontDoor({ env: { SLUICE_STOP_GRACE_MS: '2000' } });
    try {
      const marker = tag(o.how);
      const bodies = Array.from({ length: 30 }, (_, i) => JSON.stringify({ m: `${marker}-${i}` }));
      door.pauseNats();
      const waiting: Array<ReturnType<typeof post>> = [];
      if (o.slowFirst) {
        // A request with a key first; then the bus has been slow for a while when the others come.
        waiting.push(post(door.url, '{"warm":1}', { 'idempotency-key': `${marker}-warm` }, 30_000));
        await sleep(300);
      }
      for (const b of bodies) {
        waiting.push(post(door.url, b, {}, 30_000));
        if (o.slowFirst) await sleep(20);
      }
      await sleep(1_000);
      if (o.how === 'SIGTERM') await door.es.proc.stop(20_000);
      else await door.es.proc.kill();
      const first = (await Promise.all(waiting)).map((r) => r.status);
      door.resumeNats();
      // What the ended process had sent lands now (all of it, part of it, or none).
      const landed = await settled(door);
      await door.start(o.newPod);
      const retries = await Promise.all(bodies.map((b) => untilAccepted(door, b)));
      await sleep(500);
      const texts = await door.texts();
      const copies = bodies.map((b) => texts.filter((t) => t.includes(`"${JSON.parse(b).m}"`)).length);
      const counts = {
        firstAnswers: tally(first),
        landedAfterResume: landed,
        retries: tally(retries.flat()),
        stored: copies.reduce((a, b) => a + b, 0),
        duplicates: copies.filter((c) => c > 1).length,
      };
      process.stdout.write(
        `${o.how} with the bus paused (${JSON.stringify(o)}), then retries: ${JSON.stringify(counts)}\n`,
      );
      return { first, counts };
    } finally {
      await door.stop();
    }
  }

  it('SIGTERM with the bus paused, restarted on the same disk: the 503s are not duplicates when retried', async () => {
    const { first, counts } = await endMidPublish({ how: 'SIGTERM', newPod: false, slowFirst: false });
    expect(first.every((s) => s === 503)).toBe(true);
    expect(counts.duplicates).toBe(0);
    expect(counts.stored).toBe(30);
  }, 120_000);

  it('SIGTERM with the bus paused, replaced by a new pod: the 503s are not duplicates when retried', async () => {
    const { first, counts } = await endMidPublish({ how: 'SIGTERM', newPod: true, slowFirst: true });
    expect(first.filter((s) => s === 503).length).toBe(31);
    expect(counts.duplicates).toBe(0);
    expect(counts.stored).toBe(30);
  }, 120_000);

  it('SIGKILL with publishes unconfirmed, replaced by a new pod: the retries are the same events', async () => {
    const { first, counts } = await endMidPublish({ how: 'SIGKILL', newPod: true, slowFirst: true });
    expect(first.every((s) => s === 0)).toBe(true);
    expect(counts.duplicates).toBe(0);
    expect(counts.stored).toBe(30);
  }, 120_000);
});
