// `sluice dlq list|show|replay|purge`: dead letters of one EventBus, filtered by Sensor, trigger
// and time. Replay runs the triggers from the Sensor's current spec (a file or folder, or the
// object in the cluster) with each record's idempotency key, so it is safe to run again, and
// names every record it could not replay and why. Purge shows what it would remove (--dry-run),
// asks on a terminal and needs --yes otherwise.
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { parseDurationMs } from '../api/stream-config.ts';
import { BusConnection } from '../bus/connection.ts';
import { ServerCode, serverCode } from '../bus/errors.ts';
import { type BusRef, dlqStreamName } from '../bus/subjects.ts';
import { createLogger } from '../observability/logger.ts';
import {
  type DlqFilter,
  getDeadLetter,
  listDeadLetters,
  type ReplayedRecord,
  removeDeadLetters,
  replayDeadLetters,
  type StoredDeadLetter,
} from '../sensors/dlq.ts';
import { RUNNERS } from '../sensors/runners.ts';
import { sensorDependencyMatcher, sensorParameters } from '../sensors/wiring.ts';
import { type BusFlags, busOptionsFrom } from './bus-flags.ts';
import { confirm, interactive } from './confirm.ts';
import { type ReplaySources, replaySources } from './dlq-sources.ts';
import { CliError, natsConnectError } from './errors.ts';

export interface DlqFlags extends BusFlags {
  namespace: string;
  bus: string;
  sensor?: string;
  trigger?: string;
  since?: string;
  until?: string;
  file?: string;
  kubeconfig?: string;
  json?: boolean;
  all?: boolean;
  yes?: boolean;
  dryRun?: boolean;
}

/** "2h" (that long ago) or an RFC 3339 time. */
export function parseWhen(v: string, now = Date.now()): Date {
  const ms = parseDurationMs(v);
  if (ms !== undefined) return new Date(now - ms);
  const t = Date.parse(v);
  if (Number.isNaN(t))
    throw new CliError(
      'Usage',
      `"${v}" is neither a duration (e.g. 2h) nor a time (e.g. 2026-11-23T10:00:00Z)`,
    );
  return new Date(t);
}

export function filterOf(f: DlqFlags): DlqFilter {
  return {
    ...(f.sensor ? { sensor: f.sensor } : {}),
    ...(f.trigger ? { trigger: f.trigger } : {}),
    ...(f.since ? { since: parseWhen(f.since) } : {}),
    ...(f.until ? { until: parseWhen(f.until) } : {}),
  };
}

/** The filter in words, e.g. `--sensor orders --since 2h`. */
function filterText(f: DlqFlags): string {
  const parts = (['sensor', 'trigger', 'since', 'until'] as const)
    .filter((k) => f[k])
    .map((k) => `--${k} ${f[k]}`);
  return parts.length ? `matching ${parts.join(' ')}` : 'all of them';
}

/** A progress bar on stderr: redrawn in place on a terminal, a line per 10% otherwise. */
function progress(label: string) {
  const tty = process.stderr.isTTY;
  let lastTenth = -1;
  return (done: number, total: number) => {
    const width = 30;
    const filled = total ? Math.round((done / total) * width) : width;
    const bar = `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`;
    if (tty) {
      process.stderr.write(`\r${bar}${done === total ? '\n' : ''}`);
      return;
    }
    const tenth = total ? Math.floor((done / total) * 10) : 10;
    if (tenth !== lastTenth || done === total) {
      lastTenth = tenth;
      process.stderr.write(`${bar}\n`);
    }
  };
}

const out = (s: string) => process.stdout.write(`${s}\n`);

/** Dead letters as JSON (--json) or as a tab-separated table. */
function printDeadLetters(rows: StoredDeadLetter[], json: boolean | undefined): void {
  if (json) {
    out(
      JSON.stringify(
        rows.map((d) => ({ seq: d.seq, time: d.time, ...d.record })),
        null,
        2,
      ),
    );
    return;
  }
  out(['SEQ', 'TIME', 'SENSOR', 'TRIGGER', 'ATTEMPTS', 'ERROR'].join('\t'));
  for (const d of rows) {
    const r = d.record;
    out(
      [d.seq, d.time.toISOString(), r.sensor, r.trigger, r.attempts, r.error.message].map(String).join('\t'),
    );
  }
}

async function collectDeadLetters(jsm: JetStreamManager, bus: BusRef, f: DlqFilter) {
  const rows: StoredDeadLetter[] = [];
  for await (const d of listDeadLetters(jsm, bus, f)) rows.push(d);
  return rows;
}

/** Purge selects records by a filter, or all of them with --all; nothing at all is a mistake. */
function checkPurgeSelection(f: DlqFlags): void {
  if (Object.keys(filterOf(f)).length === 0 && !f.all) {
    throw new CliError(
      'Usage',
      'purge with no filter removes every dead letter of the bus: add --all to select them all, or filter with --sensor, --trigger, --since or --until',
    );
  }
}

