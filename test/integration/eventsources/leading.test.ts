import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedSource } from '../../../src/eventsources/adapter.ts';
import type { SourceEntry } from '../../../src/eventsources/entries.ts';
import { leadExclusive } from '../../../src/eventsources/leading.ts';
import { waitFor } from '../../harness/proc.ts';
import { kubeConfig, kubeMissing, skipNote, uniqueName } from '../../harness/shared.ts';
import { recordingLogger } from './fixtures.ts';

const skip = kubeMissing();
describe.skipIf(skip)(`exclusive sources under leader election${skip ? skipNote(skip) : ''}`, () => {
  let ns: string;
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  beforeAll(async () => {
    ns = uniqueName('lead');
    await kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: ns } } });
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
  });

  it('a start that fails twice is tried again while leading; sources() gets the started ones; stop stops them', async () => {
    const { log, lines } = recordingLogger();
    let tries = 0;
    let stopped = 0;
    const source: StartedSource = {
      stop: async () => {
        stopped++;
      },
    };
    const leading = leadExclusive(
      {
        name: 'flaky',
        namespace: ns,
        identity: 'only',
        leaseDurationMs: 3000,
        renewDeadlineMs: 2000,
        retryPeriodMs: 500,
        kubeConfig: () => kubeConfig(),
        log,
      },
      [{ type: 'test', eventName: 'x' } as unknown as SourceEntry],
      async () => {
        tries++;
        if (tries <= 2) throw new Error(`broker not reachable (try ${tries})`);
        return [source];
      },
    );
    try {
      await waitFor('the third try', () => tries >= 3, { timeoutMs: 20_000 });
      expect(await leading.sources()).toEqual([source]);
      const failures = lines.filter((l) => l.msg === 'leading: sources failed to start; trying again');
      expect(failures.map((l) => l.err)).toEqual([
        'broker not reachable (try 1)',
        'broker not reachable (try 2)',
      ]);
      expect(unhandled).toEqual([]);
    } finally {
      await leading.stop();
    }
    await waitFor('the source stopped when the lead ended', () => stopped === 1, { timeoutMs: 10_000 });
    expect(tries).toBe(3);
  }, 40_000);
});
