// `sluice dlq` as a user meets it, against real nats-servers: replay from a folder of manifests
// names every record it could not replay and why (a Secret missing from the folder), then
// succeeds once the Secret is beside the Sensor; purge lists with --dry-run, refuses without
// --yes off a terminal, asks on one (no keeps everything, yes removes exactly the selection);
// the bus's credentials (NKey seed + CA) work on a secured bus and their absence is one line.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { startNatsCluster } from '../../harness/nats-cluster.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { newBus, runSensor, until } from '../sensors/fixtures.ts';
import { expectUserError, sluice } from './run.ts';

/** A sink that fails /junk always and /orders until fixed, and keeps each request's Authorization. */
async function startSink() {
  const state = { fixed: false, ok: [] as Array<{ auth: string; n: number }> };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const good = state.fixed && req.url === '/orders';
      if (good) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { n: number };
        state.ok.push({ auth: String(req.headers.authorization ?? ''), n: body.n });
      }
      res.writeHead(good ? 200 : 500);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, state, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const trigger = (name: string, url: string, extra: Record<string, unknown> = {}) => ({
  template: {
    name,
    http: { url, payload: [{ src: { dependencyName: 'd', dataKey: 'n' }, dest: 'n' }], ...extra },
  },
  retryStrategy: { steps: 1 },
});

