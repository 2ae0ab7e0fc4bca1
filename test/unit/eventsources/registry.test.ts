import { describe, expect, it } from 'vitest';
import { SOURCE_TYPES } from '../../../src/api/eventsource/index.ts';
import { ADAPTERS, loadAdapter } from '../../../src/eventsources/adapters.ts';
import { compileFilter, FilterError } from '../../../src/eventsources/filter.ts';
import { SUPPORTED_SOURCE_TYPES } from '../../../src/eventsources/supported.ts';

describe('adapter registry', () => {
  it('runs exactly the types the controller reports as supported', () => {
    expect(Object.keys(ADAPTERS).sort()).toEqual([...SUPPORTED_SOURCE_TYPES].sort());
  });
  it('each adapter loads, names its own type and is a known source type', async () => {
    for (const type of Object.keys(ADAPTERS)) {
      expect(SOURCE_TYPES).toContain(type);
      const a = await loadAdapter(type);
      expect(a?.type).toBe(type);
    }
    expect(await loadAdapter('pulsar')).toBeUndefined();
  });
});

describe('filter.expression', () => {
  it('passes only events for which the expression is true', () => {
    const f = compileFilter('body.action == "opened" && body.count > 2');
    expect(f.matches({ body: { action: 'opened', count: 3 } })).toBe(true);
    expect(f.matches({ body: { action: 'opened', count: 1 } })).toBe(false);
    expect(f.matches({ body: { action: 'closed', count: 9 } })).toBe(false);
  });
  it('treats a missing path or a non-boolean result as not matching', () => {
    expect(compileFilter('body.a.b.c == 1').matches({ body: {} })).toBe(false);
    expect(compileFilter('body.name').matches({ body: { name: 'x' } })).toBe(false);
  });
  it('reads headers the way webhook events carry them (Go-canonical names, lists of values)', () => {
    const f = compileFilter('header["X-Kind"][0] == "push"');
    expect(f.matches({ header: { 'X-Kind': ['push'] } })).toBe(true);
  });
  it('rejects a malformed expression with a clear error', () => {
    expect(() => compileFilter('body.a ==')).toThrow(FilterError);
  });
});
