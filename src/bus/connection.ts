// Connecting to the bus: URL list, one credential, TLS, reconnecting forever with exponential
// backoff and jitter, the connection state as events and as an async iterator (health checks and
// metrics), and a drain on close so in-flight publishes and acks are not cut off. A connection
// opened with a credential also carries a key derived from it, with which the Publisher turns
// event ids into message ids other credentials cannot predict (see msgIdKeyOf).
import { createHmac } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
} from '@nats-io/transport-node';
import { type BusConfig, type BusTls, busServers, credentialToAuth } from '../api/bus-config.ts';

export type ConnectionState = 'connected' | 'disconnected' | 'reconnecting' | 'closed';

export interface ConnectOptions {
  /** Client name shown in the server's monitoring (default "sluice"). */
  name?: string;
  /** Give up the first connect after this long (default 10 s); once connected, reconnects never stop. */
  connectTimeoutMs?: number;
  /** First reconnect delay (default 250 ms); doubles per failed attempt up to `reconnectMaxMs`. */
  reconnectInitialMs?: number;
  /** Longest reconnect delay (default 5 s). */
  reconnectMaxMs?: number;
  /**
   * Prefix of this connection's reply subjects (default "_INBOX"). A role whose credential may
   * subscribe only below its own prefix must use it, and nobody else can read its replies.
   */
  inboxPrefix?: string;
}

/**
 * What `BusConnection.open` takes: a BusConfig, or the older single `credential` string (token,
 * "user:password", NKey seed or .creds text) that the controller passes.
 */
export type BusConnectOptions = Omit<BusConfig, 'auth' | 'tls'> &
  Partial<Pick<BusConfig, 'auth'>> & {
    tls?: BusTls | undefined;
    credential?: string;
  } & ConnectOptions;

/**
 * Reconnect delays: exponential from `initialMs`, capped at `maxMs`, each one drawn uniformly
 * from [d/2, d] so that many clients losing the same server do not come back in lockstep.
 */
export class Backoff {
  private attempt = 0;
  private current: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(initialMs = 250, maxMs = 5_000, random: () => number = Math.random) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.random = random;
    this.current = this.draw();
  }

  private draw(): number {
    const d = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    return Math.round(d / 2 + (this.random() * d) / 2);
  }

  /** The delay before the next attempt (stable until `failed()` or `reset()`). */
  get delayMs(): number {
    return this.current;
  }

  failed(): void {
    this.attempt++;
    this.current = this.draw();
  }

  reset(): void {
    this.attempt = 0;
    this.current = this.draw();
  }
}

/** Keys of the connections BusConnection opened with a credential (see msgIdKeyOf). */
const msgIdKeys = new WeakMap<NatsConnection, Buffer>();

/**
 * The message-id key of a connection: HMAC-SHA256 of its credential (NKey seed, .creds, token or
 * user:password) under a fixed label, so it is stable across reconnects, restarts and replicas
 * holding the same credential, and unknown to anyone without it. Undefined for a connection made
 * without a credential (an open local bus) or not through BusConnection.
 */
export function msgIdKeyOf(nc: NatsConnection): Buffer | undefined {
  return msgIdKeys.get(nc);
}

/** The key a credential yields (pure; exported for tests). */
export function msgIdKeyFor(auth: NonNullable<BusConfig['auth']>): Buffer {
  const secret =
    'nkeySeed' in auth
      ? auth.nkeySeed
      : 'creds' in auth
        ? auth.creds
        : 'token' in auth
          ? auth.token
          : `${auth.user}:${auth.password}`;
  return createHmac('sha256', 'sluice/msg-id/v1').update(secret.trim()).digest();
}

/** nats.js connection options for a bus config (pure; exported for tests). */
export function natsConnectionOptions(
  config: BusConnectOptions,
  backoff: Backoff = new Backoff(config.reconnectInitialMs, config.reconnectMaxMs),
): ConnectionOptions {
  const auth = config.auth ?? (config.credential ? credentialToAuth(config.credential) : undefined);
  const o: ConnectionOptions = {
    servers: busServers(config.url),
    name: config.name ?? 'sluice',
    maxReconnectAttempts: -1,
    reconnectDelayHandler: () => backoff.delayMs,
    timeout: config.connectTimeoutMs ?? 10_000,
    // Keep pings modest so a silently dead server is noticed within ~30 s, not 4 minutes.
    pingInterval: 10_000,
    maxPingOut: 3,
    // Otherwise every request allocates two Error objects up front just for their stack traces,
    // which costs about a third of the CPU of a pipelined publish.
    noAsyncTraces: true,
    ...(config.inboxPrefix ? { inboxPrefix: config.inboxPrefix } : {}),
  };
  if (auth) {
    if ('user' in auth) {
      o.user = auth.user;
      o.pass = auth.password;
    } else if ('token' in auth) o.token = auth.token;
    else if ('nkeySeed' in auth) o.authenticator = nkeyAuthenticator(new TextEncoder().encode(auth.nkeySeed));
    else o.authenticator = credsAuthenticator(new TextEncoder().encode(auth.creds));
  }
  if (config.tls) {
    // Node's tls.connect options pass through the transport unchanged, so rejectUnauthorized works
    // even though nats.js's TlsOptions type does not list it.
    const tls: Record<string, unknown> = {};
    if (config.tls.ca) tls.ca = config.tls.ca;
    if (config.tls.cert) tls.cert = config.tls.cert;
    if (config.tls.key) tls.key = config.tls.key;
    if (config.tls.insecureSkipVerify) tls.rejectUnauthorized = false;
    o.tls = tls;
  }
  return o;
}