describe.skipIf(natsMissing())(`sluice dlq for users${skipNote(natsMissing())}`, () => {
  it('replay names each failed record and why; purge dry-runs, confirms and removes the selection', async () => {
    const b = await newBus(natsUrl());
    const sink = await startSink();
    const ns = b.bus.namespace;
    const orders = {
      dependencies: [{ name: 'd', eventSourceName: 'hooks', eventName: 'o' }],
      triggers: [
        trigger('call', `${sink.url}/orders`, {
          secureHeaders: [
            { name: 'Authorization', valueFrom: { secretKeyRef: { name: 'sink-auth', key: 'token' } } },
          ],
        }),
      ],
    };
    const junk = {
      dependencies: [{ name: 'd', eventSourceName: 'hooks', eventName: 'j' }],
      triggers: [trigger('a', `${sink.url}/junk`), trigger('b', `${sink.url}/junk`)],
    };
    const running = [
      await runSensor(b, 'orders', orders, { resolveSecret: async () => 'Bearer old' }),
      await runSensor(b, 'junk', junk),
    ];
    const dir = mkdtempSync(join(tmpdir(), 'sluice-dlqcli-'));
    const manifests = join(dir, 'manifests');
    mkdirSync(manifests);
    const manifest = (kind: string, name: string, body: Record<string, unknown>) =>
      stringify({
        apiVersion: kind === 'Secret' ? 'v1' : 'argoproj.io/v1alpha1',
        kind,
        metadata: { name },
        ...body,
      });
    writeFileSync(
      join(manifests, 'sensors.yaml'),
      `${manifest('Sensor', 'orders', { spec: orders })}---\n${manifest('Sensor', 'junk', { spec: junk })}`,
    );
    writeFileSync(join(manifests, 'README.md'), 'not a manifest: skipped');
    const common = ['--nats-url', natsUrl(), '-n', ns];
    try {
      for (let n = 0; n < 3; n++) await b.emit('hooks', 'o', { n });
      for (let n = 0; n < 3; n++) await b.emit('hooks', 'j', { n });
      await until('9 dead letters', async () => (await b.deadLetters()).length === 9, 30_000);
      for (const s of running) await s.stop();
      sink.state.fixed = true;

      // The Secret is not in the folder and there is no kubeconfig: each record says so.
      const missing = await sluice(['dlq', 'replay', ...common, '--sensor', 'orders', '-f', manifests]);
      expect(missing.code).toBe(1);
      const summary = JSON.parse(missing.stdout) as {
        total: number;
        failed: number;
        notReplayed: Array<{ seq: number; trigger: string; result: string; reason: string }>;
      };
      expect(summary).toMatchObject({ total: 3, delivered: 0, failed: 3 });
      expect(summary.notReplayed).toHaveLength(3);
      for (const r of summary.notReplayed) {
        expect(r).toMatchObject({ trigger: 'call', result: 'failed' });
        expect(r.reason).toMatch(
          new RegExp(
            `Secret ${ns}/sink-auth is not in ${manifests}, and there is no kubeconfig to read it from the cluster`,
          ),
        );
        expect(missing.stderr).toContain(`seq ${r.seq} (trigger call): failed again: `);
      }
      expect(missing.stderr).not.toMatch(/\n\s+at /);
      expect(sink.state.ok).toHaveLength(0);

      // With the Secret beside the Sensor (another file of the folder) the replay delivers.
      writeFileSync(
        join(manifests, 'secret.yaml'),
        manifest('Secret', 'sink-auth', { stringData: { token: 'Bearer s3cret' } }),
      );
      const replay = await sluice(['dlq', 'replay', ...common, '--sensor', 'orders', '-f', manifests]);
      expect(replay.code).toBe(0);
      expect(JSON.parse(replay.stdout)).toMatchObject({ total: 3, delivered: 3, failed: 0, notReplayed: [] });
      expect(sink.state.ok.map((r) => r.auth)).toEqual(Array(3).fill('Bearer s3cret'));
      expect(await b.deadLetters()).toHaveLength(6);

      const junkLeft = async (t?: string) =>
        (await b.deadLetters()).filter((d) => d.sensor === 'junk' && (t === undefined || d.trigger === t))
          .length;
      const dry = await sluice(['dlq', 'purge', ...common, '--sensor', 'junk', '--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.stdout.trim().split('\n')).toHaveLength(1 + 6);
      expect(dry.stderr).toContain(
        `dry run: would purge 6 dead letter(s) of EventBus ${ns}/default, matching --sensor junk; nothing removed`,
      );
      expect(await junkLeft()).toBe(6);

      expectUserError(
        await sluice(['dlq', 'purge', ...common, '--sensor', 'junk']),
        'dlq',
        /purge would remove 6 dead letter\(s\) .*: add --yes to confirm \(not a terminal, so it cannot ask\), or --dry-run to list them$/,
      );
      expect(await junkLeft()).toBe(6);

      const no = await sluice(['dlq', 'purge', ...common, '--sensor', 'junk', '--trigger', 'a'], {
        tty: true,
        input: 'n\n',
      });
      expect(no.stdout).toMatch(
        /purge 3 dead letter\(s\) of EventBus .*, matching --sensor junk --trigger a\? \[y\/N\]/,
      );
      expect(no.stdout).toContain('purge cancelled; nothing removed');
      expect(no.code).toBe(2);
      expect(await junkLeft()).toBe(6);

      const yes = await sluice(['dlq', 'purge', ...common, '--sensor', 'junk', '--trigger', 'a'], {
        tty: true,
        input: 'y\n',
      });
      expect(yes.code).toBe(0);
      expect(yes.stdout).toContain('purged 3 dead letter(s)');
      expect(await junkLeft('a')).toBe(0);
      expect(await junkLeft('b')).toBe(3);

      const flag = await sluice(['dlq', 'purge', ...common, '--sensor', 'junk', '--yes']);
      expect(flag.code).toBe(0);
      expect(flag.stderr).toContain('purged 3 dead letter(s)');
      expect(await b.deadLetters()).toHaveLength(0);
      const none = await sluice(['dlq', 'purge', ...common, '--all']);
      expect(none).toMatchObject({ code: 0, stderr: 'nothing to purge: no dead letters all of them\n' });
    } finally {
      await sink.close();
      await b.conn.close();
    }
  }, 120_000);

  it('connects to a secured bus with its NKey seed and CA; without them it is one line', async () => {
    const cl = await startNatsCluster(1);
    try {
      const bus = { namespace: uniqueName('sec'), busName: 'default' };
      const admin = await cl.connect(cl.admin.seed);
      const cfg = parseStreamConfig('');
      if (!cfg.ok) throw new Error(cfg.errors.join());
      await ensureStreams(await jetstreamManager(admin.nc), bus, cfg.settings, 1);
      await admin.close();
      const seed = join(cl.dir, 'admin.nkey');
      writeFileSync(seed, `${cl.admin.seed}\n`);
      const common = ['dlq', 'list', '--nats-url', cl.url, '-n', bus.namespace];
      const ok = await sluice([...common, '--nkey', seed, '--tlsca', cl.caFile]);
      expect(ok).toMatchObject({ code: 0, stderr: '0 dead letter(s)\n' });
      const viaEnv = await sluice(common, {
        env: {
          ...process.env,
          HOME: cl.dir,
          SLUICE_NODE: process.execPath,
          NATS_NKEY: seed,
          NATS_CA: cl.caFile,
        },
      });
      expect(viaEnv.code).toBe(0);
      expectUserError(
        await sluice([...common, '--tlsca', cl.caFile]),
        'dlq',
        /cannot use the NATS server: .*[Aa]uthorization/,
      );
      expectUserError(
        await sluice([...common, '--nkey', seed]),
        'dlq',
        /TLS: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); give the server's CA \(--tlsca/,
      );
    } finally {
      await cl.stop();
    }
  }, 120_000);
});
