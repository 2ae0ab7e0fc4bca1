import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourceSpec } from '../../../src/api/eventsource.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { goTimeString } from '../../../src/eventsources/calendar/go-time.ts';
import type { CloudEvent } from '../../../src/eventsources/envelope.ts';
import { startEventSource } from '../../../src/eventsources/runtime.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { busWithStreams } from './fixtures.ts';

const log = createLogger({ level: 'silent' });

describe.skipIf(natsMissing())(`calendar EventSource${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  async function setup() {
    const { bus, jsm, stored } = await busWithStreams(conn, 'cal', '');
    const start = (calendar: Record<string, unknown>) =>
      startEventSource({
        name: 'clock',
        namespace: bus.namespace,
        spec: EventSourceSpec.parse({ calendar }),
        bus,
        publisher: new Publisher(conn.nc),
        nc: conn.nc,
        registry: newRegistry(),
        log,
        resolveSecret: async () => '',
      });
    return { bus, stored, start };
  }

  const secondsOf = (evs: CloudEvent[]) => evs.map((e) => Date.parse(e.time) / 1000);

  it('emits each fire with a deterministic id, type, subject and metadata', async () => {
    const s = await setup();
    const es = await s.start({ tick: { interval: '1s', metadata: { team: 'ops' } } });
    try {
      await waitFor('two fires', async () => (await s.stored()).length >= 2, { timeoutMs: 10_000 });
    } finally {
      await es.stop();
    }
    const [first] = await s.stored();
    const at = first!.time;
    expect(first).toMatchObject({
      source: 'clock',
      type: 'calendar',
      subject: 'tick',
      id: `tick:${at}`,
      time: at,
    });
    // eventTime as upstream writes it (Go's time.String()); the CloudEvent time is RFC 3339.
    expect(first!.data).toEqual({ eventTime: goTimeString(new Date(at)), metadata: { team: 'ops' } });
    expect((first!.data as { eventTime: string }).eventTime).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/,
    );
    expect(Date.parse(at) % 1000).toBe(0);
  });

  it('catch-up on: fires missed while stopped are emitted once each, in order, and none is repeated', async () => {
    const s = await setup();
    const cal = {
      tick: { schedule: '* * * * * *', persistence: { catchup: { enabled: true, maxDuration: '1m' } } },
    };
    let es = await s.start(cal);
    await waitFor('first fires', async () => (await s.stored()).length >= 2, { timeoutMs: 10_000 });
    await es.stop();
    const before = (await s.stored()).length;
    await new Promise((r) => setTimeout(r, 2600)); // at least two due fires pass while stopped
    es = await s.start(cal);
    try {
      await waitFor('caught up and ticking', async () => (await s.stored()).length >= before + 4, {
        timeoutMs: 10_000,
      });
    } finally {
      await es.stop();
    }
    const secs = secondsOf(await s.stored());
    // Every second from the first fire on, each exactly once: no gap (missed fires caught up) and
    // no repeat (the last fire before the stop is not emitted again).
    for (let i = 1; i < secs.length; i++) expect(secs[i]! - secs[i - 1]!).toBe(1);
  }, 30_000);

  it('catch-up off: missed fires are skipped', async () => {
    const s = await setup();
    const cal = { tick: { schedule: '* * * * * *', persistence: { catchup: { enabled: false } } } };
    let es = await s.start(cal);
    await waitFor('first fires', async () => (await s.stored()).length >= 2, { timeoutMs: 10_000 });
    await es.stop();
    const stoppedAt = Date.now();
    await new Promise((r) => setTimeout(r, 2600));
    es = await s.start(cal);
    try {
      await waitFor(
        'ticking again',
        async () =>
          (await s.stored()).some(
            (e) => Date.parse(e.time) > Date.now() - 1000 && Date.parse(e.time) > stoppedAt + 2600,
          ),
        { timeoutMs: 10_000 },
      );
    } finally {
      await es.stop();
    }
    const secs = secondsOf(await s.stored());
    const gaps = secs.slice(1).map((t, i) => t - secs[i]!);
    expect(Math.max(...gaps)).toBeGreaterThanOrEqual(3);
    expect(new Set(secs).size).toBe(secs.length);
  }, 30_000);
});
