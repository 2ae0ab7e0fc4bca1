// `sluice dev -f examples/quickstart` as a user runs it (what `make run` does): it starts its own
// nats-server, prints the webhook and metrics URLs, a POSTed order reaches the demo sink, a
// failing one is retried and dead-lettered, an edited manifest is reloaded, and Ctrl-C stops it
// cleanly.
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../test/harness/ports.ts';
import { waitFor } from '../test/harness/proc.ts';
import { natsMissing, skipNote } from '../test/harness/shared.ts';
import { findTool } from '../test/harness/tools.ts';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin/sluice');

describe.skipIf(natsMissing())(`sluice dev quickstart${skipNote(natsMissing())}`, () => {
  it('runs the quickstart: webhook → sensor → sink, retries + DLQ, reload, clean Ctrl-C', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quickstart-'));
    cpSync(join(root, 'examples/quickstart'), dir, { recursive: true });
    const hookPort = await freePort();
    const sinkPort = await freePort();
    const rewrite = (file: string, f: (s: string) => string) =>
      writeFileSync(join(dir, file), f(readFileSync(join(dir, file), 'utf8')));
    rewrite('eventsource.yaml', (s) => s.replaceAll('12000', String(hookPort)));
    rewrite('sensor.yaml', (s) =>
      s.replaceAll('localhost:8090', `localhost:${sinkPort}`).replace('duration: 1s', 'duration: 50ms'),
    );

    let out = '';
    const nats = findTool('nats-server').path!;
    const child: ChildProcess = spawn(
      bin,
      [
        'dev',
        '-f',
        dir,
        '--sink',
        String(sinkPort),
        '--metrics-port',
        '0',
        '--state-dir',
        join(dir, '.sluice'),
      ],
      {
        env: { ...process.env, SLUICE_NATS_SERVER: nats, KUBECONFIG: join(dir, 'no-kubeconfig') },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await waitFor('ready', () => out.includes('ready; Ctrl-C to stop'), {
        timeoutMs: 30_000,
        onTimeout: () => out,
      });
      expect(out).toContain(`webhook orders: http://localhost:${hookPort}/orders`);
      expect(out).toMatch(/metrics: http:\/\/localhost:\d+\/metrics/);
      const post = (body: unknown) =>
        fetch(`http://127.0.0.1:${hookPort}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      expect((await post({ id: 'A-1', amount: 42 })).status).toBe(200);
      await waitFor('sink got the order', () => /sink: POST \/orders .*"orderId":"A-1".*-> 200/.test(out), {
        onTimeout: () => out,
      });
      expect((await post({ id: 'A-2', fail: true })).status).toBe(200);
      await waitFor('dead letter', () => out.includes('trigger dead-lettered'), { onTimeout: () => out });
      expect(out.match(/"orderId":"A-2"[^\n]*"fail":true[^\n]*-> 500/g)).toHaveLength(3);
      expect(out).toContain('"outcome":"logged"');

      const metricsUrl = /metrics: (http:\S+)/.exec(out)![1]!;
      const text = await (await fetch(metricsUrl)).text();
      expect(text).toMatch(/argo_events_events_sent_total\{[^}]*eventsource_name="webhook"[^}]*\} 2/);
      expect(text).toMatch(/argo_events_action_triggered_total\{[^}]*trigger_name="notify-sink"[^}]*\} 1/);
      expect(text).toMatch(/sluice_sensor_dead_letters_total\{[^}]*trigger_name="notify-sink"[^}]*\} 1/);

      rewrite('sensor.yaml', (s) => s.replace('requestsPerUnit: 10', 'requestsPerUnit: 20'));
      await waitFor(
        'reload',
        () =>
          out.includes('manifests changed: reloading') &&
          /Sensor default\/orders running[\s\S]*Sensor default\/orders running/.test(out),
        { onTimeout: () => out },
      );
      expect((await post({ id: 'A-3' })).status).toBe(200);
      await waitFor('sink got the order after reload', () => out.includes('"orderId":"A-3"'), {
        onTimeout: () => out,
      });
    } finally {
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    }
    expect(out).toContain('stopping');
  }, 90_000);
});
