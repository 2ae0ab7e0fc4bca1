// Publishing until the answer is definite. A PubAck that does not come in time (NATS paused,
// a slow server, a connection being re-established) leaves the outcome unknown: the message may
// sit in a buffer and be stored later. Re-publishing the same Nats-Msg-Id is safe (JetStream keeps
// one copy within its duplicates window) and is how we learn the outcome: the first PubAck,
// original or duplicate, means stored. A full backlog (StreamFull: nothing stored) is retried for
// a short while (FULL_WAIT_MS), because a consuming Sensor frees room within milliseconds and a
// sender should not see a 503 for a backlog that is only momentarily at its limit; a backlog
// still full after that is refused. Other definite refusals (message too large, invalid) end the
// loop at once; the deadline ends it with the last error (the caller answers 503 and remembers
// the id, see webhook/identity.ts).
import type { PubAck } from '@nats-io/jetstream';
import { BusError, toBusError } from '../bus/errors.ts';
import type { Publisher, PublishOptions } from '../bus/publisher.ts';

export interface ConfirmOptions {
  /** Give up after this long (ms) from the first attempt. */
  deadlineMs: number;
  /** True once the connection is closed for good (no attempt can succeed any more). */
  closed?: () => boolean;
  /** How long (ms) a full backlog is waited on before StreamFull is the answer (default FULL_WAIT_MS). */
  fullWaitMs?: number;
}

/** Default wait for room in a full backlog (ms); retries every FULL_PAUSE_MS. */
export const FULL_WAIT_MS = 1_500;
const FULL_PAUSE_MS = 50;

/** Longest wait for one PubAck before the same message is sent again (ms). */
const MAX_ATTEMPT_MS = 5_000;
/** Pause after an attempt that failed at once (not connected), doubling up to 1 s. */
const FIRST_PAUSE_MS = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Re-tryable and not a definite refusal: the message may or may not be stored. */
export function isUnconfirmed(err: BusError): boolean {
  return err.code === 'Timeout' || err.code === 'BusUnavailable';
}

/**
 * Publishes `data` with `opts.msgId`, again and again with the same id while the outcome is
 * unknown, until a PubAck, a definite refusal, or the deadline. Rejects with the last BusError.
 */
export async function publishConfirmed(
  publisher: Publisher,
  subject: string,
  data: Uint8Array,
  opts: PublishOptions,
  c: ConfirmOptions,
): Promise<PubAck> {
  const end = Date.now() + c.deadlineMs;
  // Two or more attempts fit in the deadline, so one is still waiting when the bus comes back.
  const attemptMs = Math.min(MAX_ATTEMPT_MS, Math.max(500, Math.ceil(c.deadlineMs / 2)));
  const fullEnd = Math.min(end, Date.now() + (c.fullWaitMs ?? FULL_WAIT_MS));
  let pause = FIRST_PAUSE_MS;
  for (;;) {
    const started = Date.now();
    const remaining = end - started;
    try {
      return await publisher.publish(subject, data, {
        ...opts,
        timeoutMs: Math.max(100, Math.min(attemptMs, remaining)),
      });
    } catch (err) {
      const e = err instanceof BusError ? err : toBusError(err, subject);
      if (e.code === 'StreamFull' && !c.closed?.() && Date.now() + FULL_PAUSE_MS < fullEnd) {
        await sleep(FULL_PAUSE_MS);
        continue;
      }
      if (!isUnconfirmed(e) || c.closed?.() || Date.now() >= end - 50) throw e;
      if (Date.now() - started < 100) {
        await sleep(Math.min(pause, Math.max(0, end - Date.now())));
        pause = Math.min(1000, pause * 2);
      }
    }
  }
}
