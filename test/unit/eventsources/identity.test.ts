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
    // Two senders (different software) posting the same bytes are two requests.
    expect(requestKey({ ...req('x'), userAgent: 'monitor-A' })).not.toBe(
      requestKey({ ...req('x'), userAgent: 'monitor-B' }),
    );
  });

  it('an attempt that overlaps an earlier one of the same request joins its id, before any outcome', () => {
    const ids = new UnconfirmedIds(10_000);
    const first = ids.begin('k', 0);
    expect(ids.begin('k', 1)).toBe(first); // a retry while the first is still publishing
    ids.end('k', true, 2); // the retry got its 200; the first is still in flight
    expect(ids.recall('k', 3)).toBe(first);
    ids.end('k', true, 4); // both done, both answered 200: a later identical request is new
    expect(ids.recall('k', 5)).toBeUndefined();
    expect(ids.begin('k', 6)).not.toBe(first);
  });

  it('an ambiguous outcome keeps and shares the id for the window; a later 200 forgets it everywhere', () => {
    const ids = new UnconfirmedIds(1_000);
    const shared: string[] = [];
    const forgotten: string[] = [];
    ids.onRemember = (e) => shared.push(e.id);
    ids.onForget = (k) => forgotten.push(k);
    const id = ids.begin('k', 0);
    ids.end('k', false, 10); // 503: unknown outcome
    expect(shared).toEqual([id]);
    expect(ids.begin('k', 20)).toBe(id); // the sender's retry
    ids.end('k', true, 30); // ... answered 200
    expect(forgotten).toEqual(['k']);
    expect(ids.recall('k', 31)).toBeUndefined();
    // Another replica forgetting a key drops it here too, unless an attempt is in flight here.
    ids.adopt({ key: 'r', id: 'x', expiresAt: 500 }, 40);
    ids.drop('r');
    expect(ids.recall('r', 41)).toBeUndefined();
  });

  it('a sender-given key with other content within the window is a conflict', () => {
    const ids = new UnconfirmedIds(1_000);
    expect(ids.claimKey('key-1', 'digest-a', 0)).toBe(true);
    expect(ids.claimKey('key-1', 'digest-a', 10)).toBe(true);
    expect(ids.claimKey('key-1', 'digest-b', 20)).toBe(false);
    expect(ids.claimKey('key-1', 'digest-b', 1_000)).toBe(true); // the window passed
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
