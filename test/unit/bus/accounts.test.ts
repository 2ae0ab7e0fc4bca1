import { describe, expect, it } from 'vitest';
import {
  accountPoolSize,
  assignSlots,
  serviceGrants,
  slotAccount,
  slotIndex,
} from '../../../src/bus/accounts.ts';

describe('account slots', () => {
  it('keeps the slots roles hold, gives the rest the lowest free ones, and resolves a shared slot', () => {
    const { slots, pool } = assignSlots(
      new Map<string, number | undefined>([
        ['Sensor/a', 3],
        ['Sensor/b', undefined],
        ['EventSource/c', 3],
        ['EventSource/d', 0],
      ]),
    );
    // "EventSource/c" sorts first and keeps 3; "Sensor/a" lost it and takes the lowest free one.
    expect(Object.fromEntries(slots)).toEqual({
      'EventSource/c': 3,
      'EventSource/d': 0,
      'Sensor/a': 1,
      'Sensor/b': 2,
    });
    expect(pool).toBe(32);
  });

  it('grows the pool by doubling and never shrinks it', () => {
    expect(accountPoolSize(0)).toBe(32);
    expect(accountPoolSize(33)).toBe(64);
    expect(accountPoolSize(10, 128)).toBe(128);
    const many = new Map(Array.from({ length: 40 }, (_, i) => [`r${i}`, undefined] as const));
    expect(assignSlots(many).pool).toBe(64);
  });

  it('names slots and reads them back', () => {
    expect(slotAccount(7)).toBe('W7');
    expect(slotIndex('W7')).toBe(7);
    expect(slotIndex('W07')).toBeUndefined();
    expect(slotIndex('SLUICE')).toBeUndefined();
    expect(slotIndex(undefined)).toBeUndefined();
  });

  it('imports every subject a role may publish to, pulls as streams of responses', () => {
    expect(
      serviceGrants({
        publish: ['$JS.API.CONSUMER.MSG.NEXT.s.c', '$JS.ACK.s.c.>', 'sluice.ns.b.es.*'],
        subscribe: [],
      }),
    ).toEqual([
      { subject: '$JS.ACK.s.c.>', response: 'singleton' },
      { subject: '$JS.API.CONSUMER.MSG.NEXT.s.c', response: 'stream' },
      { subject: '$JS.API.INFO', response: 'singleton' },
      { subject: 'sluice.ns.b.es.*', response: 'singleton' },
    ]);
  });
});