export class BusConnection extends EventEmitter<{ state: [ConnectionState] }> {
  readonly nc: NatsConnection;
  private current: ConnectionState = 'connected';
  private readonly backoff: Backoff;
  private reconnectCount = 0;
  private readonly watching: Promise<void>;

  private constructor(nc: NatsConnection, backoff: Backoff) {
    super();
    this.nc = nc;
    this.backoff = backoff;
    this.watching = this.watch();
  }

  /** Connects; rejects if the first connect fails (later disconnects are retried forever). */
  static async open(config: BusConnectOptions): Promise<BusConnection> {
    const backoff = new Backoff(config.reconnectInitialMs, config.reconnectMaxMs);
    const nc = await connect(natsConnectionOptions(config, backoff));
    const auth = config.auth ?? (config.credential ? credentialToAuth(config.credential) : undefined);
    if (auth) msgIdKeys.set(nc, msgIdKeyFor(auth));
    return new BusConnection(nc, backoff);
  }

  /**
   * Connects, however long the bus takes to be there: a failed first connect (no route or DNS
   * name yet, servers still starting, a credential the servers have not loaded yet) is retried
   * with backoff (`initialMs`, default 500 ms, doubling to `maxMs`, default 15 s, jittered), and
   * `onRetry` hears of each failure. A managed bus's pods start next to the EventSources and
   * Sensors that use it, and a new role's credential reaches the servers only when the kubelet
   * refreshes their config Secret (up to a minute or two): failing the pod instead would put it
   * into a growing crash-loop back-off. Rejects only when `signal` aborts (with its reason).
   */
  static async openPatiently(
    config: BusConnectOptions,
    opts: {
      signal?: AbortSignal;
      onRetry?: (err: Error, delayMs: number, attempt: number) => void;
      initialMs?: number;
      maxMs?: number;
    } = {},
  ): Promise<BusConnection> {
    const backoff = new Backoff(opts.initialMs ?? 500, opts.maxMs ?? 15_000);
    for (let attempt = 1; ; attempt++) {
      opts.signal?.throwIfAborted();
      try {
        return await BusConnection.open(config);
      } catch (err) {
        const delay = backoff.delayMs;
        backoff.failed();
        opts.onRetry?.(err as Error, delay, attempt);
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            clearTimeout(timer);
            reject(opts.signal!.reason);
          };
          const timer = setTimeout(() => {
            opts.signal?.removeEventListener('abort', onAbort);
            resolve();
          }, delay);
          opts.signal?.addEventListener('abort', onAbort, { once: true });
        });
      }
    }
  }

  get state(): ConnectionState {
    return this.current;
  }

  get connected(): boolean {
    return this.current === 'connected';
  }

  /** Successful reconnects since open (a metric). */
  get reconnects(): number {
    return this.reconnectCount;
  }

  private set(state: ConnectionState): void {
    if (state === this.current || this.current === 'closed') return;
    this.current = state;
    this.emit('state', state);
  }

  private async watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.set('disconnected');
          break;
        case 'reconnecting':
          // Emitted before each dial: the previous one (if any) failed, so lengthen the wait.
          if (this.current === 'reconnecting') this.backoff.failed();
          this.set('reconnecting');
          break;
        case 'reconnect':
          this.backoff.reset();
          this.reconnectCount++;
          this.set('connected');
          break;
        case 'close':
          this.set('closed');
          break;
      }
    }
    this.set('closed');
  }

  /**
   * The current state, then every change, ending after 'closed'. Stops early when `signal` aborts.
   */
  async *states(signal?: AbortSignal): AsyncGenerator<ConnectionState> {
    const queue: ConnectionState[] = [this.current];
    let wake: (() => void) | undefined;
    const onState = (s: ConnectionState) => {
      queue.push(s);
      wake?.();
    };
    const onAbort = () => wake?.();
    this.on('state', onState);
    signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        while (queue.length) {
          const s = queue.shift()!;
          yield s;
          if (s === 'closed') return;
        }
        if (signal?.aborted) return;
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
    } finally {
      this.off('state', onState);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Lets in-flight requests and subscriptions finish, then closes. */
  async close(): Promise<void> {
    if (!this.nc.isClosed()) {
      try {
        await this.nc.drain();
      } catch {
        // drain refuses while disconnected or already draining; a plain close still ends it.
        await this.nc.close();
      }
    }
    this.set('closed');
    await this.watching;
  }
}

/** Connects to a bus described by a BusConfig. */
export function connectBus(config: BusConfig, options: ConnectOptions = {}): Promise<BusConnection> {
  return BusConnection.open({ ...config, ...options });
}
