// One HTTP server per port, shared by all webhook-style sources of an EventSource. The order of
// checks is fixed: route (404/405), capacity (429), auth (401), size (413), the route's signature
// check (401 unsigned, 403 wrong), content (400), and only then publish: 200 only after the bus confirmed the event is stored; 503 + Retry-After when
// the bus is full or unreachable, so the sender retries instead of believing a lost event arrived.
import { timingSafeEqual } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { BusError } from '../../bus/errors.ts';

export interface WebhookRoute {
  eventName: string;
  endpoint: string;
  method: string;
  maxPayloadSize: number;
  /** Bearer token requests must present, when configured. */
  authToken?: string;
  /** Serve this port over HTTPS with this certificate and key (PEM), when configured. */
  tls?: { cert: string; key: string };
  metadata?: Record<string, string>;
  /** Request headers left out of the published `header` (lower case), e.g. ones carrying a secret. */
  hideHeaders?: string[];
  /** Publishes the event; resolves once it is durable (or filtered out), rejects with a BusError. */
  accept(delivery: WebhookDelivery): Promise<unknown>;
  /**
   * Signature/token check on the raw request, after the size check and before anything is parsed:
   * a refusal (401 missing, 403 wrong) is answered and nothing is published.
   */
  verify?(headers: IncomingHttpHeaders, raw: Buffer): { status: 401 | 403; message: string } | undefined;
  /**
   * Provider-specific handling after parsing: the delivery id (stable across the provider's
   * retries), the data to publish instead of `{header, body}`, several events from one delivery,
   * or a direct answer with nothing published (a URL-verification handshake, an event type that
   * is filtered out). `standard` is what would be published otherwise ({header, body, metadata}).
   * Throwing refuses the delivery with 400, or 503 + Retry-After for RetryLater.
   */
  prepare?(
    headers: IncomingHttpHeaders,
    body: unknown,
    raw: Buffer,
    standard: StandardPayload,
  ): Prepared | Promise<Prepared>;
}

/** The upstream webhook payload: request headers (all values of each), parsed body, metadata. */
export interface StandardPayload {
  header: Record<string, string[]>;
  body: unknown;
  metadata?: Record<string, string>;
}

/** What a route's `prepare` makes of a delivery. */
export interface Prepared {
  id?: string | undefined;
  data?: unknown;
  /** Publish these instead of one event; the answer is 200 only once all of them are stored. */
  events?: Array<{ id?: string | undefined; data: unknown }>;
  reply?: { status: number; body: string; contentType?: string };
}

/** Thrown by `prepare` when the delivery cannot be judged now (e.g. a provider API is down). */
export class RetryLater extends Error {}

export interface WebhookDelivery {
  eventName: string;
  /** Stable id from Idempotency-Key (or X-Request-Id), when the sender gave one. */
  id?: string;
  traceparent?: string;
  /** Upstream-compatible payload: { header, body, metadata }, or what the route's `prepare` made. */
  data: unknown;
}

export interface WebhookServerOptions {
  port: number;
  host?: string;
  /** Requests being handled at once; more get 429. */
  maxInFlight: number;
  /** Called with each answer (for metrics). */
  onResult?(eventName: string | undefined, status: number): void;
}

export const DEFAULT_MAX_PAYLOAD = 1_048_576;
const RETRY_AFTER_S = '2';

