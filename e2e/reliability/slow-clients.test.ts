// Issue 13, item 2: slow and partial clients cannot starve or bloat `sluice eventsource`. Twice, for
// 15 s, a separate process (slow-attack.ts) keeps 400 connections uploading ~1 MiB bodies that
// stall just before the end, 1,500 connections trickling a body byte every 2 s and 500 trickling a
// header line every 2 s, re-opening whatever the server cuts. Meanwhile a legitimate POST every
// 250 ms must be answered 200 within 1 s (nine in ten; every one within 3 s on a loaded machine)
// and resident memory must stay at or below 250 MiB (peaks seen: 185-196); once
// the attackers go, buffered bytes and connections must drop to zero, memory must come down, and
// the second round must not end higher than the first (nothing kept per attack). On main, every
// legitimate POST got 429 and RSS reached 1 GiB and stayed there.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { natsMissing, skipNote } from '../../test/harness/shared.ts';
import { type FrontDoor, post, startFrontDoor } from '../../test/integration/eventsources/front-door.ts';
import { report } from './pipeline.ts';

const ATTACK_MS = 15_000;
const attackScript = fileURLToPath(new URL('./slow-attack.ts', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the attack process for ATTACK_MS (`kinds`: slow-attack.ts counts); resolves with its counts. */
function attack(
  port: number,
  kinds: string[] = [],
): Promise<{ opened: number; cut: number; openAtEnd: number }> {
  return new Promise((resolve, reject) => {
    // 2,400 sockets: raise the open-files soft limit to the hard one first (as bin/sluice does).
    const child = spawn(
      'bash',
      [
        '-c',
        'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"',
        process.execPath,
        '--disable-warning=ExperimentalWarning',
        attackScript,
        String(port),
        String(ATTACK_MS),
        ...kinds,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}'));
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** A JSON body of about `bytes` bytes carrying `id`. */
const bodyOf = (id: string, bytes: number) =>
  JSON.stringify({ id, pad: 'p'.repeat(Math.max(0, bytes - id.length - 20)) });

/**
 * One round: the attack (`kinds`), legitimate requests meanwhile (one sender per size in `sizes`,
 * each a POST every 250 ms), then the way back to idle.
 */
async function round(door: FrontDoor, n: number, kinds: string[] = [], sizes = [64]) {
  const before = door.rss();
  let peak = before;
  const sampler = setInterval(() => {
    if (door.alive()) peak = Math.max(peak, door.rss());
  }, 200);
  const attacking = attack(door.port, kinds);
  let done = false;
  void attacking.finally(() => {
    done = true;
  });
  await sleep(1_500); // the attack is in place
  const legit: Array<{ size: number; status: number; ms: number }> = [];
  await Promise.all(
    sizes.map(async (size) => {
      while (!done) {
        const id = `legit-${n}-${size}-${legit.length}`;
        const r = await post(door.url, bodyOf(id, size), { 'idempotency-key': id }, 10_000);
        legit.push({ size, ...r });
        await sleep(250);
      }
    }),
  );
  const counts = await attacking;
  // A request waiting for room reads nothing, so it may notice its client left only when its
  // wait ends (503 after the 5 s body idle time): every connection is gone soon after.
  const leaving = Date.now();
  await expect.poll(() => door.es.metricValue('sluice_webhook_connections'), { timeout: 45_000 }).toBe(0);
  const drainedMs = Date.now() - leaving;
  await expect.poll(() => door.es.metricValue('sluice_webhook_buffered_bytes'), { timeout: 5_000 }).toBe(0);
  await sleep(3_000); // the collection after the drain (server.ts) has run
  clearInterval(sampler);
  const bySize: Record<
    string,
    { sent: number; ok: number; medianMs: number; worstMs: number; statuses: Record<number, number> }
  > = {};
  for (const size of sizes) {
    const rs = legit.filter((r) => r.size === size);
    const ms = rs.map((r) => r.ms).sort((a, b) => a - b);
    bySize[size] = {
      sent: rs.length,
      ok: rs.filter((r) => r.status === 200).length,
      medianMs: ms[Math.floor(ms.length / 2)]!,
      worstMs: ms[ms.length - 1]!,
      statuses: Object.fromEntries(
        [...new Set(rs.map((r) => r.status))].map((st) => [st, rs.filter((r) => r.status === st).length]),
      ),
    };
  }
  const all = legit.map((r) => r.ms).sort((a, b) => a - b);
  return {
    rssBeforeMiB: before,
    rssPeakMiB: peak,
    rssAfterMiB: door.rss(),
    legitSent: legit.length,
    legitOk: legit.filter((r) => r.status === 200).length,
    legitMedianMs: all[Math.floor(all.length / 2)]!,
    legitP90Ms: all[Math.floor(all.length * 0.9)]!,
    legitWorstMs: all[all.length - 1]!,
    ...(sizes.length > 1 ? { legitBySize: bySize } : {}),
    displaced: await door.es.metricValue('sluice_webhook_displaced_requests'),
    refusedConnections: await door.es.metricValue('sluice_webhook_refused_connections'),
    attackConnectionsOpened: counts.opened,
    attackConnectionsCut: counts.cut,
    attackConnectionsOpenAtEnd: counts.openAtEnd,
    connectionsGoneAfterMs: drainedMs,
  };
}

describe.skipIf(natsMissing())(`slow and partial clients${skipNote(natsMissing())}`, () => {
  it('400 stalled 1 MiB uploads + 2,000 trickling connections: legitimate requests within 1 s, RSS ≤ 250 MiB', async () => {
    const door = await startFrontDoor();
    try {
      const first = await round(door, 1);
      report('slow and partial clients, round 1', first);
      const second = await round(door, 2);
      report('slow and partial clients, round 2', second);
      expect(door.alive()).toBe(true);
      expect(await door.es.metricValue('sluice_unexpected_errors_total')).toBe(0);
      for (const r of [first, second]) {
        expect(r.legitOk).toBe(r.legitSent);
        // Within 1 s (the target) for nine in ten; the slowest one measures the machine as
        // much as the server (a loaded 2-core CI box, with the attack beside it: 0.7-2 s seen).
        expect(r.legitP90Ms).toBeLessThanOrEqual(1_000);
        expect(r.legitWorstMs).toBeLessThanOrEqual(3_000);
        expect(r.rssPeakMiB).toBeLessThanOrEqual(250);
        // Memory comes down once the attack is over...
        expect(r.rssAfterMiB).toBeLessThan(r.rssPeakMiB);
      }
      // ...and nothing piles up from one attack to the next (a leak would add about the attack's
      // whole footprint, ~100 MiB; the allocator's reuse varies by a few tens of MiB).
      expect(second.rssAfterMiB).toBeLessThanOrEqual(first.rssAfterMiB + 40);
    } finally {
      await door.stop();
    }
  }, 240_000);

  // The adversary's small_hold.py (issue 13, break 4): on main the budget stayed full; legitimate
  // 1 KiB requests took up to 15 s, 40 KiB ones got 503s and 20 s hangs, 200 KiB ones mostly 503.
  // Now the holders are slow once judged (~2 s) and displaced by whoever sends: 1 KiB requests all
  // get through; larger ones compete with 600 fresh holders that look legitimate for their first
  // two seconds and ask 2.3 times the whole budget, so part of them are answered 503 +
  // Retry-After, at once or after at most the 5 s wait for room. Nobody is left hanging.
  it('600 never-quiet 64 KiB uploads holding the byte budget: legitimate requests of every size get through', async () => {
    const door = await startFrontDoor();
    try {
      const r = await round(
        door,
        1,
        ['stalled=0', 'body=0', 'header=0', 'hold=600'],
        [1_024, 40_960, 204_800, 1_000_000],
      );
      report('budget held by never-quiet small uploads', r);
      expect(door.alive()).toBe(true);
      const small = r.legitBySize![1_024]!;
      expect(small.ok).toBe(small.sent);
      expect(small.worstMs).toBeLessThanOrEqual(6_000);
      for (const s of Object.values(r.legitBySize!)) {
        expect(Object.keys(s.statuses).every((st) => st === '200' || st === '503')).toBe(true);
        expect(s.worstMs).toBeLessThanOrEqual(7_000);
        expect(s.ok).toBeGreaterThan(0);
      }
      expect(r.rssPeakMiB).toBeLessThanOrEqual(250);
    } finally {
      await door.stop();
    }
  }, 180_000);

  it('400 stalled 1 MiB uploads + connections up to the bound: RSS ≤ 250 MiB and back down after', async () => {
    const door = await startFrontDoor();
    try {
      const cap = await door.es.metricValue('sluice_webhook_connections_limit');
      const r = await round(door, 1, ['stalled=400', 'body=0', 'header=0', `flood=${cap}`]);
      report('stalled uploads + connection flood to the bound', { connectionLimit: cap, ...r });
      expect(door.alive()).toBe(true);
      expect(r.legitOk).toBe(r.legitSent);
      expect(r.legitP90Ms).toBeLessThanOrEqual(1_000);
      expect(r.legitWorstMs).toBeLessThanOrEqual(3_000);
      expect(r.rssPeakMiB).toBeLessThanOrEqual(250);
      expect(r.rssAfterMiB).toBeLessThan(r.rssPeakMiB);
    } finally {
      await door.stop();
    }
  }, 180_000);
});
