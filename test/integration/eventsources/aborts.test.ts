// Issue 13, item 1: a client that gives up in the middle of its request (FIN or RST) at any stage
// (headers, between headers and body, mid-body, mid-chunk, body complete, while the event is being
// published) never crashes or wedges `sluice eventsource`: legitimate traffic running at the same
// time is all accepted, nothing reaches the process guard, and every byte and connection the
// aborted requests held is given back. On main, the first mid-body abort killed the process.
import { describe, expect, it } from 'vitest';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { post, startFrontDoor } from './front-door.ts';
import { head, jsonPost, type Part, raw } from './raw-http.ts';

const JSON_HEAD = { 'Content-Type': 'application/json' };

/** Each stage a request can be abandoned at, as the bytes sent before giving up. */
function stages(tag: string): Record<string, Part[]> {
  return {
    'mid-headers': ['POST /orders HTTP/1.1\r\nHost: test\r\nContent-Ty'],
    'after headers': [head('/orders', { ...JSON_HEAD, 'Content-Length': 100 })],
    'mid-body': [head('/orders', { ...JSON_HEAD, 'Content-Length': 100 }), 20, '{"id":'],
    'mid-chunk': [head('/orders', { ...JSON_HEAD, 'Transfer-Encoding': 'chunked' }), 'a\r\n{"id":"x"'],
    'body complete': [jsonPost('/orders', `{"id":"${tag}"}`, { 'Idempotency-Key': tag })],
  };
}

describe.skipIf(natsMissing())(`front door: aborted uploads${skipNote(natsMissing())}`, () => {
  it('FIN and RST at every stage, under load, while publishing too: the process stays up and serves', async () => {
    const door = await startFrontDoor();
    try {
      let loading = true;
      const legit = { sent: 0, ok: 0, maxMs: 0, ids: [] as string[] };
      const load = Promise.all(
        Array.from({ length: 6 }, async (_, w) => {
          for (let i = 0; loading; i++) {
            const id = `legit-${w}-${i}`;
            const r = await post(door.url, JSON.stringify({ id }), { 'idempotency-key': id });
            legit.sent++;
            legit.maxMs = Math.max(legit.maxMs, r.ms);
            if (r.status === 200) {
              legit.ok++;
              legit.ids.push(id);
            }
          }
        }),
      );
      const outcomes = new Map<string, number>();
      let aborted = 0;
      for (let round = 0; round < 10; round++) {
        const batch: Array<Promise<unknown>> = [];
        for (const [stage, parts] of Object.entries(stages(`abort-${round}`))) {
          for (const finish of ['fin', 'rst'] as const) {
            aborted++;
            batch.push(
              raw(door.port, parts, { finish, timeoutMs: 12_000 }).then((r) => {
                const k = `${stage}/${finish}/${r.status ?? r.ended}`;
                outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
              }),
            );
          }
        }
        await Promise.all(batch);
      }
      // Aborted while the bus is paused: the requests are certainly waiting for the PubAck.
      door.pauseNats();
      const publishing = Array.from({ length: 20 }, (_, i) =>
        raw(door.port, [jsonPost('/orders', `{"id":"pub-${i}"}`, { 'Idempotency-Key': `pub-${i}` }), 300], {
          finish: i % 2 ? 'rst' : 'fin',
          timeoutMs: 1_000,
        }),
      );
      await Promise.all(publishing);
      aborted += publishing.length;
      door.resumeNats();
      loading = false;
      await load;

      expect(door.alive()).toBe(true);
      expect((await fetch(`${door.base}/health`)).status).toBe(200);
      expect((await post(door.url, '{"id":"after"}', { 'idempotency-key': 'after' })).status).toBe(200);
      expect(await door.es.metricValue('sluice_unexpected_errors_total')).toBe(0);
      expect(legit.ok).toBe(legit.sent);
      // A client that half-closes after a complete request still gets its answer.
      expect(outcomes.get('body complete/fin/200')).toBe(10);
      // Everything the aborted requests held is given back.
      await expect
        .poll(async () => door.es.metricValue('sluice_webhook_buffered_bytes'), { timeout: 15_000 })
        .toBe(0);
      await expect
        .poll(async () => door.es.metricValue('sluice_webhook_connections'), { timeout: 15_000 })
        .toBeLessThanOrEqual(1);
      const ids = (await door.stored()).map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const id of legit.ids) expect(ids).toContain(id);
      process.stdout.write(
        `front door aborts: ${JSON.stringify({
          aborted,
          legitSent: legit.sent,
          legitOk: legit.ok,
          legitMaxMs: legit.maxMs,
          stored: ids.length,
          storedAbortedDuringPublish: ids.filter((i) => i.startsWith('pub-')).length,
          outcomes: Object.fromEntries(outcomes),
        })}\n`,
      );
    } finally {
      await door.stop();
    }
  }, 120_000);
});
