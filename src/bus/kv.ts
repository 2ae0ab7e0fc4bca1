// Key-value state on the bus (JetStream KV): trigger state (partial condition matches) and the
// processed-set that keeps a redelivered or replayed event from firing a trigger twice.
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

export async function openKv(
  nc: NatsConnection,
  bucket: string,
  opts: { ttlMs?: number; history?: number; replicas?: number } = {},
): Promise<KV> {
  return new Kvm(nc).create(bucket, {
    ...(opts.ttlMs ? { ttl: opts.ttlMs } : {}),
    history: opts.history ?? 1,
    replicas: opts.replicas ?? 1,
  });
}

/** KV keys allow [-/_=.a-zA-Z0-9]; anything else is hex-escaped with "=". */
export function kvKey(s: string): string {
  return s.replace(/[^-/_.a-zA-Z0-9]/g, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `=${b.toString(16).padStart(2, '0')}`).join(''),
  );
}

/** Idempotency keys already acted on. Entries expire with the bucket TTL. */
export class ProcessedSet {
  private readonly kv: KV;

  constructor(kv: KV) {
    this.kv = kv;
  }

  static async open(nc: NatsConnection, bucket: string, ttlMs: number): Promise<ProcessedSet> {
    return new ProcessedSet(await openKv(nc, bucket, { ttlMs }));
  }

  async has(key: string): Promise<boolean> {
    const e = await this.kv.get(kvKey(key));
    return !!e && e.operation === 'PUT';
  }

  /** Records `key`; false when it was already there (atomic: exactly one caller gets true). */
  async markIfAbsent(key: string, value = ''): Promise<boolean> {
    try {
      await this.kv.create(kvKey(key), value);
      return true;
    } catch (err) {
      if (/wrong last sequence|key exists/i.test((err as Error).message)) return false;
      throw err;
    }
  }

  async forget(key: string): Promise<void> {
    await this.kv.delete(kvKey(key));
  }
}
