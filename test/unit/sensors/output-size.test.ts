import { describe, expect, it } from 'vitest';
import { exceedsJsonSize } from '../../../src/sensors/sandbox/output-size.ts';

describe('exceedsJsonSize', () => {
  it('agrees with JSON.stringify around the limit for ASCII values', () => {
    const values = [
      { a: 'x'.repeat(100), b: [1, 22, 333, null, true], c: { d: 'e' } },
      ['x'.repeat(50)],
      'abc',
      12345,
    ];
    for (const v of values) {
      const n = JSON.stringify(v).length;
      expect(exceedsJsonSize(v, n + 8), JSON.stringify(v).slice(0, 20)).toBe(false);
      expect(exceedsJsonSize(v, Math.floor(n * 0.8)), JSON.stringify(v).slice(0, 20)).toBe(true);
    }
  });

  it('stops early on a huge value and copes with deep nesting', () => {
    const wide = Array.from({ length: 1_000_000 }, () => 'yy');
    expect(exceedsJsonSize(wide, 1000)).toBe(true);
    let deep: unknown = 'x';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(exceedsJsonSize(deep, 1 << 20)).toBe(false);
    expect(exceedsJsonSize(deep, 1000)).toBe(true);
  });
});
