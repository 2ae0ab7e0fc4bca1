// `file` EventSource on a real directory and a real nats-server: create, write, chmod, rename and
// remove produce CREATE / WRITE / CHMOD / RENAME+CREATE / REMOVE events; files that do not match
// the pattern are ignored; polling mode sees the same.
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourceSpec } from '../../../src/api/eventsource.ts';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { type BusRef, eventStreamName } from '../../../src/bus/subjects.ts';
import { type CloudEvent, decodeEvent } from '../../../src/eventsources/envelope.ts';
import { startEventSource } from '../../../src/eventsources/runtime.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

describe.skipIf(natsMissing())(`file EventSource${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  for (const polling of [false, true]) {
    it(`reports file operations on matching files${polling ? ' (polling)' : ''}`, async () => {
      const bus: BusRef = { namespace: uniqueName('file'), busName: 'default' };
      const cfg = parseStreamConfig('retention: limits'); // no Sensor: keep what is published to read it back
      if (!cfg.ok) throw new Error(cfg.errors.join());
      const jsm = await jetstreamManager(conn.nc);
      await ensureStreams(jsm, bus, cfg.settings, 1);
      const ops = async (): Promise<string[]> => {
        const info = await jsm.streams.info(eventStreamName(bus));
        const out: CloudEvent[] = [];
        for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
          const m = await jsm.streams.getMessage(eventStreamName(bus), { seq }).catch(() => null);
          if (m) out.push(decodeEvent(m.data));
        }
        return out.map((e) => {
          const d = e.data as { name: string; op: string };
          return `${d.op} ${d.name.slice(dir.length + 1)}`;
        });
      };
      const dir = mkdtempSync(join(tmpdir(), 'watched-'));
      const es = await startEventSource({
        name: 'files',
        namespace: bus.namespace,
        spec: EventSourceSpec.parse({
          file: {
            csv: {
              eventType: 'CREATE|WRITE|REMOVE|RENAME|CHMOD',
              watchPathConfig: { directory: dir, pathRegexp: '\\.csv$' },
              polling,
            },
          },
        }),
        bus,
        publisher: new Publisher(conn.nc),
        nc: conn.nc,
        registry: newRegistry(),
        log: createLogger({ level: 'silent' }),
        resolveSecret: async () => '',
      });
      const step = async (what: string, act: () => void, expected: number) => {
        act();
        await waitFor(what, async () => (await ops()).length >= expected, { timeoutMs: 5000 });
      };
      try {
        await step('create', () => writeFileSync(join(dir, 'a.csv'), 'x'), 1);
        writeFileSync(join(dir, 'notes.txt'), 'ignored');
        await new Promise((r) => setTimeout(r, 50));
        await step('write', () => writeFileSync(join(dir, 'a.csv'), 'x,y'), 2);
        await step('chmod', () => chmodSync(join(dir, 'a.csv'), 0o600), 3);
        await step('rename', () => renameSync(join(dir, 'a.csv'), join(dir, 'b.csv')), 5);
        await step('remove', () => rmSync(join(dir, 'b.csv')), 6);
        await new Promise((r) => setTimeout(r, polling ? 1200 : 200));
        expect(await ops()).toEqual([
          'CREATE a.csv',
          'WRITE a.csv',
          'CHMOD a.csv',
          'RENAME a.csv',
          'CREATE b.csv',
          'REMOVE b.csv',
        ]);
      } finally {
        await es.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    }, 30_000);
  }
});
