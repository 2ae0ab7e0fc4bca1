import { describe, expect, it } from 'vitest';
import { EventRecorder, type EventSink, microTime } from '../../../src/kube/events.ts';

function sink() {
  const created: Array<Record<string, unknown>> = [];
  const patched: Array<{ name: string; body: Record<string, unknown> }> = [];
  const s: EventSink = {
    async create(_ns, body) {
      created.push(body);
    },
    async patch(_ns, name, body) {
      patched.push({ name, body });
    },
  };
  return { s, created, patched };
}

const regarding = {
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'Sensor',
  name: 's',
  namespace: 'n',
  uid: 'u1',
};

describe('EventRecorder', () => {
  it('identical events become one Event with a series count; a different note is a new Event', async () => {
    let now = 1_000_000;
    const { s, created, patched } = sink();
    const r = new EventRecorder({
      sink: s,
      controller: 'c',
      instance: 'i',
      now: () => now,
      seriesFlushMs: 60_000,
    });
    for (let i = 0; i < 5; i++) {
      r.record({ regarding, type: 'Warning', reason: 'BusUnreachable', action: 'Reconcile', note: 'down' });
      now += 1000;
    }
    r.record({ regarding, type: 'Warning', reason: 'BusUnreachable', action: 'Reconcile', note: 'other' });
    await r.flush();
    expect(created).toHaveLength(2);
    expect(created[0]).toMatchObject({ reason: 'BusUnreachable', type: 'Warning', regarding: { uid: 'u1' } });
    expect(created[0]!.eventTime).toMatch(/\.\d{6}Z$/);
    expect(patched).toHaveLength(1);
    expect(patched[0]!.name).toBe((created[0]!.metadata as { name: string }).name);
    expect(patched[0]!.body).toEqual({ series: { count: 5, lastObservedTime: microTime(1_004_000) } });
  });

  it('after the series window an identical event is created again', async () => {
    let now = 0;
    const { s, created } = sink();
    const r = new EventRecorder({
      sink: s,
      controller: 'c',
      instance: 'i',
      now: () => now,
      seriesWindowMs: 10_000,
    });
    r.record({ regarding, type: 'Normal', reason: 'ChildCreated', action: 'Apply', note: 'x' });
    now = 20_000;
    r.record({ regarding, type: 'Normal', reason: 'ChildCreated', action: 'Apply', note: 'x' });
    await r.flush();
    expect(created).toHaveLength(2);
  });

  it('spam filter: burst per object, refilled one token per period; other objects unaffected', async () => {
    let now = 0;
    const { s, created } = sink();
    const r = new EventRecorder({
      sink: s,
      controller: 'c',
      instance: 'i',
      now: () => now,
      burst: 3,
      refillMs: 1000,
    });
    for (let i = 0; i < 10; i++)
      r.record({ regarding, type: 'Normal', reason: 'R', action: 'A', note: `n${i}` });
    expect(created).toHaveLength(3);
    expect(r.dropped).toBe(7);
    r.record({
      regarding: { ...regarding, name: 'other', uid: 'u2' },
      type: 'Normal',
      reason: 'R',
      action: 'A',
      note: 'x',
    });
    expect(created).toHaveLength(4);
    now = 1500;
    r.record({ regarding, type: 'Normal', reason: 'R', action: 'A', note: 'later' });
    r.record({ regarding, type: 'Normal', reason: 'R', action: 'A', note: 'later2' });
    expect(created).toHaveLength(5);
    await r.flush();
  });

  it('a failed create is forgotten (the next identical event tries again) and never throws', async () => {
    const created: unknown[] = [];
    let fail = true;
    const errors: string[] = [];
    const r = new EventRecorder({
      sink: {
        async create(_n, b) {
          if (fail) throw new Error('forbidden');
          created.push(b);
        },
        async patch() {},
      },
      controller: 'c',
      instance: 'i',
      onError: (e) => errors.push((e as Error).message),
    });
    r.record({ regarding, type: 'Normal', reason: 'R', action: 'A', note: 'x' });
    await r.flush();
    fail = false;
    r.record({ regarding, type: 'Normal', reason: 'R', action: 'A', note: 'x' });
    await r.flush();
    expect(errors).toEqual(['forbidden']);
    expect(created).toHaveLength(1);
  });
});
