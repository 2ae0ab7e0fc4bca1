// Total field conversions (a bad per-message field maps to a fallback, never throws) and the
// shared store loop: a definite bus refusal ends at once, anything else is held and retried.
import { describe, expect, it } from 'vitest';
import { BusError } from '../../../src/bus/errors.ts';
import { base64Binary, dateFromMs, msFromNanos, validDate } from '../../../src/eventsources/fields.ts';
import { Backoff, isDefiniteRefusal, storeHeld } from '../../../src/eventsources/retry.ts';

describe('field conversions', () => {
  it('dateFromMs: numbers, numeric strings and bigints; undefined outside what a Date holds', () => {
    expect(dateFromMs(0)?.toISOString()).toBe('1970-01-01T00:00:00.000Z');
    expect(dateFromMs('1700000000000')?.getTime()).toBe(1_700_000_000_000);
    expect(dateFromMs(1_700_000_000_000n)?.getTime()).toBe(1_700_000_000_000);
    for (const bad of ['-9000000000000000', 9e15, Number.NaN, 'soon', '', undefined, null, {}])
      expect(dateFromMs(bad)).toBeUndefined();
  });
  it('validDate and msFromNanos never throw', () => {
    expect(validDate(new Date('nope'))).toBeUndefined();
    expect(validDate('2020-01-01')).toBeUndefined();
    expect(msFromNanos('1700000000123456789')).toBe(1_700_000_000_123);
    expect(msFromNanos(5_000_000n)).toBe(5);
    expect(msFromNanos('12abc')).toBeUndefined();
    expect(msFromNanos(undefined)).toBeUndefined();
  });
  it('base64Binary: byte arrays become base64, the rest is kept', () => {
    const attrs = {
      bin: { DataType: 'Binary', BinaryValue: new Uint8Array([104, 105]) },
      s: { StringValue: 'x' },
    };
    expect(base64Binary(attrs)).toEqual({
      bin: { DataType: 'Binary', BinaryValue: 'aGk=' },
      s: { StringValue: 'x' },
    });
    expect(JSON.stringify(base64Binary(Buffer.from('hi')))).toBe('"aGk="');
  });
});

describe('storeHeld', () => {
  const signal = new AbortController().signal;
  it('MessageTooLarge and Invalid are definite refusals: returned at once, never retried', async () => {
    for (const code of ['MessageTooLarge', 'Invalid'] as const) {
      let calls = 0;
      const r = await storeHeld(
        async () => {
          calls++;
          throw new BusError(code, 'no');
        },
        { signal },
      );
      expect(r.outcome).toBe('refused');
      expect(calls).toBe(1);
    }
    expect(isDefiniteRefusal(new BusError('StreamFull', 'full'))).toBe(false);
    expect(isDefiniteRefusal(new Error('other'))).toBe(false);
  });
  it('other errors are held (onHold) and retried until stored', async () => {
    let calls = 0;
    const held: string[] = [];
    const r = await storeHeld(
      async () => {
        if (++calls < 3) throw new BusError(calls === 1 ? 'StreamFull' : 'Timeout', 'later');
      },
      { signal, backoff: new Backoff(1, 2), onHold: (err) => void held.push((err as BusError).code) },
    );
    expect(r.outcome).toBe('stored');
    expect(held).toEqual(['StreamFull', 'Timeout']);
  });
  it('stops when the signal aborts', async () => {
    const ac = new AbortController();
    const r = storeHeld(
      async () => {
        throw new BusError('BusUnavailable', 'down');
      },
      { signal: ac.signal, backoff: new Backoff(50, 50) },
    );
    ac.abort();
    expect((await r).outcome).toBe('stopped');
  });
});
