// A Bloom filter of strings: "maybe present" or "certainly absent", in a fixed bit array. Used by
// the done-key index (done-index.ts), where a false "maybe" only sends an event down the exact
// (claim) path, so a false positive costs one bus round trip and never a lost or repeated effect.
//
// Sizing (the textbook formulas): m = -n·ln(p) / ln(2)² bits and k = (m/n)·ln(2) hash functions
// for n keys at false-positive rate p; at p = 1% that is ~9.6 bits and 7 probes per key, so 1e7
// keys take ~12 MiB. The k probes come from two 32-bit FNV-1a hashes (double hashing:
// h1 + i·h2, Kirsch and Mitzenmacher), cheap on the 40-character hex keys the Sensor uses.

/** Most keys a filter is sized for (bounds its memory to ~12 MiB at 1% false positives). */
export const MAX_BLOOM_KEYS = 10_000_000;

const LN2 = Math.LN2;

/** FNV-1a, 32 bits, over the UTF-16 code units of `s`, from `seed`. */
function fnv1a(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // A final avalanche (murmur3's fmix32): FNV's low bits alone mix poorly on similar keys.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

export class BloomFilter {
  /** Keys the filter was sized for. */
  readonly capacity: number;
  /** Bits in the filter. */
  readonly bits: number;
  /** Probes per key. */
  readonly hashes: number;
  private readonly words: Uint32Array;
  /** Keys added (duplicates count again: an upper bound on distinct keys). */
  added = 0;

  /**
   * A filter for `capacity` keys (clamped to 1 … MAX_BLOOM_KEYS) at false-positive rate
   * `falsePositive` (0 < p < 1, default 0.01) once that many keys are in.
   */
  constructor(capacity: number, falsePositive = 0.01) {
    const n = Math.min(MAX_BLOOM_KEYS, Math.max(1, Math.ceil(capacity)));
    const p = Math.min(0.5, Math.max(1e-6, falsePositive));
    const m = Math.max(64, Math.ceil((-n * Math.log(p)) / (LN2 * LN2)));
    this.capacity = n;
    this.words = new Uint32Array(Math.ceil(m / 32));
    this.bits = this.words.length * 32;
    this.hashes = Math.max(1, Math.round((this.bits / n) * LN2));
  }

  /** Bytes the bit array takes. */
  get bytes(): number {
    return this.words.byteLength;
  }

  add(key: string): void {
    const h1 = fnv1a(key, 0x811c9dc5);
    const h2 = fnv1a(key, 0x9e3779b9) | 1;
    for (let i = 0; i < this.hashes; i++) {
      const bit = (h1 + Math.imul(i, h2)) >>> 0;
      const at = bit % this.bits;
      this.words[at >>> 5]! |= 1 << (at & 31);
    }
    this.added++;
  }

  /** False: `key` was never added. True: it may have been. */
  mightHave(key: string): boolean {
    const h1 = fnv1a(key, 0x811c9dc5);
    const h2 = fnv1a(key, 0x9e3779b9) | 1;
    for (let i = 0; i < this.hashes; i++) {
      const bit = (h1 + Math.imul(i, h2)) >>> 0;
      const at = bit % this.bits;
      if ((this.words[at >>> 5]! & (1 << (at & 31))) === 0) return false;
    }
    return true;
  }
}
