import { describe, expect, it } from 'vitest';
import { streamConfigDuplicatesMs } from '../../../src/api/stream-config.ts';
import { eventSourcePermissions, kvSubjects } from '../../../src/bus/permissions.ts';
import {
  allEventSourceBuckets,
  calendarBucket,
  eventSourceBucketSpecs,
  eventSourceBuckets,
  sftpBucket,
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
  it("an sftp source gets its listing bucket, and its credential may use that bucket and no other's", () => {
    const spec = { sftp: { drop: { watchPathConfig: { directory: '/in/' } } } };
    expect(eventSourceBucketSpecs('ns', 'es', spec, 120_000)).toEqual([{ name: sftpBucket('ns', 'es') }]);
    const p = eventSourcePermissions(
      { namespace: 'ns', busName: 'default' },
      'es',
      eventSourceBuckets('ns', 'es', spec),
    );
    for (const s of kvSubjects(sftpBucket('ns', 'es'))) expect(p.publish).toContain(s);
    expect(p.publish.filter((s) => s.includes(sftpBucket('ns', 'other')))).toEqual([]);
    expect(
      p.publish.filter(
        (s) => s.startsWith('$JS.API.STREAM.CREATE') || s.startsWith('$JS.API.CONSUMER.CREATE'),
      ),
    ).toEqual([]);
  });
  it('takes the duplicates window from streamConfig, capped at maxAge', () => {
    expect(streamConfigDuplicatesMs(undefined)).toBe(120_000);
    expect(streamConfigDuplicatesMs('duplicates: 10m')).toBe(600_000);
    expect(streamConfigDuplicatesMs('duplicates: 10m\nmaxAge: 1m')).toBe(60_000);
  });
});
