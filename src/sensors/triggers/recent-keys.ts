// A bounded memory of idempotency keys whose effect already happened in this process, for trigger
// targets that cannot deduplicate on their own (Slack, SMTP, core NATS subscribers). It covers the
// repeat the runtime can cause by itself (a success whose ack or processed-set write then failed,
// a replay within the same process); the runtime's processed-set in KV covers restarts.
export class RecentKeys<V = true> {
  private readonly entries = new Map<string, { value: V; at: number }>();
  private readonly max: number;
  private readonly ttlMs: number;

  constructor(max = 10_000, ttlMs = 24 * 3600_000) {
    this.max = max;
    this.ttlMs = ttlMs;
  }

  get(key: string, now = Date.now()): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (now - e.at > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  set(key: string, value: V, now = Date.now()): void {
    this.entries.delete(key);
    this.entries.set(key, { value, at: now });
    // Map keeps insertion order: the first entries are the oldest.
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
