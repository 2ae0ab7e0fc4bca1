// Claims on idempotency keys in the processed-set, with an owner and a lease. Before an effect a
// caller claims its key: "new" (created), "mine" (a claim whose lease ran out: the process that
// held it died), "busy" (someone else holds a live claim: wait, do not proceed) or "done" (the
// effect happened). Each claim has its own owner (process + call number), so two calls in one
// process exclude each other too. The holder renews the lease while the effect runs. So a Sensor and
// `sluice dlq replay`, or two replays, never run the same effect at the same time.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isWrongLastSequence } from '../bus/errors.ts';
import { kvKey, type ProcessedSet } from '../bus/kv.ts';

/** How long a claim holds without renewal (ms). */
export const CLAIM_LEASE_MS = 30_000;

export type ClaimState =
  | { state: 'new' | 'mine'; revision: number; owner: string }
  | { state: 'busy'; retryInMs: number; owner: string }
  | { state: 'done'; detail: string };

interface Pending {
  owner: string;
  until: number;
}

const PREFIX = 'pending:';

/** A pending claim's owner and lease end; legacy "pending" has neither (treated as expired). */
export function parsePending(v: string): Pending | undefined {
  if (v === 'pending') return { owner: '', until: 0 };
  if (!v.startsWith(PREFIX)) return undefined;
  const rest = v.slice(PREFIX.length);
  const at = rest.lastIndexOf(':');
  const until = Number(rest.slice(at + 1));
  return { owner: rest.slice(0, at), until: Number.isFinite(until) ? until : 0 };
}

/** A process-unique claim owner: host, pid and a random suffix. */
export const newOwner = (): string => `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;

export class Claims {
  readonly processed: ProcessedSet;
  readonly owner: string;
  readonly leaseMs: number;

  constructor(processed: ProcessedSet, owner = newOwner(), leaseMs = CLAIM_LEASE_MS) {
    this.processed = processed;
    this.owner = owner;
    this.leaseMs = leaseMs;
  }

  private calls = 0;

  private value(owner: string): string {
    return `${PREFIX}${owner}:${Date.now() + this.leaseMs}`;
  }

  /** Claims `key` (see the file comment). One round trip when the key is new. */
  async claim(key: string): Promise<ClaimState> {
    const k = kvKey(key);
    const kv = this.processed.kv;
    const owner = `${this.owner}#${++this.calls}`;
    for (let first = true; ; first = false) {
      try {
        // The first try may be grouped with other claims (one batch per turn); a retry is not.
        const revision = first
          ? await this.processed.create(k, this.value(owner))
          : await kv.create(k, this.value(owner));
        return { state: 'new', revision, owner };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
      }
      const e = await kv.get(k);
      if (e?.operation !== 'PUT') continue; // deleted meanwhile: create again
      const text = e.string();
      const p = parsePending(text);
      if (!p) return { state: 'done', detail: text };
      const now = Date.now();
      if (p.until > now) return { state: 'busy', retryInMs: Math.min(p.until - now, 1000), owner: p.owner };
      try {
        return { state: 'mine', revision: await kv.update(k, this.value(owner), e.revision), owner };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
      }
    }
  }

  /** Claims being renewed: key → its owner and the revision last written. */
  private readonly held = new Map<string, { owner: string; revision: number }>();
  private renewer: NodeJS.Timeout | undefined;

  /**
   * Renews the lease of a claim (one shared timer for all held claims, every third of the lease)
   * until stop() or release(); a renewal that finds the key changed (done, forgotten or taken)
   * drops the claim quietly.
   */
  keepAlive(
    key: string,
    claim: { revision: number; owner: string },
  ): { stop(): void; release(): Promise<void> } {
    const entry = { owner: claim.owner, revision: claim.revision };
    this.held.set(key, entry);
    this.renewer ??= this.startRenewer();
    const stop = () => {
      if (this.held.get(key) === entry) this.held.delete(key);
    };
    return {
      stop,
      /** Ends the lease now (the effect did not run: e.g. an open breaker), if still held. */
      release: async () => {
        stop();
        await this.processed.kv
          .update(kvKey(key), `${PREFIX}${entry.owner}:0`, entry.revision)
          .catch(() => {});
      },
    };
  }

  private startRenewer(): NodeJS.Timeout {
    const t = setInterval(
      () => {
        for (const [key, entry] of this.held) {
          this.processed.kv.update(kvKey(key), this.value(entry.owner), entry.revision).then(
            (r) => {
              entry.revision = r;
            },
            () => {
              if (this.held.get(key) === entry) this.held.delete(key);
            },
          );
        }
      },
      Math.max(50, Math.floor(this.leaseMs / 3)),
    );
    t.unref();
    return t;
  }
}
