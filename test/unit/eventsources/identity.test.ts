// Ids of requests answered without a confirmed store (src/eventsources/webhook/identity.ts): kept
// for the duplicates window, bounded in number, keyed by what a sender's retry repeats.
import { describe, expect, it } from 'vitest';
import { requestKey, UnconfirmedIds } from '../../../src/eventsources/webhook/identity.ts';

const req = (body: string, contentType = 'application/json') => ({
  port: 12000,
  endpoint: '/orders',
  method: 'POST',
  contentType,
  query: '',
  raw: Buffer.from(body),
});

describe('unconfirmed request ids', () => {
  it('recognise a retry by route, method, content type, query and body', () => {
    expect(requestKey(req('{"a":1}'))).toBe(requestKey(req('{"a":1}')));
    expect(requestKey(req('{"a":1}'))).not.toBe(requestKey(req('{"a":2}')));
    expect(requestKey(req('{"a":1}'))).not.toBe(requestKey(req('{"a":1}', 'text/plain')));
    expect(requestKey({ ...req('x'), endpoint: '/a' })).not.toBe(requestKey({ ...req('x'), endpoint: '/b' }));
  });

  it('are recalled within the duplicates window only', () => {
    const ids = new UnconfirmedIds(1_000);
    const seen: string[] = [];
    ids.onRemember = (e) => seen.push(e.id);
    ids.remember('k', 'id-1', 0);
    expect(ids.recall('k', 999)).toBe('id-1');
    expect(ids.recall('k', 1_000)).toBeUndefined();
    expect(seen).toEqual(['id-1']);
  });

  it('keep at most `max` entries, oldest dropped first; adopted entries keep their expiry', () => {
    const ids = new UnconfirmedIds(10_000, 2);
    ids.remember('a', '1', 0);
    ids.remember('b', '2', 0);
    ids.remember('c', '3', 0);
    expect(ids.recall('a', 1)).toBeUndefined();
    expect(ids.recall('c', 1)).toBe('3');
    ids.adopt({ key: 'd', id: '4', expiresAt: 50 }, 1);
    expect(ids.recall('d', 49)).toBe('4');
    expect(ids.recall('d', 50)).toBeUndefined();
    ids.adopt({ key: 'e', id: '5', expiresAt: 10 }, 20);
    expect(ids.recall('e', 20)).toBeUndefined();
  });
});
