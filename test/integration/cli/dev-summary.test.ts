// `sluice dev` ends its start with a summary naming every object that did not start and why, and
// never says `ready` then; with --strict it stops and exits 2 (bin/sluice as a subprocess on the
// shared nats-server; one EventSource's webhook port is taken, one Sensor is invalid).
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { bareEnv, sluice } from './run.ts';

const bin = new URL('../../../bin/sluice', import.meta.url).pathname;

describe.skipIf(natsMissing())(`sluice dev start summary${skipNote(natsMissing())}`, () => {
  let taken: Server;
  let takenPort: number;
  const ns = uniqueName('devsum');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-devsum-'));
  const folder = join(dir, 'manifests');
  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    takenPort = (taken.address() as { port: number }).port;
    const { mkdirSync } = await import('node:fs');
    mkdirSync(folder);
    const meta = (name: string) => `metadata: {name: ${name}, namespace: ${ns}}`;
    writeFileSync(
      join(folder, 'a-sensor.yaml'),
      `apiVersion: argoproj.io/v1alpha1\nkind: Sensor\n${meta('orders')}\nspec:\n  dependencies: [{name: d, eventSourceName: hooks, eventName: orders}]\n  triggers: [{template: {name: log, log: {}}}]\n`,
    );
    writeFileSync(
      join(folder, 'b-source.yaml'),
      `apiVersion: argoproj.io/v1alpha1\nkind: EventSource\n${meta('hooks')}\nspec:\n  webhook:\n    orders: {port: "${takenPort}", endpoint: /orders, method: POST}\n`,
    );
    writeFileSync(
      join(folder, 'c-broken.yaml'),
      `apiVersion: argoproj.io/v1alpha1\nkind: Sensor\n${meta('broken')}\nspec:\n  dependencies: [{name: d, eventSourceName: hooks, eventName: orders}]\n`,
    );
  });
  afterAll(() => new Promise<void>((r) => taken.close(() => r())));
  const args = () => [
    'dev',
    '-f',
    folder,
    '--nats-url',
    natsUrl(),
    '--metrics-port',
    '0',
    '--state-dir',
    join(dir, 'state'),
    '--no-watch',
    '--log-level',
    'error',
  ];

  it('names what did not start and why, runs the rest, and never says ready', async () => {
    const p = spawn(bin, args(), { env: bareEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((r) => p.on('close', (code) => r(code)));
    try {
      await waitFor('the start summary', () => /^started with problems: .*$/m.test(out), {
        timeoutMs: 60_000,
        onTimeout: () => out,
      });
      const lines = out.split('\n');
      const at = lines.indexOf('not started (2):');
      expect(at).toBeGreaterThan(-1);
      expect(lines.slice(at + 1, at + 3)).toEqual(
        expect.arrayContaining([
          expect.stringMatching(
            new RegExp(
              `^  EventSource/${ns}/hooks: .*EADDRINUSE.*${takenPort}.*\\(${folder}/b-source\\.yaml\\)$`,
            ),
          ),
          expect.stringMatching(/^ {2}invalid manifest: .*c-broken\.yaml: Sensor\/broken: spec\.triggers: /),
        ]),
      );
      expect(lines[at + 3]).toMatch(/^started with problems: 1 object\(s\) running, 2 not; /);
      expect(out).toContain(`Sensor ${ns}/orders running: log`);
      expect(out).not.toMatch(/^ready/m);
      // The bus gauge of the pods is there too, so SluiceBusUnreachable can be tried locally.
      const metrics = out.match(/^metrics: (http:\S+)$/m)![1]!;
      expect(await (await fetch(metrics)).text()).toMatch(/^sluice_bus_connected 1$/m);
    } finally {
      p.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  }, 90_000);

  it('--strict stops and exits 2 when something did not start', async () => {
    const r = await sluice([...args(), '--strict']);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('not started (2):');
    expect(r.stdout).not.toMatch(/^ready|^started with problems/m);
    expect(r.stderr.trim().split('\n').at(-1)).toBe(
      'sluice dev: 2 object(s) did not start (listed on standard output); stopping (--strict)',
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 90_000);
});
