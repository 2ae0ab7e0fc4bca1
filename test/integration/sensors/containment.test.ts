// Sensor containment against a real nats-server: one bad event (runaway jq, failing Lua, filter
// error, invalid envelope, id-less or null body, too many deliveries) never freezes, drops or
// corrupts the others; each bad one is dead-lettered once with its reason. Partial matches respect
// the last scheduled conditionsReset and spec changes; secrets never reach DLQ records or logs.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SensorSpec } from '../../../src/api/sensor.ts';
import { sensorMaxDeliver } from '../../../src/bus/consumer.ts';
import { provisionSensorState } from '../../../src/bus/sensor-state.ts';
import { eventStreamName, eventSubject } from '../../../src/bus/subjects.ts';
import { encodeEvent, envelope } from '../../../src/eventsources/envelope.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { metric, newBus, runSensor, startSink, type TestBus, until } from './fixtures.ts';

const dep = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  eventSourceName: 'hooks',
  eventName: name,
  ...extra,
});

describe.skipIf(natsMissing())(`Sensor containment${skipNote(natsMissing())}`, () => {
  let b: TestBus;
  let sink: Awaited<ReturnType<typeof startSink>>;
  beforeAll(async () => {
    b = await newBus(natsUrl());
    sink = await startSink((r) => (r.path === '/deny' ? [401, {}] : 200));
  });
  afterAll(async () => {
    await sink.close();
    await b.conn.close();
  });

  const httpTrigger = (name: string, path: string, depName: string, extra: Record<string, unknown> = {}) => ({
    template: {
      name,
      conditions: depName,
      http: {
        url: `${sink.url}${path}`,
        payload: [{ src: { dependencyName: depName, dataKey: 'id' }, dest: 'id' }],
      },
    },
    ...extra,
  });
  const dlqTrigger = (path: string, depName: string) => ({
    template: {
      name: `dl${path.replace(/\//g, '-')}`,
      http: {
        url: `${sink.url}${path}`,
        payload: [{ src: { dependencyName: depName, dataKey: 'id' }, dest: 'id' }],
      },
    },
  });
  const records = async (sensor: string) => (await b.deadLetters()).filter((r) => r.sensor === sensor);
  const raw = (event: string, data: Uint8Array | string) =>
    jetstream(b.conn.nc).publish(eventSubject(b.bus, 'hooks', event), data);

  it('a jq loop, a jq allocation and a Lua error are dead-lettered with reasons; the good events all go through', async () => {
    const s = await runSensor(b, 'jq', {
      evaluation: { timeout: '500ms', memoryMiB: 64 },
      dependencies: [
        dep('j', {
          transform: {
            jq: 'if .id == "loop" then last(range(1e15)) elif .id == "alloc" then [range(3e7)] else . end',
          },
        }),
        dep('l', { transform: { script: 'if event.id == "boom" then error("boom: no") end return event' } }),
        dep('f', { filters: { script: 'if event.id == "bad" then error("filter broke") end return true' } }),
      ],
      triggers: [
        httpTrigger('jq-ok', '/jq', 'j', { dlqTrigger: dlqTrigger('/jq-dl', 'j') }),
        httpTrigger('lua-ok', '/lua', 'l', { dlqTrigger: dlqTrigger('/lua-dl', 'l') }),
        httpTrigger('filter-ok', '/filter', 'f'),
      ],
    });
    try {
      let ticks = 0;
      const tick = setInterval(() => ticks++, 25);
      await b.emit('hooks', 'j', { id: 'loop' });
      await b.emit('hooks', 'j', { id: 'alloc' });
      await b.emit('hooks', 'l', { id: 'boom' });
      await b.emit('hooks', 'f', { id: 'bad' });
      for (let i = 0; i < 30; i++) {
        await b.emit('hooks', 'j', { id: `g${i}` });
        await b.emit('hooks', 'l', { id: `g${i}` });
        await b.emit('hooks', 'f', { id: `g${i}` });
      }
      await until(
        'good events',
        () =>
          sink.on('/jq').length === 30 && sink.on('/lua').length === 30 && sink.on('/filter').length === 30,
        30_000,
      );
      await until('dead letters', async () => (await records('jq')).length === 4, 30_000);
      clearInterval(tick);
      expect(ticks).toBeGreaterThan(10);
      const byId = new Map(
        (await records('jq')).map((r) => [
          (r.events as Record<string, { data: { id: string } }>)[r.dependency as string]!.data.id,
          r,
        ]),
      );
      expect(byId.get('loop')).toMatchObject({ kind: 'event', reason: 'eval-timeout', dependency: 'j' });
      expect(['eval-memory', 'eval-timeout']).toContain(byId.get('alloc')!.reason);
      expect(byId.get('boom')).toMatchObject({ reason: 'transform-error', dependency: 'l' });
      expect(String((byId.get('boom')!.error as { message: string }).message)).toMatch(/boom: no/);
      expect(byId.get('bad')).toMatchObject({ reason: 'filter-error', dependency: 'f' });
      // dlqTriggers fired once each with the original event; none for the filter (no dlqTrigger)
      expect(
        sink
          .on('/jq-dl')
          .map((r) => (r.body as { id: string }).id)
          .sort(),
      ).toEqual(['alloc', 'loop']);
      expect(sink.on('/lua-dl').map((r) => (r.body as { id: string }).id)).toEqual(['boom']);
      expect(
        await metric(s.registry, 'sluice_sensor_events_dead_lettered_total', { reason: 'eval-timeout' }),
      ).toBeGreaterThanOrEqual(1);
      expect(
        await metric(s.registry, 'sluice_sensor_events_dead_lettered_total', { reason: 'transform-error' }),
      ).toBe(1);
      expect(
        await metric(s.registry, 'sluice_sensor_events_dead_lettered_total', { reason: 'filter-error' }),
      ).toBe(1);
      // no good event was dead-lettered or delivered twice
      for (const p of ['/jq', '/lua', '/filter']) expect(new Set(sink.on(p).map((r) => r.key)).size).toBe(30);
    } finally {
      await s.stop();
    }
  }, 60_000);

  it('invalid envelopes are dead-lettered (invalid-event); id-less and null-body messages are not lost', async () => {
    const s = await runSensor(b, 'env', {
      dependencies: [dep('o', { orderingKey: 'id' }), dep('p')],
      triggers: [httpTrigger('o-ok', '/o', 'o'), httpTrigger('p-ok', '/p', 'p')],
    });
    try {
      await raw('o', 'null');
      await raw('o', 'garbage{');
      await raw('o', JSON.stringify({ source: 'hooks', subject: 'o', data: null }));
      await raw('o', JSON.stringify({ source: 'hooks', subject: 'o', data: { id: 'x1' } }));
      await raw('p', JSON.stringify({ data: { id: 'y1' } }));
      await raw('p', JSON.stringify({ data: { id: 'y1' } }));
      await b.emit('hooks', 'o', { id: 'after' });
      await until(
        'id-less events delivered',
        () => sink.on('/p').length === 2 && sink.on('/o').length >= 2,
        20_000,
      );
      const events = async () => (await records('env')).filter((r) => r.kind === 'event');
      await until('invalid ones dead-lettered', async () => (await events()).length === 2, 20_000);
      const recs = await events();
      expect(recs.map((r) => r.reason)).toEqual(['invalid-event', 'invalid-event']);
      expect(recs.every((r) => typeof r.raw === 'string')).toBe(true);
      // the two id-less messages are two events with distinct keys
      expect(new Set(sink.on('/p').map((r) => r.key)).size).toBe(2);
      // data: null has no "id" to send: its parameter cannot be resolved → dead-lettered as a trigger failure
      await until(
        'null-body trigger outcome',
        async () => (await b.deadLetters()).some((r) => r.sensor === 'env' && r.trigger === 'o-ok'),
        20_000,
      );
      expect(
        sink
          .on('/o')
          .map((r) => (r.body as { id: string }).id)
          .sort(),
      ).toEqual(['after', 'x1']);
    } finally {
      await s.stop();
    }
  }, 60_000);

  it('the delivery after maxDeliveries dead-letters the message unhandled (max-deliveries) and terms it', async () => {
    const spec = SensorSpec.parse({
      maxDeliveries: 2,
      dependencies: [dep('m')],
      triggers: [httpTrigger('m-ok', '/m', 'm')],
    });
    const {
      consumers: [durable],
    } = await provisionSensorState(b.jsm, b.conn.nc, {
      bus: b.bus,
      sensor: 'maxdel',
      dependencies: spec.dependencies,
      tuning: { ackWaitMs: 5000, maxAckPending: 1000, maxDeliver: sensorMaxDeliver(spec), deliver: 'all' },
    });
    const c = { durable: durable! };
    const info = await b.jsm.consumers.info(eventStreamName(b.bus), c.durable);
    expect(info.config.max_deliver).toBe(2 + 3 + 1000);
    await b.emit('hooks', 'm', { id: 'crashy' });
    // Two deliveries that "crash" (never settled by a Sensor): nak them.
    const consumer = await jetstream(b.conn.nc).consumers.get(info.stream_name, c.durable);
    for (let i = 0; i < 2; i++) {
      const m = await consumer.next({ expires: 5000 });
      expect(m?.info.deliveryCount).toBe(i + 1);
      m!.nak();
    }
    const s = await runSensor(b, 'maxdel', { ...spec }, { deliver: 'all' });
    try {
      await until('dead-lettered', async () => (await records('maxdel')).length === 1, 20_000);
      const [r] = await records('maxdel');
      expect(r).toMatchObject({ reason: 'max-deliveries', kind: 'event', dependency: 'm', attempts: 3 });
      expect(sink.on('/m')).toHaveLength(0);
      await until(
        'nothing pending',
        async () => (await b.jsm.consumers.info(info.stream_name, c.durable)).num_ack_pending === 0,
        10_000,
      );
    } finally {
      await s.stop();
    }
  }, 60_000);

  it('partial matches older than the last scheduled conditionsReset or recorded under another spec are discarded', async () => {
    const spec = (filters?: unknown) => ({
      dependencies: [dep('a', filters ? { filters } : {}), dep('b')],
      triggers: [
        {
          template: {
            name: 'pair',
            conditions: 'a && b',
            conditionsReset: [{ byTime: { cron: '0 * * * *' } }],
            http: {
              url: `${sink.url}/pair`,
              payload: [
                { src: { dependencyName: 'a', dataKey: 'v' }, dest: 'a' },
                { src: { dependencyName: 'b', dataKey: 'v' }, dest: 'b' },
              ],
            },
          },
        },
      ],
    });
    const at = (ms: number) =>
      envelope({ source: 'hooks', type: 'webhook', subject: 'a', data: { v: 'old' }, time: new Date(ms) });
    const publishA = async (ev: ReturnType<typeof at>) =>
      jetstream(b.conn.nc).publish(eventSubject(b.bus, 'hooks', 'a'), encodeEvent(ev));
    let s = await runSensor(b, 'resets', spec());
    try {
      // "a" from before the last hourly reset (as if it was recorded, then the Sensor was down over the hour)
      const lastHour = new Date();
      lastHour.setUTCMinutes(0, 0, 0);
      await publishA(at(lastHour.getTime() - 60_000));
      await b.emit('hooks', 'b', { v: 'b1' });
      await b.emit('hooks', 'a', { v: 'a2' });
      await until('pair fired', () => sink.on('/pair').length === 1, 15_000);
      expect(sink.on('/pair')[0]!.body).toEqual({ a: 'a2', b: 'b1' });
      // spec change: "a" recorded under the old spec must not complete the trigger under the new one
      await b.emit('hooks', 'a', { v: 'a3' });
      await new Promise((r) => setTimeout(r, 300));
      await s.stop();
      s = await runSensor(b, 'resets', spec({ data: [{ path: 'v', type: 'string', value: ['^a'] }] }));
      await b.emit('hooks', 'b', { v: 'b4' });
      await b.emit('hooks', 'a', { v: 'a5' });
      await until('second pair', () => sink.on('/pair').length === 2, 15_000);
      expect(sink.on('/pair')[1]!.body).toEqual({ a: 'a5', b: 'b4' });
    } finally {
      await s.stop();
    }
  }, 60_000);

  it('secrets echoed by a downstream never reach DLQ records or logs', async () => {
    const lines: string[] = [];
    const log = createLogger({
      level: 'info',
      destination: new Writable({
        write(c, _e, cb) {
          lines.push(String(c));
          cb();
        },
      }),
    });
    // A downstream that echoes the credentials it was sent in its error body.
    const echo = createServer((req, res) => {
      res.writeHead(401);
      res.end(`invalid credentials: ${req.headers.authorization}`);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
    const s = await runSensor(
      b,
      'secrets',
      {
        dependencies: [dep('s')],
        triggers: [
          {
            template: {
              name: 'deny',
              http: {
                url: `${echoUrl}/deny`,
                basicAuth: {
                  username: { name: 'creds', key: 'user' },
                  password: { name: 'creds', key: 'pass' },
                },
                payload: [{ src: { dependencyName: 's', dataKey: 'id' }, dest: 'id' }],
              },
            },
          },
        ],
      },
      {
        log,
        resolveSecret: async (sel) => (sel.key === 'user' ? 'sinkuser' : 'SINKPASS-s3cr3t-CCCC\n'),
      },
    );
    try {
      await b.emit('hooks', 's', { id: 'sec' });
      await until('dead letter', async () => (await records('secrets')).length === 1, 15_000);
      const basic = Buffer.from('sinkuser:SINKPASS-s3cr3t-CCCC').toString('base64');
      const stored = JSON.stringify(await records('secrets'));
      expect(stored).toMatch(/HTTP 401/);
      for (const text of [stored, lines.join('')]) {
        expect(text).not.toContain('SINKPASS');
        expect(text).not.toContain(basic);
      }
      expect(stored).toContain('invalid credentials: Basic [redacted]');
    } finally {
      await s.stop();
      echo.closeAllConnections();
      echo.close();
    }
  }, 60_000);

  it('attack: a flood of runaway programs starves the pool; good events wait (not counted as deliveries) and all go through', async () => {
    const s = await runSensor(
      b,
      'flood',
      {
        maxDeliveries: 2,
        evaluation: { timeout: '300ms', workers: 2 },
        dependencies: [
          dep('q', { transform: { jq: 'if .id | startswith("loop") then last(range(1e15)) else . end' } }),
        ],
        triggers: [httpTrigger('q-ok', '/q', 'q')],
      },
      { sandboxLimits: { maxQueueWaitMs: 400 }, concurrency: 64 },
    );
    try {
      for (let i = 0; i < 12; i++) await b.emit('hooks', 'q', { id: `loop-${i}` });
      for (let i = 0; i < 40; i++) await b.emit('hooks', 'q', { id: `ok-${i}` });
      await until('good ones delivered', () => new Set(sink.on('/q').map((r) => r.key)).size === 40, 60_000);
      await until('loops dead-lettered', async () => (await records('flood')).length === 12, 60_000);
      const recs = await records('flood');
      expect(recs.every((r) => r.reason === 'eval-timeout')).toBe(true);
      expect(await metric(s.registry, 'sluice_sensor_events_total', { result: 'deferred' })).toBeGreaterThan(
        0,
      );
    } finally {
      await s.stop();
    }
  }, 90_000);

  it('attack: ids with subject wildcards and maximum length still join and fire once', async () => {
    const s = await runSensor(b, 'ids', {
      dependencies: [dep('x'), dep('y')],
      triggers: [
        {
          template: {
            name: 'xy',
            conditions: 'x && y',
            http: {
              url: `${sink.url}/xy`,
              payload: [{ src: { dependencyName: 'x', dataKey: 'id' }, dest: 'id' }],
            },
          },
        },
      ],
    });
    try {
      const weird = '>*. $'.repeat(102).slice(0, 512);
      await b.emit('hooks', 'x', { id: 'wx' }, weird);
      await b.emit('hooks', 'y', { id: 'wy' }, `${weird.slice(0, 511)}*`);
      await until('fired', () => sink.on('/xy').length === 1, 15_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(sink.on('/xy')).toHaveLength(1);
      expect((await records('ids')).length).toBe(0);
    } finally {
      await s.stop();
    }
  }, 60_000);

  it('attack: stopping with runaway programs queued and running returns at once; their events come back', async () => {
    const spec = {
      evaluation: { timeout: '2s', workers: 1 },
      dependencies: [
        dep('r', { transform: { jq: 'if .id | startswith("loop") then last(range(1e15)) else . end' } }),
      ],
      triggers: [httpTrigger('r-ok', '/r', 'r')],
    };
    let s = await runSensor(b, 'stopper', spec);
    for (let i = 0; i < 6; i++) await b.emit('hooks', 'r', { id: `loop-${i}` });
    await b.emit('hooks', 'r', { id: 'fine' });
    await new Promise((r) => setTimeout(r, 500)); // the first loop is running, the rest queued
    const t0 = Date.now();
    await s.stop();
    const stopMs = Date.now() - t0;
    expect(stopMs).toBeLessThan(1500);
    // nothing was lost: after a restart every loop is dead-lettered and the good one delivered
    s = await runSensor(b, 'stopper', spec);
    try {
      await until('fine delivered', () => sink.on('/r').length === 1, 60_000);
      await until('loops dead-lettered', async () => (await records('stopper')).length === 6, 60_000);
    } finally {
      await s.stop();
    }
  }, 120_000);

  it('attack: a restart while events wait on an open breaker does not dead-letter them (waits are not deliveries)', async () => {
    let down = true;
    const own = await startSink(() => (down ? 503 : 200));
    const spec = {
      maxDeliveries: 2,
      dependencies: [dep('w')],
      triggers: [
        {
          template: {
            name: 'w-ok',
            conditions: 'w',
            http: {
              url: `${own.url}/w`,
              payload: [{ src: { dependencyName: 'w', dataKey: 'id' }, dest: 'id' }],
            },
          },
          retryStrategy: { steps: 3, duration: '50ms' },
          circuitBreaker: { consecutiveFailures: 1, openDuration: '300ms', maxWait: '5m' },
        },
      ],
    };
    let s = await runSensor(b, 'waiter', spec);
    try {
      for (let i = 0; i < 3; i++) await b.emit('hooks', 'w', { id: `w${i}` });
      // each message handed back several times (more than maxDeliveries) while the target is down
      await until(
        'several waits',
        async () => (await metric(s.registry, 'sluice_sensor_messages_deferred_total')) >= 9,
        30_000,
      );
      await s.stop();
      down = false;
      s = await runSensor(b, 'waiter', spec);
      await until(
        'all delivered',
        () => new Set(own.requests.filter((r) => r.status === 200).map((r) => r.key)).size === 3,
        30_000,
      );
      expect(await records('waiter')).toHaveLength(0);
    } finally {
      await s.stop();
      await own.close();
    }
  }, 90_000);
});
