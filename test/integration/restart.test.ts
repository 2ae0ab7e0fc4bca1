// Restart behaviour of the harness servers themselves: these tests own dedicated instances so
// they can kill them without disturbing tests that share the global ones.
import { CoreV1Api } from '@kubernetes/client-node';
import { AckPolicy, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { startControlPlane } from '../harness/controlplane.ts';
import { startNats } from '../harness/nats.ts';
import { findTool } from '../harness/tools.ts';

const natsTool = findTool('nats-server');
const kubeTool = [findTool('kube-apiserver'), findTool('etcd')].find((t) => !t.path);

describe.skipIf(!natsTool.path)(
  `nats-server restart${natsTool.missing ? ` [skipped: ${natsTool.missing}]` : ''}`,
  () => {
    it('keeps acknowledged publishes and consumer progress across SIGKILL + restart on the same store', async () => {
      const server = await startNats();
      try {
        const nc = await connect({ servers: server.url });
        const jsm = await jetstreamManager(nc);
        await jsm.streams.add({ name: 'DURABLE', subjects: ['durable.>'], storage: StorageType.File });
        const js = jetstream(nc);
        const acks = await Promise.all(
          Array.from({ length: 300 }, (_, i) => js.publish('durable.x', `m${i}`, { msgID: `m${i}` })),
        );
        expect(acks.at(-1)?.seq).toBe(300);
        await jsm.consumers.add('DURABLE', {
          durable_name: 'c',
          ack_policy: AckPolicy.Explicit,
          ack_wait: 1_000_000_000, // 1s in ns, so unacked messages come back quickly
        });
        const consumer = await js.consumers.get('DURABLE', 'c');
        for (let i = 0; i < 100; i++) {
          const m = await consumer.next({ expires: 5_000 });
          expect(m?.string()).toBe(`m${i}`);
          await m!.ackAck();
        }
        await nc.close();

        await server.kill();
        expect(server.running()).toBe(false);
        await server.start();

        const nc2 = await connect({ servers: server.url });
        const jsm2 = await jetstreamManager(nc2);
        const info = await jsm2.streams.info('DURABLE');
        expect(info.state.messages).toBe(300);
        expect(info.state.last_seq).toBe(300);
        // nats-server persists consumer ack state in batches, so a crash can roll the ack floor
        // back: acked messages may come again (at-least-once), but none is skipped. This is why the
        // Sensor keeps its own processed-set (DESIGN.md §4.6) instead of trusting acks alone.
        const ci = await jsm2.consumers.info('DURABLE', 'c');
        expect(ci.ack_floor.stream_seq).toBeLessThanOrEqual(100);
        // Everything past the ack floor comes again (unacked ones after ack_wait): nothing skipped.
        const floor = ci.ack_floor.stream_seq;
        const resumed = await jetstream(nc2).consumers.get('DURABLE', 'c');
        const seen = new Set<string>();
        while (seen.size < 300 - floor) {
          const m = await resumed.next({ expires: 5_000 });
          if (!m) throw new Error(`no message after ${seen.size} of ${300 - floor}`);
          seen.add(m.string());
          m.ack();
        }
        expect([...seen].sort()).toEqual(
          Array.from({ length: 300 - floor }, (_, i) => `m${i + floor}`).sort(),
        );
        await nc2.close();
      } finally {
        await server.stop();
      }
    });
  },
);

describe.skipIf(!!kubeTool)(
  `control plane restart${kubeTool ? ` [skipped: ${kubeTool.missing}]` : ''}`,
  () => {
    it('keeps objects across an API server restart and a full etcd + API server restart', async () => {
      const cp = await startControlPlane();
      try {
        const core = () => cp.kubeConfig().makeApiClient(CoreV1Api);
        await core().createNamespacedConfigMap({
          namespace: 'default',
          body: { metadata: { name: 'survivor' }, data: { k: 'v' } },
        });

        await cp.restartApiServer();
        expect(
          (await core().readNamespacedConfigMap({ name: 'survivor', namespace: 'default' })).data,
        ).toEqual({
          k: 'v',
        });

        await cp.stop();
        await cp.start();
        expect(
          (await core().readNamespacedConfigMap({ name: 'survivor', namespace: 'default' })).data,
        ).toEqual({
          k: 'v',
        });
      } finally {
        await cp.stop();
      }
    });
  },
);
