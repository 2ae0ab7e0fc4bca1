// Publishing events. `Nats-Msg-Id` is derived from the event id, so the server stores a repeat
// inside the duplicates window once. JetStream deduplicates per stream, not per publisher: a
// predictable id (a calendar's fire time, a webhook's delivery id) published first by another
// EventSource would make the real event a "duplicate" that is never stored. So on a connection
// opened with a credential the id sent is HMAC-SHA256(key of that credential, event id): the same
// source re-sending the same event id still gets the same message id (a retry after an ambiguous
// failure is stored once), while no other credential can compute it. On an open bus without
// credentials the event id is sent as it is. Many publishes are in flight at once (each caller awaits only its own
// PubAck), bounded by a semaphore so a burst cannot queue unbounded memory in the client; a
// caller beyond the bound waits for a slot. Failures come back as BusError with a stable code.
//
// A publish that fails with Timeout or BusUnavailable may still have been stored (the request can
// reach the server after the client gave up): retry with the same msgId inside the duplicates
// window and the server keeps one copy.

import { createHmac } from 'node:crypto';
import type { PubAck } from '@nats-io/jetstream';
import { type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { BusConnection, msgIdKeyOf } from './connection.ts';
import { BusError, toBusError } from './errors.ts';
import { PubAckInbox } from './pub-acks.ts';

export interface PublishOptions {
  /** Event id: becomes Nats-Msg-Id (keyed by the connection's credential, see the header). */
  msgId: string;
  headers?: Record<string, string>;
  /** Wait for the PubAck at most this long (default: the publisher's timeoutMs). */
  timeoutMs?: number;
}

export interface PublisherOptions {
  /** Most publishes awaiting their PubAck at once; more wait for a slot (default 1024). */
  maxInFlight?: number;
  /** Default PubAck wait (default 5 s). */
  timeoutMs?: number;
}

/** Longest Nats-Msg-Id and header value accepted (characters); longer is a definite refusal. */
export const MAX_HEADER_VALUE = 1024;
/** True when `v` has a C0 control (CR/LF among them) or DEL: it cannot travel in a NATS header line. */
function hasControl(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** Why `opts` can never be published (a definite, non-retryable refusal), or undefined. */
export function unpublishable(opts: PublishOptions): string | undefined {
  const check = (what: string, v: string): string | undefined => {
    if (v.length > MAX_HEADER_VALUE) return `${what} is longer than ${MAX_HEADER_VALUE} characters`;
    if (hasControl(v)) return `${what} contains a control character (CR, LF, ...)`;
    return undefined;
  };
  if (!opts.msgId) return 'the event id is empty';
  let bad = check('the event id', opts.msgId);
  for (const k in opts.headers) bad ??= check(`header ${k}`, opts.headers[k]!);
  return bad;
}

interface Waiter {
  resolve(): void;
  timer: NodeJS.Timeout | undefined;
  /** Gave up waiting (timed out): skipped when a slot frees. */
  gone: boolean;
}

export class Publisher {
  private readonly acks: PubAckInbox;
  private readonly nc: NatsConnection;
  private readonly conn: BusConnection | undefined;
  private readonly max: number;
  private readonly timeoutMs: number;
  private readonly idKey: Buffer | undefined;
  private inFlight = 0;
  /** FIFO of callers waiting for a slot; `head` indexes the next one (shift() is O(n)). */
  private waiting: Array<Waiter | undefined> = [];
  private head = 0;
  private waitingCount = 0;
  /** When a publish last settled (or the first one started after an idle time), ms. */
  private progressAt = Date.now();
  private longestTimeoutMs: number;
  private idleWaiters: Array<() => void> = [];

  /** Largest message the server takes, headers included (its max_payload; 1 MiB before it said). */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  /** Pass the BusConnection when there is one: failures while it is down then read BusUnavailable. */
  constructor(connection: BusConnection | NatsConnection, opts: PublisherOptions = {}) {
    this.conn = connection instanceof BusConnection ? connection : undefined;
    this.nc = connection instanceof BusConnection ? connection.nc : connection;
    this.acks = PubAckInbox.of(this.nc);
    this.idKey = msgIdKeyOf(this.nc);
    this.max = opts.maxInFlight ?? 1024;
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.longestTimeoutMs = this.timeoutMs;
  }

  /** Publishes awaiting their PubAck. */
  get pending(): number {
    return this.inFlight;
  }

  /** Callers waiting for a free slot. */
  get queued(): number {
    return this.waitingCount;
  }

  /**
   * How long (ms) publishes have been in flight with none settling: 0 when idle or progressing.
   * Every publish settles within its timeout, so a value well past the longest timeout means
   * slots are held by publishes that will never settle (the process cannot publish any more).
   */
  stalledMs(now = Date.now()): number {
    return this.inFlight > 0 ? Math.max(0, now - this.progressAt) : 0;
  }

  /** Why this publisher cannot publish any more (for a liveness probe), or undefined. */
  wedged(now = Date.now()): string | undefined {
    const stalled = this.stalledMs(now);
    return stalled > this.longestTimeoutMs + 10_000
      ? `${this.inFlight} publishes in flight and none settled for ${Math.round(stalled / 1000)} s`
      : undefined;
  }

  /**
   * Resolves with the PubAck once the event is stored; rejects with a BusError: `Invalid` (not
   * retryable) when the id or a header value can never be published, `Timeout` when no slot
   * frees within the PubAck wait.
   */
  publish(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PubAck> {
    if (this.nc.isClosed() || this.nc.isDraining())
      return Promise.reject(new BusError('BusUnavailable', 'the bus connection is closed'));
    const bad = unpublishable(opts);
    if (bad) return Promise.reject(new BusError('Invalid', `${bad} (subject ${subject})`));
    // With a free slot, send at once: no extra promise hop on the hot path.
    if (this.inFlight < this.max) {
      if (this.inFlight === 0) this.progressAt = Date.now();
      this.inFlight++;
      return this.send(subject, data, opts);
    }
    return this.slot(opts.timeoutMs ?? this.timeoutMs, subject).then(() => this.send(subject, data, opts));
  }

  /** Waits for a slot at most `ms`; rejects with Timeout after (the caller was never sent). */
  private slot(ms: number, subject: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, timer: undefined, gone: false };
      w.timer = setTimeout(() => {
        w.gone = true;
        this.waitingCount--;
        reject(
          new BusError(
            'Timeout',
            `no publish slot free within ${ms} ms (${this.inFlight} publishes awaiting their PubAck; subject ${subject})`,
          ),
        );
      }, ms);
      this.waiting.push(w);
      this.waitingCount++;
    });
  }

  /** Resolves once nothing is in flight or queued (for shutdown). */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private release(): void {
    this.progressAt = Date.now();
    while (this.head < this.waiting.length) {
      const next = this.waiting[this.head];
      this.waiting[this.head++] = undefined;
      if (this.head === this.waiting.length) {
        this.waiting = [];
        this.head = 0;
      } else if (this.head >= 4096 && this.head * 2 >= this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      if (!next || next.gone) continue; // gave up waiting (timed out)
      clearTimeout(next.timer);
      this.waitingCount--;
      next.resolve(); // the slot passes straight to the next caller
      return;
    }
    this.inFlight--;
    if (this.inFlight === 0 && this.idleWaiters.length) {
      const ws = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of ws) w();
    }
  }

  /** The Nats-Msg-Id sent for event id `id` (see the header). */
  messageId(id: string): string {
    return this.idKey ? createHmac('sha256', this.idKey).update(id).digest('base64url') : id;
  }

  private send(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PubAck> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    if (timeoutMs > this.longestTimeoutMs) this.longestTimeoutMs = timeoutMs;
    let p: Promise<PubAck>;
    // Everything that can throw after the slot was taken is inside the try: the slot is released.
    try {
      const h = natsHeaders();
      h.set('Nats-Msg-Id', this.messageId(opts.msgId));
      for (const k in opts.headers) h.set(k, opts.headers[k]!);
      // One publish with its reply subject (pub-acks.ts), not a request: no Error built per event.
      p = this.acks.publish(subject, data, { headers: h, timeoutMs });
    } catch (err) {
      this.release();
      return Promise.reject(this.fail(err, subject));
    }
    return p.then(
      (ack) => {
        this.release();
        return ack;
      },
      (err: unknown) => {
        this.release();
        throw this.fail(err, subject);
      },
    );
  }

  private fail(err: unknown, subject: string): BusError {
    const e = toBusError(err, subject);
    // A timeout while the connection is down is the connection's fault, not a slow server.
    if (e.code === 'Timeout' && this.conn && !this.conn.connected) {
      return new BusError(
        'BusUnavailable',
        `not connected to NATS (subject ${subject}); the client is reconnecting`,
        {
          cause: err,
        },
      );
    }
    return e;
  }
}
