// Dead-letter records fitted to the bus's largest message (src/sensors/dlq-fit.ts).
import { describe, expect, it } from 'vitest';
import { envelope } from '../../../src/eventsources/envelope.ts';
import { encodeDeadLetter, HEADER_ROOM } from '../../../src/sensors/dlq-fit.ts';
import type { DeadLetterRecord } from '../../../src/sensors/settle.ts';

const ev = (id: string, data: unknown, extra: Record<string, string> = {}) => ({
  ...envelope({ id, source: 'hooks', type: 'webhook', subject: id, data }),
  ...extra,
});

const record = (events: DeadLetterRecord['events']): DeadLetterRecord => ({
  kind: 'trigger',
  namespace: 'ns',
  sensor: 's',
  trigger: 't',
  reason: 'trigger-failed',
  triggerType: 'http',
  idempotencyKey: 'k',
  events,
  attempts: 1,
  error: { code: 'Rejected', message: '400' },
  firstAttemptAt: '2026-01-01T00:00:00Z',
  deadLetteredAt: '2026-01-01T00:00:01Z',
});

const parse = (b: Buffer) => JSON.parse(b.toString()) as DeadLetterRecord;

describe('encodeDeadLetter', () => {
  it('a record that fits is the record as it is', () => {
    const r = record({ a: ev('a', { x: 1 }) });
    expect(encodeDeadLetter(r, 64 * 1024).toString()).toBe(JSON.stringify(r));
  });

  it('leaves out the data of the largest event first and only as much as needed', () => {
    const r = record({
      small: ev('small', { s: 'y'.repeat(2000) }),
      big: ev('big', { b: 'x'.repeat(9000) }),
    });
    const max = HEADER_ROOM + JSON.stringify(r).length - 5000;
    const out = encodeDeadLetter(r, max);
    expect(out.length).toBeLessThanOrEqual(max - HEADER_ROOM);
    const got = parse(out);
    expect(got.events.big!.data).toBeNull();
    expect(got.events.big!.id).toBe('big');
    expect(got.events.small!.data).toEqual({ s: 'y'.repeat(2000) });
    expect(got.omittedData).toEqual([{ dependency: 'big', bytes: JSON.stringify(r.events.big).length }]);
  });

  it('keeps only the identity of events whose other attributes are still too large', () => {
    const r = record({ a: ev('a', { x: 1 }, { huge: 'z'.repeat(20_000) }) });
    const out = encodeDeadLetter(r, HEADER_ROOM + 2000);
    expect(out.length).toBeLessThanOrEqual(2000);
    const got = parse(out);
    expect(got.events.a).toMatchObject({ id: 'a', source: 'hooks', subject: 'a', data: null });
    expect(got.events.a).not.toHaveProperty('huge');
    expect(got.omittedData).toHaveLength(1);
  });
});
