// Smoke test of the shared real nats-server: JetStream stream, 1,000 publishes, consume + ack.
import { AckPolicy, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../harness/shared.ts';

describe.skipIf(natsMissing())(`JetStream smoke${skipNote(natsMissing())}`, () => {
  let nc: NatsConnection;

  beforeAll(async () => {
    nc = await connect({ servers: natsUrl() });
  });
  afterAll(async () => {
    await nc?.drain();
  });

  it('creates a stream, publishes 1,000 messages and consumes them all with acks', async () => {
    const name = uniqueName('SMOKE').replaceAll('-', '_');
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name, subjects: [`${name}.>`], storage: StorageType.File });
    const js = jetstream(nc);

    const acks = [];
    for (let i = 0; i < 1000; i++) acks.push(js.publish(`${name}.msg`, `payload-${i}`, { msgID: `id-${i}` }));
    const results = await Promise.all(acks);
    expect(new Set(results.map((r) => r.seq)).size).toBe(1000);
    expect(results.every((r) => !r.duplicate)).toBe(true);

    await jsm.consumers.add(name, { durable_name: 'smoke', ack_policy: AckPolicy.Explicit });
    const consumer = await js.consumers.get(name, 'smoke');
    const seen = new Set<string>();
    const messages = await consumer.consume({ max_messages: 200 });
    for await (const m of messages) {
      seen.add(m.string());
      if (seen.size === 1000) {
        await m.ackAck();
        break;
      }
      m.ack();
    }
    expect(seen.size).toBe(1000);
    expect(seen.has('payload-0') && seen.has('payload-999')).toBe(true);

    const info = await waitFor('all acks to be applied', async () => {
      const ci = await jsm.consumers.info(name, 'smoke');
      return ci.num_ack_pending === 0 && ci.num_pending === 0 ? ci : undefined;
    });
    expect(info.delivered.stream_seq).toBe(1000);
    expect(info.ack_floor.stream_seq).toBe(1000);
    await jsm.streams.delete(name);
  });
});
