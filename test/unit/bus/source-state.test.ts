import { describe, expect, it } from 'vitest';
import { streamConfigDuplicatesMs } from '../../../src/api/stream-config.ts';
import {
  allEventSourceBuckets,
  calendarBucket,
  eventSourceBucketSpecs,
  eventSourceBuckets,
  webhookIdsBucket,
} from '../../../src/bus/source-state.ts';

describe('EventSource buckets', () => {
  const hook = { orders: { port: '12000', endpoint: '/orders', method: 'POST' } };
  it('gives the webhook family a request-id bucket that lives for the duplicates window', () => {
    for (const type of ['webhook', 'github', 'gitlab', 'slack', 'stripe', 'bitbucket', 'bitbucketserver'])
      expect(eventSourceBucketSpecs('ns', 'es', { [type]: hook }, 600_000)).toEqual([
        { name: webhookIdsBucket('ns', 'es'), ttlMs: 600_000 },
      ]);
  });
  it('gives a persisting calendar its bucket; sources without state get none', () => {
    const cal = { calendar: { tick: { interval: '1s', persistence: { catchup: { enabled: true } } } } };
    expect(eventSourceBuckets('ns', 'es', cal)).toEqual([calendarBucket('ns', 'es')]);
    expect(eventSourceBuckets('ns', 'es', { calendar: { tick: { interval: '1s' } } })).toEqual([]);
    expect(eventSourceBuckets('ns', 'es', { resource: { r: {} }, webhook: {} })).toEqual([]);
    expect(eventSourceBuckets('ns', 'es', { ...cal, webhook: hook })).toEqual([
      calendarBucket('ns', 'es'),
      webhookIdsBucket('ns', 'es'),
    ]);
    expect(allEventSourceBuckets('ns', 'es')).toEqual(
      eventSourceBuckets('ns', 'es', { ...cal, webhook: hook, sftp: { s: {} } }),
    );
  });
  it('takes the duplicates window from streamConfig, capped at maxAge', () => {
    expect(streamConfigDuplicatesMs(undefined)).toBe(120_000);
    expect(streamConfigDuplicatesMs('duplicates: 10m')).toBe(600_000);
    expect(streamConfigDuplicatesMs('duplicates: 10m\nmaxAge: 1m')).toBe(60_000);
  });
});
