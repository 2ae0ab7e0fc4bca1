// The Bloom filter behind the Sensor's done-key index: never a false "absent" (that would let an
// event skip its claim when its key exists), about 1% false "maybe" at its capacity, and the
// memory the issue allows (≤ ~16 MiB at 1e7 keys).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BloomFilter, MAX_BLOOM_KEYS } from '../../../src/sensors/bloom.ts';
import { indexCapacity, MIN_ENTRY_BYTES } from '../../../src/sensors/done-index.ts';

/** 40-hex keys like the Sensor's idempotency keys. */
const key = (i: number) => createHash('sha256').update(`k${i}`).digest('hex').slice(0, 40);

describe('BloomFilter', () => {
  it('has every key added, and ~1% false positives at capacity', () => {
    const n = 50_000;
    const f = new BloomFilter(n);
    for (let i = 0; i < n; i++) f.add(key(i));
    for (let i = 0; i < n; i++) expect(f.mightHave(key(i))).toBe(true);
    let fp = 0;
    const probes = 50_000;
    for (let i = n; i < n + probes; i++) if (f.mightHave(key(i))) fp++;
    const rate = fp / probes;
    expect(rate).toBeLessThan(0.02);
    expect(f.hashes).toBe(7);
  });

  it('is exact on short, similar keys too (used/<trigger>/<source>/<subject>/<id>)', () => {
    const f = new BloomFilter(1000);
    for (let i = 0; i < 1000; i++) f.add(`used/t/hooks/orders/${i}`);
    for (let i = 0; i < 1000; i++) expect(f.mightHave(`used/t/hooks/orders/${i}`)).toBe(true);
    let fp = 0;
    for (let i = 1000; i < 11_000; i++) if (f.mightHave(`used/t/hooks/orders/${i}`)) fp++;
    expect(fp / 10_000).toBeLessThan(0.03);
  });

  it('takes ≤ 12 MiB at 1e7 keys, and is sized from the bucket limit', () => {
    expect(new BloomFilter(MAX_BLOOM_KEYS).bytes).toBeLessThanOrEqual(12 * 1024 ** 2);
    expect(new BloomFilter(10 * MAX_BLOOM_KEYS).capacity).toBe(MAX_BLOOM_KEYS);
    expect(indexCapacity(16 * 1024 ** 2)).toBe((16 * 1024 ** 2) / MIN_ENTRY_BYTES);
    expect(indexCapacity(-1)).toBe(1_000_000);
    expect(indexCapacity(1e15)).toBe(MAX_BLOOM_KEYS);
  });
});
