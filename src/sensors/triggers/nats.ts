// `nats`: publishes the JSON payload built from `payload` on `subject` of the server at `url`, with
// the idempotency key in the `Nats-Msg-Id` header (JetStream streams capturing the subject drop a
// repeat within their duplicate window) and `traceparent` when known. A publish counts as done
// once the server has received it (a flush round trip). One connection per url, TLS and
// credentials, kept between calls; close() drains them. While the server is unreachable the
// client buffers the message and the call fails as Transient after the flush timeout; the buffered
// copy may still go out after reconnecting, so a retry can repeat it (with the same Nats-Msg-Id,
// which a JetStream stream drops within its duplicate window).
import {
  AuthorizationError,
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  headers as natsHeaders,
  nkeyAuthenticator,
  PermissionViolationError,
} from '@nats-io/transport-node';
import type { NATSTrigger } from '../../api/sensor.ts';
import { RecentKeys } from './recent-keys.ts';
import { type TriggerContext, TriggerError, type TriggerRunner } from './trigger.ts';

const CONNECT_TIMEOUT_MS = 5_000;
const FLUSH_TIMEOUT_MS = 10_000;

interface Conn {
  nc: NatsConnection;
  /** Subjects the server refused publishes on since the last check. */
  denied: Map<string, string>;
}

async function connectionOptions(spec: NATSTrigger, ctx: TriggerContext): Promise<ConnectionOptions> {
  const o: ConnectionOptions = {
    servers: spec.url
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    name: `sluice-sensor-${ctx.sensorName}`,
    timeout: CONNECT_TIMEOUT_MS,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1_000,
    pingInterval: 10_000,
    maxPingOut: 3,
  };
  const auth = spec.auth;
  if (auth?.basic) {
    if (auth.basic.username) o.user = (await ctx.resolveSecret(auth.basic.username)).trim();
    if (auth.basic.password) o.pass = (await ctx.resolveSecret(auth.basic.password)).trim();
  } else if (auth?.token) {
    o.token = (await ctx.resolveSecret(auth.token)).trim();
  } else if (auth?.nkey) {
    o.authenticator = nkeyAuthenticator(
      new TextEncoder().encode((await ctx.resolveSecret(auth.nkey)).trim()),
    );
  } else if (auth?.credential) {
    o.authenticator = credsAuthenticator(new TextEncoder().encode(await ctx.resolveSecret(auth.credential)));
  }
  const tls = spec.tls;
  if (tls && (tls.enabled || tls.caCertSecret || tls.clientCertSecret || tls.insecureSkipVerify)) {
    // Node's tls.connect options pass through nats.js's transport (rejectUnauthorized included).
    const t: Record<string, unknown> = {};
    if (tls.caCertSecret) t.ca = await ctx.resolveSecret(tls.caCertSecret);
    if (tls.clientCertSecret) t.cert = await ctx.resolveSecret(tls.clientCertSecret);
    if (tls.clientKeySecret) t.key = await ctx.resolveSecret(tls.clientKeySecret);
    if (tls.insecureSkipVerify) t.rejectUnauthorized = false;
    o.tls = t;
  }
  return o;
}

async function withTimeout<T>(p: Promise<T>, ms: number, signal: AbortSignal, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new TriggerError('Transient', `${what}: no answer within ${ms / 1000}s`)),
          ms,
        );
        onAbort = () => reject(new TriggerError('Transient', `${what}: aborted`));
        if (signal.aborted) onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

export interface NatsRunnerOptions {
  /** How long a publish may wait for the server's acknowledgement of receipt (default 10 s). */
  flushTimeoutMs?: number;
}

export function natsTrigger(opts: NatsRunnerOptions = {}): TriggerRunner<NATSTrigger> {
  const flushTimeoutMs = opts.flushTimeoutMs ?? FLUSH_TIMEOUT_MS;
  const conns = new Map<string, Promise<Conn>>();
  const done = new RecentKeys();

  const open = async (spec: NATSTrigger, ctx: TriggerContext): Promise<Conn> => {
    const id = JSON.stringify([spec.url, spec.auth ?? null, spec.tls ?? null]);
    let p = conns.get(id);
    if (!p) {
      p = (async () => {
        const nc = await connect(await connectionOptions(spec, ctx));
        const conn: Conn = { nc, denied: new Map() };
        void (async () => {
          for await (const s of nc.status()) {
            if (
              s.type === 'error' &&
              s.error instanceof PermissionViolationError &&
              s.error.operation === 'publish'
            ) {
              conn.denied.set(s.error.subject, s.error.message);
            }
          }
        })().catch(() => {});
        void nc.closed().then(() => {
          if (conns.get(id) === p) conns.delete(id);
        });
        return conn;
      })();
      conns.set(id, p);
      p.catch(() => {
        if (conns.get(id) === p) conns.delete(id);
      });
    }
    try {
      return await p;
    } catch (err) {
      if (err instanceof TriggerError) throw err;
      const e = err as Error;
      const code = err instanceof AuthorizationError ? 'Misconfigured' : 'Transient';
      throw new TriggerError(code, `nats ${spec.url}: ${e.message}`, { cause: err });
    }
  };

  return {
    type: 'nats',
    async fire(spec, ctx) {
      const dedupeKey = `${spec.url}\u0000${spec.subject}\u0000${ctx.idempotencyKey}`;
      if (done.has(dedupeKey))
        return { detail: `already published on ${spec.subject} (same idempotency key)` };
      const body = ctx.buildPayload(spec.payload) ?? {};
      const data = new TextEncoder().encode(JSON.stringify(body));
      const { nc, denied } = await open(spec, ctx);
      const h = natsHeaders();
      h.set('Nats-Msg-Id', ctx.idempotencyKey);
      if (ctx.traceparent) h.set('traceparent', ctx.traceparent);
      h.set('Content-Type', 'application/json');
      try {
        denied.delete(spec.subject);
        nc.publish(spec.subject, data, { headers: h });
        await withTimeout(nc.flush(), flushTimeoutMs, ctx.signal, `nats flush to ${spec.url}`);
        // The server reports a refused publish before it answers the flush's ping; give the
        // status loop a turn to record it.
        await new Promise((r) => setImmediate(r));
      } catch (err) {
        if (err instanceof TriggerError) throw err;
        const e = err as Error;
        const code =
          e.name === 'InvalidSubjectError' || e.name === 'InvalidArgumentError'
            ? 'Misconfigured'
            : 'Transient';
        throw new TriggerError(code, `nats publish on ${spec.subject}: ${e.message}`, { cause: err });
      }
      const refusal = denied.get(spec.subject);
      if (refusal) {
        denied.delete(spec.subject);
        throw new TriggerError('Rejected', `nats publish on ${spec.subject}: ${refusal}`);
      }
      done.set(dedupeKey, true);
      return { detail: `published ${data.length} bytes on ${spec.subject}` };
    },
    async close() {
      const all = [...conns.values()];
      conns.clear();
      await Promise.allSettled(
        all.map(async (p) => {
          const c = await p;
          if (!c.nc.isClosed()) await c.nc.drain();
        }),
      );
    },
  };
}
