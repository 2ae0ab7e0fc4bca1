// `sluice dev` has no controller, so it does the controller's bus work itself: every Sensor's
// consumers exist before any EventSource publishes (interest retention keeps nothing for a Sensor
// that has no consumer yet), and consumers of dependencies or Sensors that left the manifests are
// deleted, so they do not keep events forever.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerName, eventStreamName } from '../../../src/bus/subjects.ts';
import { loadManifests } from '../../../src/dev/manifests.ts';
import { DevSession } from '../../../src/dev/session.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

const manifests = (ns: string, deps: string[], withSensor = true) =>
  [
    `apiVersion: argoproj.io/v1alpha1\nkind: EventBus\nmetadata: {name: default, namespace: ${ns}}\nspec:\n  jetstream:\n    streamConfig: "maxMsgs: 50"`,
    `apiVersion: argoproj.io/v1alpha1\nkind: EventSource\nmetadata: {name: hooks, namespace: ${ns}}\nspec:\n  webhook:\n    orders: {port: "0", endpoint: /orders, method: POST}`,
    ...(withSensor
      ? [
          `apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nmetadata: {name: orders, namespace: ${ns}}\nspec:\n  dependencies:\n${deps
            .map((d) => `    - {name: ${d}, eventSourceName: hooks, eventName: orders}`)
            .join('\n')}\n  triggers:\n    - template: {name: deliver, log: {}}`,
        ]
      : []),
  ].join('\n---\n');

describe.skipIf(natsMissing())(`sluice dev bus state${skipNote(natsMissing())}`, () => {
  let nc: NatsConnection;
  let session: DevSession;
  const ns = uniqueName('dev');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-devstate-'));
  const file = join(dir, 'all.yaml');
  const said: string[] = [];
  beforeAll(async () => {
    nc = await connect({ servers: natsUrl() });
    session = new DevSession({
      nc,
      registry: newRegistry(),
      log: createLogger({ level: 'silent' }),
      say: (l) => said.push(l),
      host: '127.0.0.1',
    });
  });
  afterAll(async () => {
    await session?.stop();
    await nc?.close();
  });

  const consumers = async () => {
    const out: string[] = [];
    for await (const c of (await jetstreamManager(nc)).consumers.list(
      eventStreamName({ namespace: ns, busName: 'default' }),
    ))
      out.push(c.name);
    return out.sort();
  };

  it('creates Sensor consumers before EventSources run and removes those that left the manifests', async () => {
    writeFileSync(file, manifests(ns, ['a', 'b']));
    await session.apply(loadManifests([file]));
    expect(await consumers()).toEqual([consumerName('orders', 'a'), consumerName('orders', 'b')].sort());
    writeFileSync(file, manifests(ns, ['a']));
    await session.apply(loadManifests([file]));
    expect(await consumers()).toEqual([consumerName('orders', 'a')]);
    writeFileSync(file, manifests(ns, [], false));
    await session.apply(loadManifests([file]));
    expect(await consumers()).toEqual([]);
    expect(said.join('\n')).not.toMatch(/problem/);
  });
});
