// `sluice dlq list|show|replay|purge`: dead letters of one EventBus, filtered by Sensor, trigger
// and time. Replay runs the triggers from the Sensor's current spec (a file, or the object in the
// cluster) with each record's idempotency key, so it is safe to run again.
import { readFileSync } from 'node:fs';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { parseAllDocuments } from 'yaml';
import type { ConfigMapKeySelector, SecretKeySelector } from '../api/k8s.ts';
import { SensorSpec } from '../api/sensor.ts';
import { parseDurationMs } from '../api/stream-config.ts';
import { BusConnection } from '../bus/connection.ts';
import type { BusRef } from '../bus/subjects.ts';
import { createLogger } from '../observability/logger.ts';
import {
  type DlqFilter,
  getDeadLetter,
  listDeadLetters,
  purgeDeadLetters,
  replayDeadLetters,
} from '../sensors/dlq.ts';
import { RUNNERS } from '../sensors/runners.ts';
import { sensorDependencyMatcher, sensorParameters } from '../sensors/wiring.ts';
import { type BusFlags, busOptionsFrom } from './bus-flags.ts';

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
}

/** "2h" (that long ago) or an RFC 3339 time. */
export function parseWhen(v: string, now = Date.now()): Date {
  const ms = parseDurationMs(v);
  if (ms !== undefined) return new Date(now - ms);
  const t = Date.parse(v);
  if (Number.isNaN(t))
    throw new Error(`"${v}" is neither a duration (e.g. 2h) nor a time (e.g. 2026-11-23T10:00:00Z)`);
  return new Date(t);
}

function filterOf(f: DlqFlags): DlqFilter {
  return {
    ...(f.sensor ? { sensor: f.sensor } : {}),
    ...(f.trigger ? { trigger: f.trigger } : {}),
    ...(f.since ? { since: parseWhen(f.since) } : {}),
    ...(f.until ? { until: parseWhen(f.until) } : {}),
  };
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

function kube(f: DlqFlags): KubeConfig {
  const kc = new KubeConfig();
  if (f.kubeconfig) kc.loadFromFile(f.kubeconfig);
  else kc.loadFromDefault();
  return kc;
}

async function sensorSpec(f: DlqFlags): Promise<SensorSpec> {
  if (!f.sensor) throw new Error('replay needs --sensor NAME');
  if (f.file) {
    for (const doc of parseAllDocuments(readFileSync(f.file, 'utf8'))) {
      const o = doc.toJS() as { kind?: string; metadata?: { name?: string }; spec?: unknown } | null;
      if (o?.kind === 'Sensor' && o.metadata?.name === f.sensor) return SensorSpec.parse(o.spec);
    }
    throw new Error(`${f.file} has no Sensor named ${f.sensor}`);
  }
  const api = kube(f).makeApiClient(CustomObjectsApi);
  const o = (await api.getNamespacedCustomObject({
    group: 'argoproj.io',
    version: 'v1alpha1',
    namespace: f.namespace,
    plural: 'sensors',
    name: f.sensor,
  })) as { spec?: unknown };
  return SensorSpec.parse(o.spec);
}

export async function runDlq(action: string, args: string[], f: DlqFlags): Promise<number> {
  const bus: BusRef = { namespace: f.namespace, busName: f.bus };
  const conn = await BusConnection.open({ ...busOptionsFrom(f), name: 'sluice dlq' });
  const nc = conn.nc;
  const out = (s: string) => process.stdout.write(`${s}\n`);
  try {
    const jsm = await jetstreamManager(nc);
    switch (action) {
      case 'list': {
        const rows = [];
        for await (const d of listDeadLetters(jsm, bus, filterOf(f))) rows.push(d);
        if (f.json) {
          out(
            JSON.stringify(
              rows.map((d) => ({ seq: d.seq, time: d.time, ...d.record })),
              null,
              2,
            ),
          );
          return 0;
        }
        out(['SEQ', 'TIME', 'SENSOR', 'TRIGGER', 'ATTEMPTS', 'ERROR'].join('\t'));
        for (const d of rows) {
          out(
            [
              d.seq,
              d.time.toISOString(),
              d.record.sensor,
              d.record.trigger,
              d.record.attempts,
              d.record.error.message,
            ]
              .map(String)
              .join('\t'),
          );
        }
        process.stderr.write(`${rows.length} dead letter(s)\n`);
        return 0;
      }
      case 'show': {
        const seq = Number(args[0]);
        if (!Number.isSafeInteger(seq) || seq < 1)
          throw new Error('show needs a sequence number, e.g. sluice dlq show 12');
        const d = await getDeadLetter(jsm, bus, seq);
        out(JSON.stringify({ seq: d.seq, time: d.time, ...d.record }, null, 2));
        return 0;
      }
      case 'purge': {
        const filter = filterOf(f);
        if (Object.keys(filter).length === 0 && !f.all) {
          throw new Error('purge with no filter removes every dead letter of the bus: add --all to confirm');
        }
        const bar = progress('purging');
        const n = await purgeDeadLetters(jsm, bus, filter, (done) => bar(done, done));
        process.stderr.write(`purged ${n} dead letter(s)\n`);
        return 0;
      }
      case 'replay': {
        const spec = await sensorSpec(f);
        const bar = progress('replaying');
        let kc: KubeConfig | undefined;
        const kubeConfig = () => {
          kc ??= kube(f);
          return kc;
        };
        const core = () => kubeConfig().makeApiClient(CoreV1Api);
        const resolveSecret = async (sel: SecretKeySelector) => {
          const s = await core().readNamespacedSecret({ name: sel.name ?? '', namespace: f.namespace });
          const v = s.data?.[sel.key];
          if (v === undefined) throw new Error(`Secret ${sel.name} has no key ${sel.key}`);
          return Buffer.from(v, 'base64').toString('utf8');
        };
        const resolveConfigMap = async (sel: ConfigMapKeySelector) => {
          const c = await core().readNamespacedConfigMap({ name: sel.name ?? '', namespace: f.namespace });
          const v = c.data?.[sel.key];
          if (v === undefined) throw new Error(`ConfigMap ${sel.name} has no key ${sel.key}`);
          return v;
        };
        // Dependencies are not matched again on replay; compiling them still reports a bad spec early.
        for (const d of spec.dependencies ?? []) await sensorDependencyMatcher(d);
        const { sensor: _sensor, ...timeAndTrigger } = filterOf(f);
        const summary = await replayDeadLetters({
          nc,
          jsm,
          bus,
          namespace: f.namespace,
          sensorName: f.sensor!,
          spec,
          log: createLogger({ level: 'error', destination: process.stderr }),
          runners: RUNNERS,
          params: sensorParameters,
          resolveSecret,
          resolveConfigMap,
          kubeConfig,
          filter: timeAndTrigger,
          onProgress: (done, total) => bar(done, total),
        });
        out(JSON.stringify(summary));
        return summary.failed > 0 ? 1 : 0;
      }
      default:
        throw new Error(`unknown action "${action}": use list, show, replay or purge`);
    }
  } finally {
    await conn.close();
  }
}
