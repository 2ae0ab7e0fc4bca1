// When a trigger call may skip the processed-set claim (issue 16, item 1). The claim exists to stop
// a second run of the same effect: a redelivery after a crash, a redelivery to another process
// while the first still runs, the same event published again, a `sluice dlq replay` of the same
// key, or an ack the server lost. A first delivery to the one process consuming, of a message past
// where the consumer stood when this process bound to it, whose key the done-key index says was
// never written, can be none of those, except within the windows the README's crash table lists
// (the index's lag behind another writer). Everything else takes the claim path, unchanged.
//
// A skipped claim is written late when the call is still running at the message's first
// heartbeat (a third of ack_wait), so a redelivery after ack_wait finds it, as before.
import type { JsMsg } from '@nats-io/jetstream';
import { kvKey } from '../bus/kv.ts';

/** The part of the done-key index (done-index.ts) the fast path uses. */
export interface KeyIndex {
  readonly ready: boolean;
  /** KV-encoded key `k` may have been written (always true while not ready). */
  mightHave(k: string): boolean;
  add(k: string): void;
}

/** What settle needs to know about the message a call comes from. */
export interface Delivery {
  /** First delivery, to the sole consumer, past the consumer's position at bind. */
  fresh: boolean;
  /** Runs `f` at the message's next in-progress heartbeat. */
  onBeat(f: () => void): void;
}

/** The fast-path decisions of one Sensor process. */
export class FastPath {
  /**
   * Keys whose call runs in this process without a claim (a second call of one waits), each with
   * what writes its claim late (set by onLeadLost).
   */
  private readonly running = new Map<string, (() => void) | undefined>();

  /**
   * @param index the done-key index (not ready: every call claims)
   * @param sole whether this process is the only one consuming now (replicas 1, or the Lease holder)
   */
  readonly index: KeyIndex;
  private readonly sole: () => boolean;

  constructor(index: KeyIndex, sole: () => boolean) {
    this.index = index;
    this.sole = sole;
  }

  /**
   * Whether `msg` (of a consumer that stood at stream sequence `boundAt` when bound) is a first
   * delivery to the sole consumer of a message no earlier process could have seen.
   */
  fresh(msg: JsMsg, boundAt: number): boolean {
    return msg.info.deliveryCount === 1 && msg.seq > boundAt && this.index.ready && this.sole();
  }

  /** True while `key` runs here without a claim. */
  busy(key: string): boolean {
    return this.running.size > 0 && this.running.has(key);
  }

  /**
   * Takes the fast path for `key` when the index says it was never written: the key is recorded
   * in the index and as running (so a duplicate of it waits or claims) before anything else runs.
   */
  take(key: string): boolean {
    if (!this.index.ready) return false;
    const k = kvKey(key);
    if (this.index.mightHave(k) || this.running.has(key)) return false;
    this.index.add(k);
    this.running.set(key, undefined);
    return true;
  }

  /** `claimLate` writes the claim of `key`'s running call; leadLost() runs it. */
  onLeadLost(key: string, claimLate: () => void): void {
    if (this.running.has(key)) this.running.set(key, claimLate);
  }

  /**
   * This process is no longer the sole consumer (its Lease was lost or handed over): every call
   * still running without a claim writes it now, so the next leader, if the same event reaches it
   * (published again), finds the key taken instead of calling as well.
   */
  leadLost(): void {
    for (const claimLate of this.running.values()) claimLate?.();
  }

  /** The call of `key` taken by take() is over (its done mark stored, or it failed). */
  finish(key: string): void {
    this.running.delete(key);
  }
}
