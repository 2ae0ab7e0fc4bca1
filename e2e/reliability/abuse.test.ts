// Issue 13, item 7: the abuse suite. Over 200 generated hostile requests (hostile.ts: truncated,
// trickled, oversized, deep, malformed, smuggled, pipelined, header abuse) and well-formed ones in
// between, 25 at a time, against a running `sluice eventsource` and a real nats-server. Counts:
// the process stays up and serves, nothing refused is published, no smuggled request is ever
// published, and every request answered 2xx is stored exactly once.
import { describe, expect, it } from 'vitest';
import { natsMissing, skipNote } from '../../test/harness/shared.ts';
import { post, startFrontDoor } from '../../test/integration/eventsources/front-door.ts';
import { raw } from '../../test/integration/eventsources/raw-http.ts';
import { type HostileCase, hostileCases } from './hostile.ts';
import { report } from './pipeline.ts';

const MAX_PAYLOAD = 65_536;
const CONCURRENCY = 25;

interface Outcome {
  c: HostileCase;
  statuses: number[];
  ended: string;
}

async function runAll(port: number, cases: HostileCase[]): Promise<Outcome[]> {
  const out: Outcome[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < cases.length; i = next++) {
        const c = cases[i]!;
        const r = await raw(port, c.parts, c.options);
        out.push({ c, statuses: r.statuses.filter((s) => s !== 100), ended: r.ended });
      }
    }),
  );
  return out;
}

describe.skipIf(natsMissing())(`abuse suite${skipNote(natsMissing())}`, () => {
  it('200+ hostile requests: alive, nothing refused published, every 2xx stored exactly once', async () => {
    const door = await startFrontDoor({ webhook: { maxPayloadSize: MAX_PAYLOAD } });
    try {
      const cases = hostileCases(15, MAX_PAYLOAD);
      const started = Date.now();
      const outcomes = await runAll(door.port, cases);
      const secs = Math.round((Date.now() - started) / 1000);
      // Anything still being published settles before counting.
      await expect.poll(() => door.es.metricValue('sluice_webhook_connections'), { timeout: 35_000 }).toBe(0);

      const copies = new Map<string, number>();
      for (const e of await door.stored()) {
        const probe = (e.data as { body?: { probe?: unknown } }).body?.probe;
        if (typeof probe === 'string') copies.set(probe, (copies.get(probe) ?? 0) + 1);
      }
      const problems: string[] = [];
      const byCategory: Record<string, Record<string, number>> = {};
      let accepted = 0;
      let refused = 0;
      for (const { c, statuses, ended } of outcomes) {
        const label = statuses.length ? statuses.join('+') : ended;
        byCategory[c.category] ??= {};
        byCategory[c.category]![label] = (byCategory[c.category]![label] ?? 0) + 1;
        for (const s of c.smuggled)
          if (copies.has(s)) problems.push(`${c.name}: smuggled ${s} was published`);
        const ok = statuses.filter((s) => s >= 200 && s < 300).length;
        accepted += ok;
        if (c.expect === 'refused') {
          if (ok > 0) problems.push(`${c.name}: answered ${label}`);
          else refused++;
          for (const pr of c.probes)
            if (copies.has(pr)) problems.push(`${c.name}: refused but ${pr} published`);
        }
        // Well-formed requests (also when pipelined, or followed by garbage) are answered 2xx first.
        if (c.expect === 'valid' && ok < c.probes.length) {
          problems.push(`${c.name}: answered ${label}`);
        }
        // Every 2xx answer means stored exactly once (pipelined answers come in request order).
        c.probes.slice(0, ok).forEach((pr) => {
          if (copies.get(pr) !== 1)
            problems.push(`${c.name}: ${pr} answered 2xx, stored ${copies.get(pr) ?? 0}x`);
        });
        for (const pr of c.probes)
          if ((copies.get(pr) ?? 0) > 1) problems.push(`${c.name}: ${pr} stored twice`);
      }
      const counts = {
        cases: cases.length,
        requests: cases.reduce((a, c) => a + Math.max(1, c.probes.length, c.smuggled.length ? 2 : 1), 0),
        hostile: cases.filter((c) => c.expect === 'refused').length,
        refused,
        accepted2xx: accepted,
        stored: [...copies.values()].reduce((a, b) => a + b, 0),
        alive: door.alive(),
        unexpectedErrors: await door.es.metricValue('sluice_unexpected_errors_total'),
        secs,
        byCategory,
        problems: problems.slice(0, 20),
      };
      report('abuse suite', counts);
      expect(counts.hostile).toBeGreaterThanOrEqual(200);
      expect(problems).toEqual([]);
      expect(door.alive()).toBe(true);
      expect(counts.unexpectedErrors).toBe(0);
      expect((await fetch(`${door.base}/health`)).status).toBe(200);
      expect((await post(door.url, '{"probe":"after"}')).status).toBe(200);
    } finally {
      await door.stop();
    }
  }, 240_000);
});
