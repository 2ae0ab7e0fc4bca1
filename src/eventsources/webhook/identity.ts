// Which event id a request used when its answer did not confirm the event was stored (503 after
// the publish deadline, the client gone, or a stop cutting it). The publish may still have reached
// the bus, so the sender's retry of the same request must reuse that id: JetStream then drops the
// repeat within its duplicates window instead of storing a second event. A request is recognised by
// its content (route, method, content type, body), since a sender that gives no Idempotency-Key
// gives nothing better. Entries live as long as the stream's duplicates window (past it the bus
// would no longer drop the repeat anyway) and their number is bounded (oldest dropped first).
import { createHash } from 'node:crypto';

/** A request's content identity: sha256 over what a sender's retry repeats unchanged. */
export function requestKey(parts: {
  port: number;
  endpoint: string;
  method: string;
  contentType: string | undefined;
  query: string;
  raw: Buffer;
}): string {
  const h = createHash('sha256');
  for (const p of [String(parts.port), parts.endpoint, parts.method, parts.contentType ?? '', parts.query]) {
    h.update(p).update('\0');
  }
  return h.update(parts.raw).digest('base64url');
}

export interface RememberedId {
  key: string;
  id: string;
  /** ms since the epoch */
  expiresAt: number;
}

export class UnconfirmedIds {
  /** How long an entry lives (ms): the stream's duplicates window. */
  ttlMs: number;
  private readonly max: number;
  /** Insertion order = expiry order (every entry gets the same TTL). */
  private readonly byKey = new Map<string, RememberedId>();
  /** Called with each entry `remember` adds (to share it, see shared-ids.ts). */
  onRemember: ((entry: RememberedId) => void) | undefined;

  /** `ttlMs`: the stream's duplicates window; `max`: entries kept at most. */
  constructor(ttlMs: number, max = 100_000) {
    this.ttlMs = ttlMs;
    this.max = max;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** The id an earlier unconfirmed attempt of this request used, while the bus still dedupes it. */
  recall(key: string, now = Date.now()): string | undefined {
    this.expire(now);
    const e = this.byKey.get(key);
    return e && e.expiresAt > now ? e.id : undefined;
  }

  /** Remembers `id` for `key` for the duplicates window (from now). */
  remember(key: string, id: string, now = Date.now()): RememberedId {
    const entry = { key, id, expiresAt: now + this.ttlMs };
    this.byKey.delete(key);
    this.byKey.set(key, entry);
    while (this.byKey.size > this.max) this.byKey.delete(this.byKey.keys().next().value!);
    this.onRemember?.(entry);
    return entry;
  }

  /** Adds entries remembered elsewhere (another replica, a previous process), keeping their expiry. */
  adopt(entry: RememberedId, now = Date.now()): void {
    if (entry.expiresAt <= now || this.byKey.has(entry.key)) return;
    this.byKey.set(entry.key, entry);
    while (this.byKey.size > this.max) this.byKey.delete(this.byKey.keys().next().value!);
  }

  /** Entries still valid, oldest first. */
  entries(now = Date.now()): RememberedId[] {
    this.expire(now);
    return [...this.byKey.values()];
  }

  private expire(now: number): void {
    for (const [k, e] of this.byKey) {
      if (e.expiresAt > now) break;
      this.byKey.delete(k);
    }
  }
}
