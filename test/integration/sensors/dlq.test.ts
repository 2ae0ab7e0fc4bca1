// `sluice dlq` against a real nats-server: dead letters are listed and shown with filters; after
// the sink is fixed, `replay` delivers every dead letter once, a second replay does nothing, and
// purge removes what is left.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { newBus, runSensor, startSink, until } from './fixtures.ts';

const bin = new URL('../../../bin/sluice', import.meta.url).pathname;

// Asynchronous on purpose: the HTTP sink the CLI calls lives in this process.
function sluice(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(natsMissing())(`sluice dlq${skipNote(natsMissing())}`, () => {
  it('replay after fixing the sink delivers every dead letter once; again is a no-op', async () => {
    const b = await newBus(natsUrl());
    let fixed = false;
    const sink = await startSink(() => (fixed ? 200 : 500));
    const spec = {
      dependencies: [{ name: 'order', eventSourceName: 'hooks', eventName: 'dl' }],
      triggers: [
        {
          template: {
            name: 'call',
            http: {
              url: `${sink.url}/x`,
              payload: [{ src: { dependencyName: 'order', dataKey: 'n' }, dest: 'n' }],
            },
          },
          retryStrategy: { steps: 2, duration: '10ms' },
        },
      ],
    };
    const s = await runSensor(b, 'dl-sensor', spec);
    const common = ['--nats-url', natsUrl(), '-n', b.bus.namespace, '--bus', 'default'];
    try {
      for (let i = 0; i < 12; i++) await b.emit('hooks', 'dl', { n: i });
      await until('12 dead letters', async () => (await b.deadLetters()).length === 12);
      await s.stop();

      const list = await sluice(['dlq', 'list', ...common, '--sensor', 'dl-sensor', '--json']);
      expect(list.code).toBe(0);
      const rows = JSON.parse(list.stdout) as Array<{ seq: number; trigger: string; attempts: number }>;
      expect(rows).toHaveLength(12);
      expect(rows.every((r) => r.trigger === 'call' && r.attempts === 2)).toBe(true);
      expect(
        JSON.parse((await sluice(['dlq', 'list', ...common, '--sensor', 'other', '--json'])).stdout),
      ).toHaveLength(0);
      expect(
        JSON.parse(
          (
            await sluice([
              'dlq',
              'list',
              ...common,
              '--since',
              '2026-01-01T00:00:00Z',
              '--until',
              '2026-01-02T00:00:00Z',
              '--json',
            ])
          ).stdout,
        ),
      ).toHaveLength(0);

      const show = await sluice(['dlq', 'show', ...common, String(rows[0]!.seq)]);
      expect(show.code).toBe(0);
      expect(JSON.parse(show.stdout)).toMatchObject({
        sensor: 'dl-sensor',
        error: { message: expect.stringMatching(/HTTP 500/) },
      });

      const dir = mkdtempSync(join(tmpdir(), 'dlq-'));
      const file = join(dir, 'sensor.yaml');
      writeFileSync(
        file,
        stringify({
          apiVersion: 'argoproj.io/v1alpha1',
          kind: 'Sensor',
          metadata: { name: 'dl-sensor' },
          spec,
        }),
      );

      const failing = await sluice(['dlq', 'replay', ...common, '--sensor', 'dl-sensor', '-f', file]);
      expect(failing.code).toBe(1);
      expect(JSON.parse(failing.stdout)).toMatchObject({ total: 12, delivered: 0, failed: 12 });
      expect(await b.deadLetters()).toHaveLength(12);

      fixed = true;
      const before = sink.requests.length;
      const replay = await sluice(['dlq', 'replay', ...common, '--sensor', 'dl-sensor', '-f', file]);
      expect(replay.stderr).toContain('replaying [');
      expect(replay.code).toBe(0);
      expect(JSON.parse(replay.stdout)).toMatchObject({ total: 12, delivered: 12, failed: 0 });
      const ok = sink.requests.slice(before).filter((r) => r.status === 200);
      expect(ok).toHaveLength(12);
      expect(new Set(ok.map((r) => (r.body as { n: number }).n)).size).toBe(12);
      expect(await b.deadLetters()).toHaveLength(0);

      const again = await sluice(['dlq', 'replay', ...common, '--sensor', 'dl-sensor', '-f', file]);
      expect(JSON.parse(again.stdout)).toMatchObject({ total: 0 });
      expect(sink.requests.filter((r) => r.status === 200)).toHaveLength(12);

      const purgeAll = await sluice(['dlq', 'purge', ...common]);
      expect(purgeAll.code).toBe(2);
      expect(purgeAll.stderr).toContain('--all');
    } finally {
      await sink.close();
      await b.conn.close();
    }
  }, 90_000);

  it.each([2, 3])(
    '%i concurrent replays: exactly one effect per record, every run exits 0',
    async (runs) => {
      const b = await newBus(natsUrl());
      let fixed = false;
      // A slow sink (400 ms per call once fixed), so the replay processes overlap on the same records.
      const requests: Array<{ status: number; body: unknown }> = [];
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const status = fixed ? 200 : 500;
          setTimeout(
            () => {
              requests.push({ status, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
              res.writeHead(status);
              res.end();
            },
            fixed ? 400 : 0,
          );
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const sink = {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        requests,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      };
      const spec = {
        dependencies: [{ name: 'order', eventSourceName: 'hooks', eventName: 'cc' }],
        triggers: [
          {
            template: {
              name: 'call',
              http: {
                url: `${sink.url}/x`,
                payload: [{ src: { dependencyName: 'order', dataKey: 'n' }, dest: 'n' }],
              },
            },
          },
        ],
      };
      const name = `cc-${runs}`;
      const s = await runSensor(b, name, spec);
      const common = ['--nats-url', natsUrl(), '-n', b.bus.namespace, '--bus', 'default'];
      try {
        const records = 20;
        for (let i = 0; i < records; i++) await b.emit('hooks', 'cc', { n: i });
        await until('dead letters', async () => (await b.deadLetters()).length === records);
        await s.stop();
        const dir = mkdtempSync(join(tmpdir(), 'dlq-'));
        const file = join(dir, 'sensor.yaml');
        writeFileSync(
          file,
          stringify({ apiVersion: 'argoproj.io/v1alpha1', kind: 'Sensor', metadata: { name }, spec }),
        );
        fixed = true;
        const before = sink.requests.length;
        const results = await Promise.all(
          Array.from({ length: runs }, () =>
            sluice(['dlq', 'replay', ...common, '--sensor', name, '-f', file]),
          ),
        );
        const summaries = results.map((r) => JSON.parse(r.stdout) as Record<string, number>);
        const effects = sink.requests.slice(before).filter((r) => r.status === 200);
        const perRecord = new Map<number, number>();
        for (const e of effects) {
          const n = (e.body as { n: number }).n;
          perRecord.set(n, (perRecord.get(n) ?? 0) + 1);
        }
        process.stdout.write(
          `concurrent replays=${runs}: exit codes ${results.map((r) => r.code).join(',')}; effects ${effects.length} for ${records} records; summaries ${JSON.stringify(summaries)}\n`,
        );
        expect(results.map((r) => r.code)).toEqual(Array(runs).fill(0));
        expect(perRecord.size).toBe(records);
        expect([...perRecord.values()].every((c) => c === 1)).toBe(true);
        expect(summaries.reduce((a, x) => a + (x.delivered ?? 0), 0)).toBe(records);
        expect(summaries.every((x) => x.failed === 0 && x.deferred === 0)).toBe(true);
        // the runs did contend: records were seen by more than one run
        expect(summaries.reduce((a, x) => a + (x.total ?? 0), 0)).toBeGreaterThan(records);
        expect(await b.deadLetters()).toHaveLength(0);
      } finally {
        await sink.close();
        await b.conn.close();
      }
    },
    120_000,
  );
});
