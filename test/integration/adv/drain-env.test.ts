// Adversarial: SLUICE_SENSOR_DRAIN_MS is checked before the Sensor waits for its bus, and bounded.
// Before the fix a bad value was reported only once the bus answered (a pod whose bus is not up
// sat not-ready without saying its setting was wrong), as a bug (exit 1) rather than bad input
// (exit 2); and a value over Node's timer limit (2^31-1 ms) was taken, making the drain cut the
// calls, and the stop deadline exit 1, the moment SIGTERM came.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { sensorProcess } from '../sensors/fixtures.ts';

const bin = new URL('../../../bin/sluice', import.meta.url).pathname;

/** Runs `sluice sensor` against a bus that is not there; its exit code and output (killed after 15 s). */
function runWith(drain: string): Promise<{ code: number | null; out: string }> {
  const obj = {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Sensor',
    metadata: { name: 'drain-env', namespace: 'adv-drain-env', uid: 'u-de' },
    spec: {
      dependencies: [{ name: 'd', eventSourceName: 'es', eventName: 'e' }],
      triggers: [{ template: { name: 't', log: {} } }],
    },
  };
  // Port 1 on loopback: nothing listens, the Sensor would wait for its bus for ever.
  const { args, env } = sensorProcess(obj, 'nats://127.0.0.1:1');
  return new Promise((resolve) => {
    const p = spawn(bin, args, { env: { ...process.env, ...env, SLUICE_SENSOR_DRAIN_MS: drain } });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c));
    p.stderr.on('data', (c: Buffer) => (out += c));
    const kill = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, out });
    });
  });
}

describe('SLUICE_SENSOR_DRAIN_MS', () => {
  for (const bad of ['soon', '-1', '2500.5', '3000000000']) {
    it(`${bad}: refused at start with exit 2, before waiting for the bus`, async () => {
      const r = await runWith(bad);
      expect(r.out).toContain('SLUICE_SENSOR_DRAIN_MS');
      expect(r.code).toBe(2);
    }, 30_000);
  }
});
