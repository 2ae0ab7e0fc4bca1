// Which event id a request gets when its sender gives none, and what "the same request" means.
//
// A webhook answers 200 only once the bus confirmed the event. When it cannot confirm in time
// (503), or the client goes away, or a stop cuts it, the publish may still reach the bus later, so
// the sender's retry of the same request must reuse the id: JetStream then drops the repeat within
// its duplicates window instead of storing a second event. A sender that gives no Idempotency-Key
// gives nothing better than its request, so a request is recognised by its content key
// (`requestKey`: port, endpoint, method, content type, query, User-Agent and the body's bytes).
//
// Each key has at most one live entry:
// - `begin` before the first publish attempt: a request whose key has a live entry (an attempt
//   still in flight, or one answered ambiguously within the duplicates window) joins its id; so a
//   retry that overlaps the first attempt (a sender whose timeout is shorter than the publish
//   deadline) is the same event, and so are identical requests that arrive together.
// - `ambiguous` once the outcome is unknown (the publish was not confirmed within a moment, a
//   503, a client gone, a stop): the entry lives for the duplicates window and is shared with the
//   other replicas and the next process (shared-ids.ts).
// - `confirmed` when a 200 reached a live client: that sender is done, so the entry goes as soon
//   as no attempt of the key is in flight any more (a later identical request is a new event).
// Entries are bounded in number (the oldest go first).
//
// Sender-given keys: the same key with different content within the window is a conflict (the
// bus would silently keep the first event and drop the second): `claimKey` remembers a digest of
// every key's content for the window (bounded), so the webhook answers 422.
import { createHash, randomUUID } from 'node:crypto';

/** A request's content identity: sha256 over what a sender's retry repeats unchanged. */
export function requestKey(parts: {
  port: number;
  endpoint: string;
  method: string;
  contentType: string | undefined;
  userAgent?: string | undefined;
  query: string;
  raw: Buffer;
}): string {
  // One update for the text parts (the same bytes as one update per part and separator).
  const text = `${parts.port}\0${parts.endpoint}\0${parts.method}\0${parts.contentType ?? ''}\0${parts.userAgent ?? ''}\0${parts.query}\0`;
  const h = createHash('sha256').update(text);
  return h.update(parts.raw).digest('base64url');
}

export interface IdWatcher {
  remember?(entry: RememberedId): void;
  forget?(key: string): void;
}

export interface RememberedId {
  key: string;
  id: string;
  /** ms since the epoch */
  expiresAt: number;
}

interface Entry extends RememberedId {
  /** Attempts of this key being published in this process now. */
  inFlight: number;
  /** The outcome of some attempt is unknown: keep the id for the window. */
  ambiguous: boolean;
}

/** The request-id memory of one EventSource (shared by its ports). */
export class UnconfirmedIds {
  /** How long an ambiguous entry lives (ms): the stream's duplicates window. */
  ttlMs: number;
  private readonly max: number;
  /** Insertion order ≈ expiry order. */
  private readonly byKey = new Map<string, Entry>();
  /** Sender-given keys → digest of their content, with expiry. */
  private readonly claims = new Map<string, { digest: string; expiresAt: number }>();
  /** Told when an entry becomes ambiguous or an ambiguous one goes (shared-ids.ts, local-ids.ts). */
  private readonly watchers = new Set<IdWatcher>();

