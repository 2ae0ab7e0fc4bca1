// Shared pieces of the AND-join adversary tests: a two-dependency Sensor whose trigger posts both
// event ids, and a check that a Sensor's consumers have nothing pending or unacknowledged.
import { eventStreamName } from '../../../../src/bus/subjects.ts';
import type { TestBus } from '../fixtures.ts';

/** Dependencies a (hooks/left) and b (hooks/right); trigger `pair` (a && b) posts {a, b} ids to `url`. */
export const pairSpec = (url: string) => ({
  dependencies: [
    { name: 'a', eventSourceName: 'hooks', eventName: 'left' },
    { name: 'b', eventSourceName: 'hooks', eventName: 'right' },
  ],
  triggers: [
    {
      template: {
        name: 'pair',
        conditions: 'a && b',
        http: {
          url,
          payload: [
            { src: { dependencyName: 'a', contextKey: 'id' }, dest: 'a' },
            { src: { dependencyName: 'b', contextKey: 'id' }, dest: 'b' },
          ],
        },
      },
    },
  ],
});

/** True when every consumer of Sensor `sensor` (all consumers when omitted) is settled. */
export async function settled(b: TestBus, sensor?: string): Promise<boolean> {
  const consumers = await b.jsm.consumers.list(eventStreamName(b.bus)).next();
  return consumers
    .filter((c) => sensor === undefined || c.name.startsWith(`${sensor}_`))
    .every((c) => c.num_ack_pending === 0 && c.num_pending === 0);
}
