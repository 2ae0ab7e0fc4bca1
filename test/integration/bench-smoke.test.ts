// The S2–S4 benchmark scripts in smoke mode (BENCH_SMOKE=1: tiny counts, short runs), each as a
// child process with its own nats-server: each must exit 0 and write its result file with the
// measured numbers and the machine details. The three run at once to keep the file short.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { natsMissing, skipNote } from '../harness/shared.ts';

const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));

function runScript(name: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = new URL(`../../bench/${name}.ts`, import.meta.url).pathname;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', script],
      {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, BENCH_SMOKE: '1', BENCH_RESULTS_DIR: dir },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const result = (scenario: string) =>
  JSON.parse(readFileSync(join(dir, `${scenario}.smoke.json`), 'utf8')) as Record<string, unknown>;

describe.skipIf(natsMissing())(`benchmarks in smoke mode${skipNote(natsMissing())}`, () => {
  it('S2 sensor, S3 webhook and S4 triggers exit 0 and write their results', async () => {
    const [sensor, webhook, triggers] = await Promise.all([
      runScript('sensor'),
      runScript('webhook'),
      runScript('triggers'),
    ]);
    for (const [name, r] of Object.entries({ sensor, webhook, triggers })) {
      expect(r.code, `${name}: ${r.stderr}\n${r.stdout}`).toBe(0);
    }

    const s2 = result('sensor');
    expect(s2).toMatchObject({ scenario: 'sensor', smoke: true, triggerCalls: { oneDependency: s2.events } });
    const rates = s2.eventsPerSec as Record<string, number>;
    for (const k of ['raw1', 'sluice1', 'rawAnd', 'sluiceAnd']) expect(rates[k]).toBeGreaterThan(0);
    expect(sensor.stdout).toContain('S2 consume');

    const s3 = result('webhook');
    expect(s3).toMatchObject({ scenario: 'webhook', zeroLoss: { held: true, duplicates: 0 } });
    const levels = s3.sluice as Array<{
      accepted: number;
      pendingAfterDrain: number;
      e2eLatencyMs: { n: number };
    }>;
    expect(levels.length).toBeGreaterThan(0);
    for (const l of levels) {
      expect(l.accepted).toBeGreaterThan(0);
      expect(l.e2eLatencyMs.n).toBe(l.accepted);
    }
    expect(webhook.stdout).toContain('zero loss: HELD');

    const s4 = result('triggers');
    const f = s4.failures as Record<string, unknown>;
    expect(f.checks).toEqual({
      retriesExact: true,
      dlqRecordsExact: true,
      dlqTriggerCallsExact: true,
      noDuplicateEffects: true,
      everyOtherEventDelivered: true,
    });
    expect(f.retries).toBe(f.expectedRetries);
    expect((s4.rateLimit as { neverAboveLimitInAnySecond: unknown }).neverAboveLimitInAnySecond).toBeTypeOf(
      'boolean',
    );

    for (const r of [s2, s3, s4]) {
      expect(r.machine).toMatchObject({
        cores: expect.any(Number),
        cpuModel: expect.any(String),
        node: process.version,
        natsServer: expect.stringMatching(/nats-server/),
      });
    }
  });
});