async function purge(jsm: JetStreamManager, bus: BusRef, f: DlqFlags): Promise<number> {
  const filter = filterOf(f);
  const rows = await collectDeadLetters(jsm, bus, filter);
  const what = `${rows.length} dead letter(s) of EventBus ${bus.namespace}/${bus.busName}, ${filterText(f)}`;
  if (f.dryRun) {
    printDeadLetters(rows, f.json);
    process.stderr.write(`dry run: would purge ${what}; nothing removed\n`);
    return 0;
  }
  if (rows.length === 0) {
    process.stderr.write(`nothing to purge: no dead letters ${filterText(f)}\n`);
    return 0;
  }
  if (!f.yes) {
    if (!interactive())
      throw new CliError(
        'NotConfirmed',
        `purge would remove ${what}: add --yes to confirm (not a terminal, so it cannot ask), or --dry-run to list them`,
      );
    if (!(await confirm(`purge ${what}?`)))
      throw new CliError('NotConfirmed', 'purge cancelled; nothing removed');
  }
  const bar = progress('purging');
  const n = await removeDeadLetters(
    jsm,
    bus,
    rows.map((d) => d.seq),
    (done) => bar(done, rows.length),
  );
  process.stderr.write(
    `purged ${n} dead letter(s)${n < rows.length ? ` (${rows.length - n} already gone)` : ''}\n`,
  );
  return 0;
}

/** The most per-record lines replay prints on stderr (all of them are in the JSON summary). */
const MAX_REASON_LINES = 20;

async function replay(
  conn: BusConnection,
  jsm: JetStreamManager,
  bus: BusRef,
  f: DlqFlags,
  src: ReplaySources,
) {
  const bar = progress('replaying');
  // Dependencies are not matched again on replay; compiling them still reports a bad spec early.
  for (const d of src.spec.dependencies ?? []) {
    try {
      await sensorDependencyMatcher(d);
    } catch (err) {
      const why = (err as Error).message;
      throw new CliError('BadInput', `Sensor ${f.sensor}: dependency ${d.name}: ${why}`, { cause: err });
    }
  }

  const { sensor: _sensor, ...timeAndTrigger } = filterOf(f);
  const notReplayed: Array<ReplayedRecord & { reason: string }> = [];
  const summary = await replayDeadLetters({
    nc: conn.nc,
    jsm,
    bus,
    namespace: f.namespace,
    sensorName: f.sensor!,
    spec: src.spec,
    log: createLogger({ level: 'error', destination: process.stderr }),
    runners: RUNNERS,
    params: sensorParameters,
    resolveSecret: src.resolveSecret,
    resolveConfigMap: src.resolveConfigMap,
    kubeConfig: src.kubeConfig,
    filter: timeAndTrigger,
    onProgress: (done, total, outcome, record) => {
      bar(done, total);
      if (record.result !== 'delivered' && record.result !== 'alreadyDone')
        notReplayed.push({ ...record, reason: outcome });
    },
  });
  for (const r of notReplayed.slice(0, MAX_REASON_LINES))
    process.stderr.write(`seq ${r.seq} (trigger ${r.trigger}): ${r.reason}\n`);
  if (notReplayed.length > MAX_REASON_LINES)
    process.stderr.write(
      `... and ${notReplayed.length - MAX_REASON_LINES} more (all in "notReplayed" on stdout)\n`,
    );
  out(JSON.stringify({ ...summary, notReplayed }));
  return summary.failed > 0 ? 1 : 0;
}

const ACTIONS = new Set(['list', 'show', 'replay', 'purge']);

export async function runDlq(action: string, args: string[], f: DlqFlags): Promise<number> {
  if (!ACTIONS.has(action))
    throw new CliError('Usage', `unknown action "${action}": use list, show, replay or purge`);
  const seq = Number(args[0]);
  if (action === 'show' && (!Number.isSafeInteger(seq) || seq < 1))
    throw new CliError('Usage', 'show needs a sequence number, e.g. sluice dlq show 12');
  filterOf(f); // a bad --since or --until is reported before connecting
  if (action === 'purge') checkPurgeSelection(f);
  // Everything replay reads from files or the cluster is checked before the bus is touched.
  const sources = action === 'replay' ? await replaySources(f) : undefined;
  const bus: BusRef = { namespace: f.namespace, busName: f.bus };
  const busOptions = busOptionsFrom(f);
  const conn = await BusConnection.open({ ...busOptions, name: 'sluice dlq' }).catch((err: unknown) => {
    throw natsConnectError(busOptions.url, err);
  });
  try {
    const jsm = await jetstreamManager(conn.nc);
    switch (action) {
      case 'list': {
        const rows = await collectDeadLetters(jsm, bus, filterOf(f));
        printDeadLetters(rows, f.json);
        if (!f.json) process.stderr.write(`${rows.length} dead letter(s)\n`);
        return 0;
      }
      case 'show': {
        const d = await getDeadLetter(jsm, bus, seq).catch((err: Error) => {
          throw new CliError('NotFound', err.message);
        });
        out(JSON.stringify({ seq: d.seq, time: d.time, ...d.record }, null, 2));
        return 0;
      }
      case 'purge':
        return await purge(jsm, bus, f);
      default:
        return await replay(conn, jsm, bus, f, sources!);
    }
  } catch (err) {
    // listDeadLetters wraps the server's answer in its own explanation (the cause keeps the code).
    const code = serverCode(err) ?? serverCode((err as { cause?: unknown } | undefined)?.cause);
    if (code !== ServerCode.StreamNotFound) throw err;
    throw new CliError(
      'NotFound',
      `the NATS server has no dead-letter stream ${dlqStreamName(bus)} for EventBus ${bus.namespace}/${bus.busName} (check -n and --bus)`,
    );
  } finally {
    await conn.close();
  }
}
