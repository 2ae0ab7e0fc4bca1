// The fast-path predicate (fast-path.ts): a call skips its claim only on a first delivery, to the
// sole consumer, past where the consumer stood at bind, with the index ready and the key absent,
// and never while the same key runs here.
import type { JsMsg } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { FastPath, type KeyIndex } from '../../../src/sensors/fast-path.ts';

const index = (ready = true): KeyIndex & { keys: Set<string> } => {
  const keys = new Set<string>();
  return {
    keys,
    ready,
    mightHave: (k) => !ready || keys.has(k),
    add: (k) => void keys.add(k),
  };
};
const msg = (seq: number, deliveryCount = 1) => ({ seq, info: { deliveryCount } }) as unknown as JsMsg;

describe('FastPath', () => {
  it('is fresh only for a first delivery past the bind position, ready and alone', () => {
    let sole = true;
    const f = new FastPath(index(), () => sole);
    expect(f.fresh(msg(11), 10)).toBe(true);
    expect(f.fresh(msg(10), 10)).toBe(false); // an earlier process may have seen it
    expect(f.fresh(msg(11, 2), 10)).toBe(false); // a redelivery
    expect(f.fresh(msg(11), Number.POSITIVE_INFINITY)).toBe(false); // not bound yet
    sole = false;
    expect(f.fresh(msg(11), 10)).toBe(false); // another replica may consume
    expect(new FastPath(index(false), () => true).fresh(msg(11), 10)).toBe(false); // rebuilding
  });

  it('takes a key once: recorded in the index and as running until finished', () => {
    const idx = index();
    const f = new FastPath(idx, () => true);
    expect(f.take('abc')).toBe(true);
    expect(idx.keys.has('abc')).toBe(true);
    expect(f.busy('abc')).toBe(true);
    expect(f.take('abc')).toBe(false); // a duplicate claims (and waits while busy)
    f.finish('abc');
    expect(f.busy('abc')).toBe(false);
    expect(f.take('abc')).toBe(false); // the index remembers it
    idx.keys.add('k=20x');
    expect(f.take('k x')).toBe(false); // looked up KV-encoded
    expect(new FastPath(index(false), () => true).take('new')).toBe(false);
  });

  it('a lost lead makes every call still running without a claim write it now, and only those', () => {
    const f = new FastPath(index(), () => true);
    const claimed: string[] = [];
    for (const k of ['a', 'b', 'c']) {
      expect(f.take(k)).toBe(true);
      f.onLeadLost(k, () => claimed.push(k));
    }
    f.finish('b'); // done: its done mark is stored, nothing to claim
    f.onLeadLost('zzz', () => claimed.push('zzz')); // not running here: ignored
    f.leadLost();
    expect(claimed.sort()).toEqual(['a', 'c']);
  });
});
