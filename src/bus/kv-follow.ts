// Follows the keys written to a KV bucket, oldest first then live, with one ordered, headers-only
// pull consumer over the bucket's stream (`$KV.<bucket>.>`): the server streams the subjects of
// every stored write (puts, deletes and purges alike) without their values, so reading a bucket of
// a million keys takes one consumer and a few seconds, not a request per key as followKv (kv.ts).
// On a secured bus the Sensor may create such a consumer on its own processed bucket only
// (permissions.ts).
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

export interface KeyFollower {
  /** Resolves once every write stored when the follower started has been seen. */
  caughtUp: Promise<{ keys: number; ms: number }>;
  stop(): void;
}

/**
 * Calls `onKey` with the (KV-encoded) key of every write in `bucket`, from its first stored
 * message on, then of each new one. `caughtUp` resolves when the follower has reached the
 * stream's last sequence as it was at the start (at once for an empty bucket), and rejects when
 * the consumer cannot be made (e.g. no permission); the follower then stops. `onEnd` is called
 * if the follower stops by itself after that (the stream is gone, the connection closed): from
 * then on it misses writes.
 */
export function followKvKeys(
  nc: NatsConnection,
  bucket: string,
  onKey: (key: string) => void,
  onEnd?: (err?: unknown) => void,
): KeyFollower {
  const stream = `KV_${bucket}`;
  const prefix = `$KV.${bucket}.`;
  const started = performance.now();
  let stopped = false;
  let stopMessages: (() => void) | undefined;
  let keys = 0;
  let done: ((v: { keys: number; ms: number }) => void) | undefined;
  const caughtUp = new Promise<{ keys: number; ms: number }>((resolve, reject) => {
    done = resolve;
    const run = async () => {
      const jsm = await jetstreamManager(nc, { checkAPI: false });
      const target = (await jsm.streams.info(stream)).state.last_seq;
      const reached = () => {
        const d = done;
        done = undefined;
        d?.({ keys, ms: Math.round(performance.now() - started) });
      };
      if (target === 0) reached();
      const consumer = await jetstream(nc, { checkAPI: false }).consumers.get(stream, {
        filter_subjects: `${prefix}>`,
        headers_only: true,
        deliver_policy: DeliverPolicy.All,
      });
      // A stopped follower deletes its consumer (the ordered consumer's own inactive threshold
      // would keep it 5 minutes): the bucket's stream caps its consumers (PROCESSED_MAX_CONSUMERS).
      const release = () => {
        try {
          consumer.delete().catch(() => {});
        } catch {
          // not made yet (an ordered consumer is made by consume())
        }
      };
      if (stopped) {
        release();
        return reached();
      }
      const messages = await consumer.consume({ max_messages: 1024 });
      stopMessages = () => {
        messages.stop();
        release();
      };
      if (stopped) stopMessages();
      for await (const m of messages) {
        keys++;
        onKey(m.subject.slice(prefix.length));
        // Pending 0: nothing older is left (writes expired or deleted since the start count too).
        if (done && (m.seq >= target || m.info.pending === 0)) reached();
      }
    };
    run().then(
      () => {
        if (!stopped) onEnd?.();
        stopped = true;
      },
      (err: unknown) => {
        if (!stopped && !done) onEnd?.(err);
        stopped = true;
        reject(err);
      },
    );
  });
  // Not awaited by everyone: a refusal is reported through `caughtUp` to whoever awaits it.
  caughtUp.catch(() => {});
  return {
    caughtUp,
    stop() {
      stopped = true;
      stopMessages?.();
    },
  };
}
