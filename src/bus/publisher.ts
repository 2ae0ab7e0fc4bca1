// Publishing events: `Nats-Msg-Id` = event id (the server drops repeats inside the duplicates
// window), many publishes in flight at once (no await-per-message), a bound on how many, and
// typed errors (StreamFull, MessageTooLarge, BusUnavailable, Timeout).
import {
  type JetStreamClient,
  type JetStreamPublishOptions,
  jetstream,
  type PubAck,
} from '@nats-io/jetstream';
import { type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { BusError, toBusError } from './errors.ts';

export interface PublishOptions {
  /** Event id: becomes Nats-Msg-Id. */
  msgId: string;
  headers?: Record<string, string>;
  /** Wait for the PubAck at most this long (default 5 s). */
  timeoutMs?: number;
}

export interface PublisherOptions {
  /** Most publishes awaiting their PubAck at once; more wait for a slot (default 2048). */
  maxInFlight?: number;
  timeoutMs?: number;
}

export class Publisher {
  private readonly js: JetStreamClient;
  private readonly nc: NatsConnection;
  private readonly max: number;
  private readonly timeoutMs: number;
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(nc: NatsConnection, opts: PublisherOptions = {}) {
    this.nc = nc;
    this.js = jetstream(nc);
    this.max = opts.maxInFlight ?? 2048;
    this.timeoutMs = opts.timeoutMs ?? 5_000;
  }

  /** Publishes currently awaiting their PubAck. */
  get pending(): number {
    return this.inFlight;
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }

  /** Resolves with the PubAck once the event is durable; rejects with a BusError. */
  publish(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PubAck> {
    if (this.nc.isClosed())
      return Promise.reject(new BusError('BusUnavailable', 'the bus connection is closed'));
    // Fast path without extra promise hops while a slot is free (the common case).
    if (this.inFlight < this.max) {
      this.inFlight++;
      return this.send(subject, data, opts);
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() =>
      this.send(subject, data, opts),
    );
  }

  private send(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PubAck> {
    const o: Partial<JetStreamPublishOptions> = {
      msgID: opts.msgId,
      timeout: opts.timeoutMs ?? this.timeoutMs,
    };
    if (opts.headers) {
      const h = natsHeaders();
      for (const [k, v] of Object.entries(opts.headers)) h.set(k, v);
      o.headers = h;
    }
    let p: Promise<PubAck>;
    try {
      p = this.js.publish(subject, data, o);
    } catch (err) {
      this.release();
      return Promise.reject(toBusError(err));
    }
    return p.then(
      (ack) => {
        this.release();
        return ack;
      },
      (err: unknown) => {
        this.release();
        throw toBusError(err);
      },
    );
  }
}