  /** `ttlMs`: the stream's duplicates window; `max`: entries kept at most (each map). */
  constructor(ttlMs: number, max = 50_000) {
    this.ttlMs = ttlMs;
    this.max = max;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Tells `w` about every entry that becomes ambiguous, or goes after being ambiguous. */
  watch(w: IdWatcher): () => void {
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }

  /** Test hooks: the single watcher, as callbacks (undefined to remove). */
  set onRemember(f: ((e: RememberedId) => void) | undefined) {
    this.hook(f ? { remember: f } : undefined, 'remember');
  }

  set onForget(f: ((key: string) => void) | undefined) {
    this.hook(f ? { forget: f } : undefined, 'forget');
  }

  private readonly hooks: Partial<Record<'remember' | 'forget', () => void>> = {};
  private hook(w: IdWatcher | undefined, kind: 'remember' | 'forget'): void {
    this.hooks[kind]?.();
    delete this.hooks[kind];
    if (w) this.hooks[kind] = this.watch(w);
  }

  /** The id a live entry of `key` holds (in flight or ambiguous), if any. */
  recall(key: string, now = Date.now()): string | undefined {
    const e = this.byKey.get(key);
    return e && this.live(e, now) ? e.id : undefined;
  }

  /** Starts an attempt of `key`: joins the live entry's id, or starts a new one. */
  begin(key: string, now = Date.now()): string {
    this.expire(now);
    let e = this.byKey.get(key);
    if (!e || !this.live(e, now)) {
      e = { key, id: randomUUID(), expiresAt: now + this.ttlMs, inFlight: 0, ambiguous: false };
      this.byKey.delete(key);
      this.byKey.set(key, e);
      this.bound();
    }
    e.inFlight++;
    return e.id;
  }

  /** The outcome of an attempt of `key` is unknown: keep (and share) its id for the window. */
  ambiguous(key: string, now = Date.now()): void {
    const e = this.byKey.get(key);
    if (!e) return;
    e.expiresAt = now + this.ttlMs;
    // Keep insertion order ≈ expiry order.
    this.byKey.delete(key);
    this.byKey.set(key, e);
    if (e.ambiguous) return;
    e.ambiguous = true;
    for (const w of this.watchers) w.remember?.({ key: e.key, id: e.id, expiresAt: e.expiresAt });
  }

  /**
   * An attempt of `key` ended: `confirmed` when a 200 reached its client (the entry goes once no
   * attempt is in flight), otherwise its outcome is ambiguous.
   */
  end(key: string, confirmed: boolean, now = Date.now()): void {
    const e = this.byKey.get(key);
    if (!e) return;
    e.inFlight = Math.max(0, e.inFlight - 1);
    if (!confirmed) {
      this.ambiguous(key, now);
      return;
    }
    if (e.inFlight > 0) return;
    this.byKey.delete(key);
    if (e.ambiguous) for (const w of this.watchers) w.forget?.(key);
  }

  /** Remembers `id` for `key` for the window, as ambiguous (tests, and ids from elsewhere). */
  remember(key: string, id: string, now = Date.now()): RememberedId {
    const e: Entry = { key, id, expiresAt: now + this.ttlMs, inFlight: 0, ambiguous: false };
    this.byKey.delete(key);
    this.byKey.set(key, e);
    this.bound();
    this.ambiguous(key, now);
    return { key, id, expiresAt: e.expiresAt };
  }

  /** Adds an entry remembered elsewhere (another replica, a previous process), keeping its expiry. */
  adopt(entry: RememberedId, now = Date.now()): void {
    if (entry.expiresAt <= now) return;
    const e = this.byKey.get(entry.key);
    if (e && this.live(e, now)) return;
    this.byKey.delete(entry.key);
    this.byKey.set(entry.key, { ...entry, inFlight: 0, ambiguous: true });
    this.bound();
  }

  /** Another process no longer needs `key` (its sender got a 200): drop it unless in flight here. */
  drop(key: string): void {
    const e = this.byKey.get(key);
    if (e && e.inFlight === 0) this.byKey.delete(key);
  }

  /** Ambiguous entries still valid, oldest first. */
  entries(now = Date.now()): RememberedId[] {
    this.expire(now);
    return [...this.byKey.values()]
      .filter((e) => e.ambiguous)
      .map(({ key, id, expiresAt }) => ({ key, id, expiresAt }));
  }

  /**
   * Records that sender-given key `key` (scoped by the caller, e.g. per event name) carries content
   * `digest`. False when the key was seen within the window with other content (a conflict).
   */
  claimKey(key: string, digest: string, now = Date.now()): boolean {
    const c = this.claims.get(key);
    if (c && c.expiresAt > now) return c.digest === digest;
    for (const [k, v] of this.claims) {
      if (v.expiresAt > now && this.claims.size < this.max) break;
      this.claims.delete(k);
    }
    this.claims.delete(key);
    this.claims.set(key, { digest, expiresAt: now + this.ttlMs });
    return true;
  }

  private live(e: Entry, now: number): boolean {
    return e.inFlight > 0 || (e.ambiguous && e.expiresAt > now);
  }

  private bound(): void {
    while (this.byKey.size > this.max) this.byKey.delete(this.byKey.keys().next().value!);
  }

  private expire(now: number): void {
    for (const [k, e] of this.byKey) {
      if (e.expiresAt > now) break;
      if (e.inFlight === 0) this.byKey.delete(k);
    }
  }
}

/**
 * A short digest of a sender-given key's content (for `claimKey`): the first 128 bits of its
 * sha256, base64url (22 characters, a string of its own: kept for the window, it must not hold
 * on to the whole digest's text).
 */
export function contentDigest(raw: Buffer, method: string, query: string): string {
  return createHash('sha256')
    .update(`${method}\0${query}\0`)
    .update(raw)
    .digest()
    .toString('base64url', 0, 16);
}
