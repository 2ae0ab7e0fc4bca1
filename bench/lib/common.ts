// Shared pieces of the scenario benchmarks (S2 sensor, S3 webhook, S4 triggers): smoke mode, a
// private nats-server with fresh buses, table printing, percentiles, result files.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { pino } from 'pino';
import type { BusTls } from '../../src/api/bus-config.ts';
import { parseStreamConfig } from '../../src/api/stream-config.ts';
import { BusConnection } from '../../src/bus/connection.ts';
import { ensureStreams } from '../../src/bus/streams.ts';
import type { BusRef } from '../../src/bus/subjects.ts';
import { createLogger, type Logger } from '../../src/observability/logger.ts';
import { type NatsServer, type NatsServerOptions, startNats } from '../../test/harness/nats.ts';
import { requireTool } from '../../test/harness/tools.ts';
import { machineInfo } from '../machine.ts';

/** BENCH_SMOKE=1: tiny counts and short runs, results written next to the real ones as *.smoke.json. */
export const SMOKE = process.env.BENCH_SMOKE === '1';

/** Loopback only: every server in the benchmarks binds here. */
export const HOST = '127.0.0.1';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Wall-clock milliseconds with sub-millisecond resolution (comparable across processes). */
export const nowMs = () => performance.timeOrigin + performance.now();

export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 20,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) {
      process.stderr.write(`  (gave up waiting for ${what} after ${timeoutMs} ms)\n`);
      return false;
    }
    await sleep(intervalMs);
  }
}

/** p in [0, 100] over an ascending array (nearest rank); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export const round = (x: number, digits = 0) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** Prints rows as an aligned table under a title. */
export function printTable(title: string, header: string[], rows: Array<Array<string | number>>): void {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    `  ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}`;
  console.log(`\n${title}`);
  console.log(line(cells[0]!));
  console.log(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const r of cells.slice(1)) console.log(line(r));
}

function fmt(n: number): string {
  if (Number.isNaN(n)) return '-';
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 100 ? String(Math.round(n)) : n.toFixed(Math.abs(n) >= 10 ? 1 : 2);
}

/** Writes bench/results/<scenario>.json (or <scenario>.smoke.json; BENCH_RESULTS_DIR overrides the folder). */
export function writeResult(scenario: string, summary: Record<string, unknown>): string {
  const dir = process.env.BENCH_RESULTS_DIR ?? new URL('../results/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${scenario}${SMOKE ? '.smoke' : ''}.json`);
  writeFileSync(file, `${JSON.stringify({ scenario, smoke: SMOKE, ...summary }, null, 2)}\n`);
  console.log(`\n  results: ${file}`);
  return file;
}

export const machine = () => machineInfo(requireTool('nats-server'));

/** A logger whose lines go to /dev/null (the log trigger's output, measured but not kept). */
export function nullLogger(): Logger {
  // Same writer as production logging (sonic-boom on a file descriptor), aimed at /dev/null.
  const destination = pino.destination({ dest: '/dev/null', sync: false });
  return createLogger({ level: 'info', destination: destination as unknown as NodeJS.WritableStream });
}

export interface BenchNats {
  server: NatsServer;
  conn: BusConnection;
  jsm: JetStreamManager;
  js: JetStreamClient;
  /** A new bus (event + DLQ streams) in its own namespace. */
  freshBus(prefix: string): Promise<BusRef>;
  close(): Promise<void>;
}

/**
 * A private JetStream nats-server on loopback (`server.args` may add or override server flags),
 * one connection to it (with `client.tls` when the server offers TLS), and fresh buses on demand.
 */
export async function openNats(
  server: NatsServerOptions = {},
  client: { tls?: BusTls } = {},
): Promise<BenchNats> {
  const nats = await startNats(server);
  const conn = await BusConnection.open({ url: nats.url, name: 'bench', tls: client.tls });
  const jsm = await jetstreamManager(conn.nc);
  const js = jetstream(conn.nc);
  const parsed = parseStreamConfig('maxMsgs: -1\nmaxAge: 1h\nretention: limits');
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  const settings = parsed.settings;
  let n = 0;
  return {
    server: nats,
    conn,
    jsm,
    js,
    async freshBus(prefix) {
      const bus = { namespace: `${prefix}${n++}`, busName: 'default' };
      await ensureStreams(jsm, bus, settings, 1);
      return bus;
    },
    async close() {
      await conn.close();
      await nats.stop();
    },
  };
}
