// Which KV buckets the controller's sweep may delete: only sluice's Sensor/EventSource buckets of
// the namespace asked about whose owner is gone; everything else on a shared server stays.
import { describe, expect, it } from 'vitest';
import { orphanBuckets } from '../../../src/bus/orphan-state.ts';
import { sensorBuckets } from '../../../src/bus/sensor-state.ts';
import { allEventSourceBuckets } from '../../../src/bus/source-state.ts';
import { kvBucketName } from '../../../src/bus/subjects.ts';

describe('orphanBuckets', () => {
  const ns = 'team-a';
  const live = { sensors: ['orders'], eventSources: ['hooks'] };
  const liveBuckets = [...Object.values(sensorBuckets(ns, 'orders')), ...allEventSourceBuckets(ns, 'hooks')];

  it('keeps the buckets of live Sensors and EventSources', () => {
    expect(orphanBuckets(liveBuckets, ns, live)).toEqual([]);
  });

  it('finds the buckets of a gone Sensor and a gone EventSource', () => {
    const gone = [
      ...Object.values(sensorBuckets(ns, 'old-sensor')),
      ...allEventSourceBuckets(ns, 'old_source'),
    ];
    expect(orphanBuckets([...liveBuckets, ...gone], ns, live)).toEqual([...gone].sort());
  });

  it('leaves other namespaces, other tools, unknown purposes and shortened names alone', () => {
    const others = [
      ...Object.values(sensorBuckets('team-a-2', 'x')), // another namespace with the same prefix
      ...Object.values(sensorBuckets('team', 'a-x')), // "team" + "a-x" must not read as team-a
      kvBucketName(ns, 'x', 'something-else'),
      'orders-cache', // a bucket some other application keeps on the server
      kvBucketName(ns, 'y'.repeat(300), 'processed'), // hashed: owner unknown
    ];
    expect(orphanBuckets(others, ns, live)).toEqual([]);
  });

  it('a Sensor and an EventSource of the same name keep only their own buckets', () => {
    const both = [...Object.values(sensorBuckets(ns, 'hooks')), ...allEventSourceBuckets(ns, 'hooks')];
    expect(orphanBuckets(both, ns, live)).toEqual(Object.values(sensorBuckets(ns, 'hooks')).sort());
  });
});
