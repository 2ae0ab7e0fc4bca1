// Adversary (issue 16): waits (an open circuit breaker, a bus outage under the event, no free
// sandbox worker) hand the message back without counting against maxDeliveries, and the consumers'
// max_deliver leaves room for 1,000 of them. A message that uses that room up is no longer delivered
// by the server at all: it is neither delivered nor dead-lettered, and nothing reports it.
//
// How soon: a breaker with openDuration 1s and maxWait 1h makes a waiting message come back about
// once a second (the probe fails, the breaker reopens, the message waits 1 s), so the room was gone
// after ~17 minutes, long before maxWait; a KV outage under the event (a wait every 2 s) used it up
// in ~35 minutes. To stay within seconds, this test lets a first Sensor process record all but one
// of those deliveries as waits, the way receive.ts records them (the server's delivery count and the
// stored wait count `defers/<dependency>/<seq>`), then runs the Sensor against a sink that still
// fails: its next delivery is the last one the server makes, and it ends in a wait. Before the fix
// the message was handed back and never delivered again (no record, no log); now it is dead-lettered
// (`max-deliveries`, saying it waited) so it can be seen and re-sent.
//
// Real nats-server, the real Sensor runtime, an HTTP sink that fails until healed.
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sensorMaxDeliver } from '../../../src/bus/consumer.ts';
import { kvKey } from '../../../src/bus/kv.ts';
import { sensorBuckets } from '../../../src/bus/sensor-state.ts';
import { consumerName, eventStreamName } from '../../../src/bus/subjects.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { newBus, runSensor, startSink, type TestBus, until } from './fixtures.ts';

describe.skipIf(natsMissing())(`the room for waits${skipNote(natsMissing())}`, () => {
  let b: TestBus;
  beforeAll(async () => {
    b = await newBus(natsUrl());
  });
  afterAll(async () => {
    await b?.conn.close();
  });

  it('a wait on the last delivery the server makes dead-letters the event instead of leaving it undelivered', async () => {
    const sink = await startSink(() => 503);
    const spec = {
      maxDeliveries: 1,
      dependencies: [{ name: 'order', eventSourceName: 'hooks', eventName: 'park' }],
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
          circuitBreaker: { consecutiveFailures: 1, openDuration: '20ms', maxWait: '10m' },
        },
      ],
    };
    const records = async () => (await b.deadLetters()).filter((d) => d.sensor === 'park');
    const durable = consumerName('park', 'order');
    const delivered = async () =>
      (await b.jsm.consumers.info(eventStreamName(b.bus), durable)).delivered.consumer_seq;
    const room = sensorMaxDeliver(spec as never);
    // A first run makes the consumer and buckets; then the event, and 995 earlier waits of it.
    await (await runSensor(b, 'park', spec)).stop();
    await b.emit('hooks', 'park', { n: 1 });
    const consumer = await jetstream(b.conn.nc).consumers.get(eventStreamName(b.bus), durable);
    const prior = room - 1;
    let seq = 0;
    for (let i = 0; i < prior; i++) {
      const m = await consumer.next({ expires: 2000 });
      if (!m) throw new Error(`no delivery ${i + 1}`);
      seq = m.seq;
      m.nak();
    }
    const kv = await new Kvm(b.conn.nc).open(sensorBuckets(b.bus.namespace, 'park').processed);
    await kv.put(kvKey(`defers/order/${seq}`), String(prior));
    const s = await runSensor(b, 'park', spec);
    try {
      await until('a dead letter', async () => (await records()).length > 0, 20_000).catch(() => undefined);
      const deliveries = await delivered();
      const dead = await records();
      console.log(
        `wait-budget: max_deliver ${room}, deliveries ${deliveries}, calls ${sink.on().length}, dead-lettered ${dead.map((d) => `${d.reason}: ${(d.error as { message?: string })?.message}`).join(',') || 0}`,
      );
      expect(
        dead.map((d) => d.reason),
        'the event was neither delivered nor dead-lettered',
      ).toEqual(['max-deliveries']);
      const left = await b.jsm.consumers.info(eventStreamName(b.bus), durable);
      expect(left.num_ack_pending + left.num_pending).toBe(0);
    } finally {
      await s.stop();
      await sink.close();
    }
  }, 90_000);
});
