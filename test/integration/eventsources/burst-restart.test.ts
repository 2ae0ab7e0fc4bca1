// Adversary (issue 16): the EventSource now batches the publishes of one event-loop turn into one
// socket write (turn.ts) and answers 2xx only after its event is stored. A burst of webhook
// requests from 32 senders while the nats-server is SIGKILLed and started again (and, in a second
// round, SIGSTOPped past the publish deadline): every request answered 2xx must be in the stream,
// and once (senders send no Idempotency-Key and resend the same body on any other answer).
import { describe, expect, it } from 'vitest';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { type FrontDoor, post, startFrontDoor } from './front-door.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** 32 senders, `n` distinct bodies; each body is resent until 2xx or the deadline. */
async function burst(door: FrontDoor, tag: string, n: number, deadlineMs: number) {
  const accepted = new Set<string>();
  const statuses: Record<string, number> = {};
  let next = 0;
  const end = Date.now() + deadlineMs;
  const sender = async () => {
    for (let i = next++; i < n; i = next++) {
      const probe = `${tag}-${i}`;
      const body = JSON.stringify({ probe, pad: 'x'.repeat(512) });
      for (;;) {
        const r = await post(door.url, body, {}, 15_000);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status >= 200 && r.status < 300) {
          accepted.add(probe);
          // Paced (about 300 bodies/s over 32 senders), so the burst spans the fault.
          await sleep(100);
          break;
        }
        if (Date.now() > end) break;
        await sleep(Math.min(1000, (Number(r.retryAfter) || 0.2) * 1000));
      }
    }
  };
  const done = Promise.all(Array.from({ length: 32 }, sender));
  return { accepted, statuses, done };
}

async function copies(door: FrontDoor, tag: string): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const e of await door.stored()) {
    const probe = (e.data as { body?: { probe?: string } }).body?.probe;
    if (probe?.startsWith(`${tag}-`)) m.set(probe, (m.get(probe) ?? 0) + 1);
  }
  return m;
}

describe.skipIf(natsMissing())(`webhook bursts while the bus restarts${skipNote(natsMissing())}`, () => {
  it('every 2xx-answered request is stored once, through a bus SIGKILL + restart and a long pause', async () => {
    const door = await startFrontDoor({ env: { SLUICE_WEBHOOK_PUBLISH_DEADLINE_MS: '2000' } });
    try {
      // Round 1: SIGKILL the bus mid-burst, start it again 1 s later.
      const r1 = await burst(door, 'kill', 600, 40_000);
      await sleep(700);
      await door.nats.kill();
      await sleep(1000);
      await door.nats.start();
      await r1.done;
      // Round 2: pause the bus past the publish deadline (2 s) mid-burst.
      const r2 = await burst(door, 'stop', 600, 40_000);
      await sleep(500);
      door.pauseNats();
      await sleep(3500);
      door.resumeNats();
      await r2.done;
      await sleep(1000);
      for (const [tag, r] of [
        ['kill', r1],
        ['stop', r2],
      ] as const) {
        const c = await copies(door, tag);
        const missing = [...r.accepted].filter((p) => !c.has(p));
        const dup = [...c].filter(([, k]) => k > 1).length;
        console.log(
          `burst-restart ${tag}: 600 bodies, accepted ${r.accepted.size}, stored ${c.size}, missing ${missing.length}, duplicated ${dup}, answers ${JSON.stringify(r.statuses)}, alive ${door.alive()}`,
        );
        expect(r.accepted.size).toBe(600);
        expect(missing).toEqual([]);
        expect(dup).toBe(0);
      }
      expect(door.alive()).toBe(true);
    } finally {
      await door.stop();
    }
  }, 150_000);
});
