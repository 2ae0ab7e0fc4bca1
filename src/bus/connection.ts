// Connecting to the bus: URL list, credential (token, "user:password", NKey seed or .creds file),
// TLS, reconnect forever with jittered backoff, connection state for health and metrics, and a
// drain on close so in-flight work finishes.
import { EventEmitter } from 'node:events';
import { connect, credsAuthenticator, type NatsConnection, nkeyAuthenticator } from '@nats-io/transport-node';

export type ConnectionState = 'connected' | 'disconnected' | 'reconnecting' | 'closed';

export interface BusConnectOptions {
  /** One URL or a comma-separated list. */
  url: string;
  /** Token, "user:password", an NKey seed (starts with "SU") or the text of a .creds file. */
  credential?: string;
  tls?: { ca?: string; cert?: string; key?: string; insecureSkipVerify?: boolean };
  name?: string;
  /** Give up the first connect after this long (reconnects afterwards never give up). */
  connectTimeoutMs?: number;
}

export class BusConnection extends EventEmitter<{ state: [ConnectionState] }> {
  readonly nc: NatsConnection;
  private current: ConnectionState = 'connected';

  private constructor(nc: NatsConnection) {
    super();
    this.nc = nc;
    void this.watch();
  }

  static async open(opts: BusConnectOptions): Promise<BusConnection> {
    const servers = opts.url
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const cred = opts.credential?.trim();
    const auth: Record<string, unknown> = {};
    if (cred) {
      if (cred.includes('-----BEGIN NATS USER JWT-----')) {
        auth.authenticator = credsAuthenticator(new TextEncoder().encode(cred));
      } else if (/^SU[A-Z2-7]{50,}$/.test(cred)) {
        auth.authenticator = nkeyAuthenticator(new TextEncoder().encode(cred));
      } else if (cred.includes(':')) {
        const i = cred.indexOf(':');
        auth.user = cred.slice(0, i);
        auth.pass = cred.slice(i + 1);
      } else {
        auth.token = cred;
      }
    }
    const tls = opts.tls
      ? {
          ...(opts.tls.ca ? { ca: opts.tls.ca } : {}),
          ...(opts.tls.cert ? { cert: opts.tls.cert } : {}),
          ...(opts.tls.key ? { key: opts.tls.key } : {}),
          ...(opts.tls.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
        }
      : undefined;
    const nc = await connect({
      servers,
      name: opts.name ?? 'sluice',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
      timeout: opts.connectTimeoutMs ?? 10_000,
      waitOnFirstConnect: false,
      ...auth,
      ...(tls ? { tls } : {}),
    });
    return new BusConnection(nc);
  }

  get state(): ConnectionState {
    return this.current;
  }

  private set(state: ConnectionState): void {
    if (state === this.current) return;
    this.current = state;
    this.emit('state', state);
  }

  private async watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') this.set('disconnected');
      else if (s.type === 'reconnecting') this.set('reconnecting');
      else if (s.type === 'reconnect') this.set('connected');
    }
    this.set('closed');
  }

  /** Finishes in-flight requests and subscriptions, then closes. */
  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close();
    }
    this.set('closed');
  }
}
