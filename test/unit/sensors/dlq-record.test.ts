import { describe, expect, it } from 'vitest';
import type { CloudEvent } from '../../../src/eventsources/envelope.ts';
import { encodeDeadLetter } from '../../../src/sensors/dlq-record.ts';
import type { DeadLetterRecord } from '../../../src/sensors/settle.ts';

const ev = (id: string, data: unknown) =>
  ({
    id,
    source: 'hooks',
    type: 'webhook',
    subject: id,
    time: '',
    specversion: '1.0',
    data,
  }) as unknown as CloudEvent;

const record = (events: Record<string, CloudEvent>): DeadLetterRecord => ({
  kind: 'trigger',
  namespace: 'ns',
  sensor: 's',
  trigger: 't',
  triggerType: 'http',
  idempotencyKey: 'k',
  events,
  attempts: 1,
  error: { code: 'Rejected', message: 'no' },
  firstAttemptAt: '',
  deadLetteredAt: '',
});

const decode = (b: Uint8Array) => JSON.parse(Buffer.from(b).toString()) as DeadLetterRecord;

describe('dead-letter records fit in one bus message', () => {
  it('a record under the limit is stored whole', () => {
    const r = record({ a: ev('a', { x: 1 }) });
    expect(decode(encodeDeadLetter(r, 64 * 1024))).toEqual(r);
  });

  it('over the limit, the largest event data is cut first, and only as much as needed', () => {
    const r = record({
      small: ev('s', { v: 'y'.repeat(20_000) }),
      big: ev('b', { v: 'x'.repeat(60_000) }),
    });
    const bytes = encodeDeadLetter(r, 64 * 1024);
    expect(bytes.length).toBeLessThanOrEqual(56 * 1024);
    const d = decode(bytes);
    expect(d.truncated).toEqual(['big']);
    expect(d.events.small!.data).toEqual({ v: 'y'.repeat(20_000) });
    const m = (d.events.big!.data as { 'sluice.truncated': { bytes: number; sha256: string; head: string } })[
      'sluice.truncated'
    ];
    expect(m.bytes).toBe(JSON.stringify({ v: 'x'.repeat(60_000) }).length);
    expect(m.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.head).toHaveLength(2048);
    // the record passed in is untouched
    expect((r.events.big!.data as { v: string }).v).toHaveLength(60_000);
  });

  it('both are cut when one is not enough; then the error text; a record that cannot fit at all throws', () => {
    const r = record({ a: ev('a', 'x'.repeat(40_000)), b: ev('b', 'y'.repeat(40_000)) });
    expect(decode(encodeDeadLetter(r, 32 * 1024)).truncated).toEqual(['a', 'b']);
    const huge = { ...record({}), error: { code: 'x', message: 'z'.repeat(10_000) } };
    const fitted = encodeDeadLetter(huge, 10 * 1024);
    expect(fitted.length).toBeLessThanOrEqual(2 * 1024);
    expect((decode(fitted).error as { message: string }).message).toHaveLength(1025);
    expect(() => encodeDeadLetter(huge, 8 * 1024 + 100)).toThrow(/over the bus limit/);
  });
});