function reply(
  res: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(`${message}\n`);
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Reads the body up to `max` bytes; resolves undefined when it is larger. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

export class WebhookServer {
  private readonly opts: WebhookServerOptions;
  private readonly routes = new Map<string, WebhookRoute>();
  private server?: Server;
  private inFlight = 0;
  private idle: Array<() => void> = [];
  private accepting = true;

  constructor(opts: WebhookServerOptions) {
    this.opts = opts;
  }

  addRoute(route: WebhookRoute): void {
    const key = route.endpoint.startsWith('/') ? route.endpoint : `/${route.endpoint}`;
    if (this.routes.has(key)) throw new Error(`two events share endpoint ${key} on port ${this.opts.port}`);
    this.routes.set(key, { ...route, endpoint: key });
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | undefined)?.port ?? this.opts.port;
  }

  async start(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    // One port, one protocol: HTTPS when any of its routes brings a certificate.
    const tls = [...this.routes.values()].find((r) => r.tls)?.tls;
    const server: Server = tls
      ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler)
      : createServer(handler);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host ?? '0.0.0.0', () => resolve());
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = this.routes.get(path);
    const done = (status: number, message: string, headers?: Record<string, string>) => {
      reply(res, status, message, headers);
      this.opts.onResult?.(route?.eventName, status);
    };
    if (!route) return done(404, `no event source listens on ${path}`);
    if (req.method !== route.method.toUpperCase()) {
      return done(405, `${path} accepts ${route.method.toUpperCase()} only`, {
        allow: route.method.toUpperCase(),
      });
    }
    if (!this.accepting)
      return done(503, 'shutting down', { 'retry-after': RETRY_AFTER_S, connection: 'close' });
    if (this.inFlight >= this.opts.maxInFlight) {
      req.resume();
      return done(429, 'too many requests in flight; retry later', { 'retry-after': '1' });
    }
    this.inFlight++;
    try {
      if (route.authToken) {
        const auth = req.headers.authorization ?? '';
        const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
        if (!token || !sameSecret(token, route.authToken)) {
          req.resume();
          return done(401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer' });
        }
      }
      const declared = Number(req.headers['content-length'] ?? Number.NaN);
      if (declared > route.maxPayloadSize) {
        req.resume();
        return done(413, `body larger than ${route.maxPayloadSize} bytes`);
      }
      const raw = await readBody(req, route.maxPayloadSize);
      if (!raw) return done(413, `body larger than ${route.maxPayloadSize} bytes`, { connection: 'close' });
      const refused = route.verify?.(req.headers, raw);
      if (refused) return done(refused.status, refused.message);
      let body: unknown = raw.toString('utf8');
      const type = (req.headers['content-type'] ?? '').toLowerCase();
      if (type.includes('json') || (!type && raw.length > 0 && /^\s*[[{]/.test(body as string))) {
        try {
          body = raw.length ? JSON.parse(raw.toString('utf8')) : null;
        } catch (err) {
          return done(400, `body is not valid JSON: ${(err as Error).message}`);
        }
      }
      const header: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(req.headersDistinct)) {
        if (v && k !== 'authorization' && !route.hideHeaders?.includes(k)) header[k] = v;
      }
      const standard: StandardPayload = {
        header,
        body,
        ...(route.metadata ? { metadata: route.metadata } : {}),
      };
      let prepared: Prepared = {};
      try {
        prepared = (await route.prepare?.(req.headers, body, raw, standard)) ?? {};
      } catch (err) {
        if (err instanceof RetryLater) {
          return done(503, `not accepted, retry later: ${err.message}`, { 'retry-after': RETRY_AFTER_S });
        }
        return done(400, `not a valid delivery: ${(err as Error).message}`);
      }
      if (prepared.reply) {
        res.writeHead(prepared.reply.status, {
          'content-type': prepared.reply.contentType ?? 'text/plain; charset=utf-8',
        });
        res.end(prepared.reply.body);
        this.opts.onResult?.(route.eventName, prepared.reply.status);
        return;
      }
      const idHeader = req.headers['idempotency-key'] ?? req.headers['x-request-id'];
      const id =
        prepared.id ??
        (typeof idHeader === 'string' && idHeader.length > 0 && idHeader.length <= 200
          ? idHeader
          : undefined);
      const traceparent = typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined;
      const events = prepared.events ?? [
        { id, data: prepared.data !== undefined ? prepared.data : standard },
      ];
      try {
        // In order, each stored before the next: a retried delivery re-sends the same ids, so
        // the ones already stored are dropped as duplicates by the bus.
        for (const ev of events) {
          await route.accept({
            eventName: route.eventName,
            ...(ev.id ? { id: ev.id } : {}),
            ...(traceparent ? { traceparent } : {}),
            data: ev.data,
          });
        }
      } catch (err) {
        if (err instanceof BusError && err.code === 'MessageTooLarge') return done(413, err.message);
        if (err instanceof BusError && err.retryable) {
          return done(503, `not accepted, retry later: ${err.code}`, { 'retry-after': RETRY_AFTER_S });
        }
        return done(500, 'internal error');
      }
      return done(200, 'accepted');
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) for (const f of this.idle.splice(0)) f();
    }
  }

  /** Stops taking requests, waits for in-flight ones (bounded), then closes. */
  async stop(graceMs = 10_000): Promise<void> {
    this.accepting = false;
    if (this.inFlight > 0) {
      await Promise.race([
        new Promise<void>((r) => this.idle.push(r)),
        new Promise<void>((r) => setTimeout(r, graceMs)),
      ]);
    }
    const server = this.server;
    if (!server) return;
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
