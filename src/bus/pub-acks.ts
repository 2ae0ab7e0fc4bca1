// JetStream publishes whose PubAcks come back on one reply subscription per connection user,
// instead of one nats.js request each. A request builds an Error (for its stack), a promise hop
// and a mux entry per message; here a publish is one `nc.publish` with a reply subject
// `<inbox>.<n>`, one timer and one map entry, and the answer is matched by its token. Publishes
// made in the same turn leave in one socket write, as requests do. Used where every event pays
// for a publish: the EventSource's events (publisher.ts) and the Sensor's done marks (kv-group.ts).
//
// Answers, as the nats.js client gives them: a PubAck ({stream, seq, duplicate?}) resolves; a
// JetStream error answer rejects with PublishRefused (its codes readable with errors.ts
// serverCode and isOutage); a 503 status with no body (no stream listens on the subject) rejects
// with NoRespondersError; a subject the connection may not publish to rejects with the server's
// PermissionViolationError as soon as it reports it (as a request would); no answer within the
// timeout rejects with TimeoutError (the message may still be stored: publish it again with the
// same Nats-Msg-Id to learn).
import {
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  NoRespondersError,
  PermissionViolationError,
  type Subscription,
  TimeoutError,
} from '@nats-io/nats-core';

/** A stored message: its stream and sequence, and whether the server had it already (Nats-Msg-Id). */
export interface Stored {
  stream: string;
  seq: number;
  duplicate: boolean;
}

/**
 * A JetStream error answer to a publish: `status` is the HTTP-like code (503 while a stream has
 * no leader), `errCode` the JetStream error code (e.g. 10071 wrong last sequence); the message
 * is the server's description, as in the nats.js client's JetStreamApiError.
 */
export class PublishRefused extends Error {
  readonly status: number;
  readonly errCode: number;
  constructor(status: number, errCode: number, description: string) {
    super(description);
    this.name = 'PublishRefused';
    this.status = status;
    this.errCode = errCode;
  }

  apiError(): { code: number; err_code: number; description: string } {
    return { code: this.status, err_code: this.errCode, description: this.message };
  }
}

interface Waiting {
  subject: string;
  resolve(s: Stored): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

/** The one inbox of each connection (see PubAckInbox.of). */
const inboxes = new WeakMap<NatsConnection, PubAckInbox>();

/**
 * Publishes to JetStream on `nc`, each PubAck awaited on one shared reply subscription. Get it
 * with `PubAckInbox.of(nc)`: one per connection, shared by every publisher on it, so publishers
 * made again and again on a long-lived connection (`sluice dev` restarts an EventSource or a
 * Sensor on each change) do not each leave a subscription and a status watcher behind.
 */
export class PubAckInbox {
  /** The inbox of connection `nc`, made on first use. */
  static of(nc: NatsConnection): PubAckInbox {
    let inbox = inboxes.get(nc);
    if (!inbox) {
      inbox = new PubAckInbox(nc);
      inboxes.set(nc, inbox);
    }
    return inbox;
  }

  private readonly nc: NatsConnection;
  private readonly waiting = new Map<string, Waiting>();
  private replies: { prefix: string; sub: Subscription } | undefined;
  private next = 0;
  /** The status watcher runs (one per inbox, however often the subscription is made again). */
  private watching = false;

  constructor(nc: NatsConnection) {
    this.nc = nc;
  }

  /** Publishes `data` to `subject`; resolves once stored (see the header for the rejections). */
  publish(
    subject: string,
    data: Uint8Array | string,
    o: { headers?: MsgHdrs; timeoutMs: number },
  ): Promise<Stored> {
    return new Promise<Stored>((resolve, reject) => {
      const prefix = this.inbox(); // throws (rejecting) when the connection is closed
      const token = String(this.next++);
      this.nc.publish(subject, data, {
        reply: `${prefix}.${token}`,
        ...(o.headers ? { headers: o.headers } : {}),
      });
      const timer = setTimeout(() => {
        if (this.waiting.delete(token)) reject(new TimeoutError());
      }, o.timeoutMs);
      this.waiting.set(token, { subject, resolve, reject, timer });
    });
  }

  /** Publishes awaiting their answer. */
  get pending(): number {
    return this.waiting.size;
  }

  /**
   * The reply prefix, subscribing first when there is no live reply subscription. The server can
   * end one (a permission reload that no longer allows it, reported as a subscription permission
   * violation; a drain): it is then forgotten, and the next publish makes a new one, as nats.js
   * re-makes its request inbox. Publishes waiting on the old one end with their timeout (each may
   * have been stored). Throws when the connection is closed.
   */
  private inbox(): string {
    if (!this.replies) {
      const prefix = createInbox((this.nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix);
      const replies = { prefix, sub: undefined as unknown as Subscription };
      const gone = () => {
        if (this.replies === replies) this.replies = undefined;
      };
      replies.sub = this.nc.subscribe(`${prefix}.*`, {
        // An error ends the subscription and comes with no message: never read it.
        callback: (err, m) => (err ? gone() : this.answered(prefix, m)),
      });
      void replies.sub.closed.then(gone, gone);
      this.replies = replies;
      if (!this.watching) {
        this.watching = true;
        void this.watchRefusals();
      }
    }
    return this.replies.prefix;
  }

  /** The server refuses a publish to a subject outside the credential's permissions: fail those. */
  private async watchRefusals(): Promise<void> {
    for await (const s of this.nc.status()) {
      const err = s.type === 'error' ? s.error : undefined;
      if (!(err instanceof PermissionViolationError) || err.operation !== 'publish') continue;
      for (const [token, w] of this.waiting) {
        if (w.subject !== err.subject) continue;
        this.waiting.delete(token);
        clearTimeout(w.timer);
        w.reject(err);
      }
    }
  }

  private answered(prefix: string, m: Msg): void {
    const token = m.subject.slice(prefix.length + 1);
    const w = this.waiting.get(token);
    if (!w) return; // timed out already
    this.waiting.delete(token);
    clearTimeout(w.timer);
    const answer = storedOf(m);
    if (answer instanceof Error) w.reject(answer);
    else w.resolve(answer);
  }
}

/** One answer to a publish: what was stored, or why not. */
function storedOf(m: Msg): Stored | Error {
  if (m.data.length === 0 && m.headers?.code === 503) return new NoRespondersError(m.subject);
  let a: {
    stream?: string;
    seq?: number;
    duplicate?: boolean;
    error?: { code?: number; err_code?: number; description?: string };
  };
  try {
    a = m.json();
  } catch (err) {
    return err as Error;
  }
  if (a.error || typeof a.seq !== 'number' || !a.stream)
    return new PublishRefused(
      a.error?.code ?? 500,
      a.error?.err_code ?? 0,
      a.error?.description ?? 'invalid ack response',
    );
  return { stream: a.stream, seq: a.seq, duplicate: a.duplicate === true };
}
