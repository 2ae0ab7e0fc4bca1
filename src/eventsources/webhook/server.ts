// One HTTP server per port, shared by all webhook-style sources of an EventSource (each request is
// handled in exchange.ts). The server keeps every bound against slow, partial and hostile clients
// (limits.ts): a deadline for the header section and for the whole request (Node answers 408), a
// body idle timeout, request-body bytes and connections bounded per process (budget.ts), malformed
// HTTP answered 400/431 and cut, and no error of a client's connection can reach the process.
// `/health` answers 200 on every port (as upstream serves it) unless a route uses that path, and
// 503 while the process cannot publish (`unhealthy`). Routing reads the path as Go's server does:
// an absolute-form target (`POST http://host/orders`) and percent-escapes (`/%6Frders`) reach
// `/orders`; a request line that is not HTTP/1.x gets 505 and a second Host header 400, as Go
// answers them. `stop()` is bounded: it stops listening, cuts requests still receiving their
// body, lets requests waiting for the bus finish within the grace period, writes the ids of
// those still unconfirmed to the shared memory (`beforeCut`), then answers them 503 and closes
// every connection.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../../observability/logger.ts';
import { ByteBudget } from './budget.ts';
import { ConnectionGate } from './connection-gate.ts';
import { Exchange, type ExchangeContext, handleExchange } from './exchange.ts';
import { DEFAULT_ID_HEADERS } from './headers.ts';
import { UnconfirmedIds } from './identity.ts';
import { defaultLimits, type WebhookLimits } from './limits.ts';
import { noteConnection } from './reclaim.ts';
import type { WebhookRoute } from './route.ts';

export {
  DEFAULT_MAX_PAYLOAD,
  type Prepared,
  RetryLater,
  type StandardPayload,
  type WebhookDelivery,
  type WebhookRoute,
} from './route.ts';

/** What all webhook servers of a process share: the byte budget and the connection bound. */
export interface ProcessBounds {
  budget: ByteBudget;
  connections: ConnectionGate;
}

let shared: ProcessBounds | undefined;

/** Least time between two collections asked for by `giveMemoryBack` (ms). */
const RELIEF_INTERVAL_MS = 30_000;
let lastRelief = 0;

/**
 * After the budget or the connections were busy and drained (an upload or connection flood is over), runs a
 * full garbage collection when the process allows it (`bin/sluice` passes --expose-gc), so the
 * memory comes back now rather than at the next collection V8 would choose, which an idle
 * process may never reach. At most once per 30 s.
 */
function giveMemoryBack(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc || Date.now() - lastRelief < RELIEF_INTERVAL_MS) return;
  lastRelief = Date.now();
  setTimeout(gc, 1_000).unref();
}

/** The process-wide bounds, created from `limits` on first use. */
export function processBounds(limits: WebhookLimits = defaultLimits()): ProcessBounds {
  if (!shared) {
    shared = {
      budget: new ByteBudget(limits.maxBufferedBytes),
      connections: new ConnectionGate(limits.maxConnections),
    };
    shared.budget.onDrained = giveMemoryBack;
    shared.connections.onDrained = giveMemoryBack;
  }
  return shared;
}

export interface WebhookServerOptions {
  port: number;
  host?: string;
  limits?: WebhookLimits;
  /** Default: the process-wide bounds. */
  bounds?: ProcessBounds;
  /** Header names masked in published events (lower case). */
  hiddenHeaders?: readonly string[];
  /** Ids of unconfirmed requests (shared by the ports of one EventSource). */
  identities?: UnconfirmedIds;
  /** Request headers whose value is the event id (lower case; default: idempotency-key). */
  idHeaders?: readonly string[];
  /** Why the process cannot publish now (then `/health` answers 503), or undefined. */
  unhealthy?(): string | undefined;
  /** True while the bus is slow to confirm publishes (see ExchangeContext.busSlow). */
  busSlow?(): boolean;
  /** On stop, after the grace period and before requests still publishing are answered 503. */
  beforeCut?(): Promise<void>;
  log?: Logger;
  /** Called with each answer (for metrics); 499 when the client went away first. */
  onResult?(eventName: string | undefined, status: number): void;
}

const quietLog = { error() {}, warn() {}, info() {}, debug() {} } as unknown as Logger;

/** The answer Node's own clientError handling would give, by error code. */
function clientErrorStatus(err: NodeJS.ErrnoException): number {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  if (err.code === 'HPE_HEADER_OVERFLOW') return 431;
  if (err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return 413;
  return 400;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
};

/**
 * The path a request is routed by, as Go's server reads it: the path of an absolute-form target,
 * percent-escapes decoded. Undefined when it does not decode.
 */
export function routePath(url: string): string | undefined {
  let path = url.split('?')[0]!;
  try {
    if (/^https?:\/\//i.test(path)) path = new URL(path).pathname;
    return path.includes('%') ? decodeURIComponent(path) : path;
  } catch {
    return undefined;
  }
}

/** How many Host headers `raw` (Node's rawHeaders: name, value, ...) has. */
function hostHeaders(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') n++;
  return n;
}

/** Why Go's server would refuse this request before routing it: [status, message], or undefined. */
function protocolRefusal(req: IncomingMessage): [number, string] | undefined {
  if (req.httpVersionMajor !== 1) return [505, 'HTTP version not supported'];
  if (hostHeaders(req.rawHeaders) > 1) return [400, 'too many Host headers'];
  return undefined;
}

export class WebhookServer {
  private readonly opts: WebhookServerOptions;
  private readonly limits: WebhookLimits;
  private readonly bounds: ProcessBounds;
  private readonly routes = new Map<string, WebhookRoute>();
  private readonly live = new Set<Exchange>();
  private readonly ctx: ExchangeContext;
  private server?: Server;
  private publishing = 0;
  private idle: Array<() => void> = [];
  private stopping = false;

  constructor(opts: WebhookServerOptions) {
    this.opts = opts;
    this.limits = opts.limits ?? defaultLimits();
    this.bounds = opts.bounds ?? processBounds(this.limits);
    const log = opts.log ?? quietLog;
    this.ctx = {
      port: opts.port,
      limits: this.limits,
      budget: this.bounds.budget,
      hidden: new Set((opts.hiddenHeaders ?? []).map((h) => h.toLowerCase())),
      idHeaders: (opts.idHeaders ?? DEFAULT_ID_HEADERS).map((h) => h.toLowerCase()),
      identities: opts.identities ?? new UnconfirmedIds(120_000),
      log,
      stopping: () => this.stopping,
      enterPublish: () => {
        if (this.publishing >= this.limits.maxInFlight) return false;
        this.publishing++;
        return true;
      },
      leavePublish: () => {
        this.publishing--;
        if (this.publishing === 0) for (const f of this.idle.splice(0)) f();
      },
      publishFull: () => this.publishing >= this.limits.maxInFlight,
      busSlow: () => opts.busSlow?.() ?? false,
      onResult: (event, status) => opts.onResult?.(event, status),
    };
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
    const l = this.limits;
    const options = {
      headersTimeout: l.headersTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      keepAliveTimeout: l.keepAliveTimeoutMs,
      // How often Node checks the two deadlines above (its default, 30 s, would let them slip).
      connectionsCheckingInterval: Math.min(1000, l.headersTimeoutMs),
      maxHeaderSize: l.maxHeaderBytes,
      requireHostHeader: true,
    };
    // One port, one protocol: HTTPS when any of its routes brings a certificate.
    const tls = [...this.routes.values()].find((r) => r.tls)?.tls;
    const server: Server = tls
      ? createHttpsServer({ ...options, cert: tls.cert, key: tls.key, handshakeTimeout: l.headersTimeoutMs })
      : createServer(options);
    // A client may half-close after sending its request and still wait for the answer (Node's
    // default aborts such a request); a half-close mid-body ends the read (body.ts).
    (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    this.server = server;
    server.on('request', (req, res) => this.dispatch(req, res, false));
    server.on('checkContinue', (req, res) => this.dispatch(req, res, true));
    server.on('connection', (socket: Socket) => this.admit(socket));
    // A connection that stays silent this long with no request in progress is closed (Node's
    // header deadline starts only with the first byte, so silent connections would stay forever).
    server.timeout = l.headersTimeoutMs;
    server.on('timeout', (socket: Socket) => this.silent(socket));
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => this.clientError(err, socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
    // After listening, an accept failure (e.g. out of file descriptors) is logged, never thrown.
    server.on('error', (err) =>
      this.ctx.log.error({ err: err.message, port: this.port }, 'webhook server error'),
    );
  }

  /** Requests waiting for the bus now. */
  get inFlight(): number {
    return this.publishing;
  }

  private admit(socket: Socket): void {
    if (this.stopping || !this.bounds.connections.enter(socket)) {
      socket.destroy();
      return;
    }
    socket.once('close', () => this.bounds.connections.leave(socket));
    noteConnection();
    socket.on('error', () => {}); // reported through clientError / the request; never uncaught
  }

  private silent(socket: Socket): void {
    const s = socket as Socket & { _httpMessage?: unknown; parser?: { incoming?: unknown } | null };
    if (!s._httpMessage && !s.parser?.incoming) socket.destroy();
  }

  private clientError(err: NodeJS.ErrnoException, socket: import('node:stream').Duplex): void {
    const status = clientErrorStatus(err);
    if (err.code !== 'ECONNRESET') this.ctx.onResult(undefined, status);
    const busy = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (busy && !busy.writableEnded && busy.req.complete && err.code !== 'ECONNRESET') {
      // Garbage after a complete (pipelined) request: that request's answer is still to come and
      // must not be preceded by this 400 (its sender would read it as its own answer). Answer
      // it, then close; nothing after the garbage is read.
      busy.shouldKeepAlive = false;
      busy.once('close', () => socket.destroy());
      return;
    }
    if (err.code !== 'ECONNRESET' && socket.writable && !busy?.headersSent) {
      const text = STATUS_TEXT[status] ?? 'Bad Request';
      socket.write(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroy();
  }

  private dispatch(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    const path = routePath(req.url ?? '/');
    const refusal =
      protocolRefusal(req) ?? (path === undefined ? [400, 'malformed request path'] : undefined);
    if (refusal) {
      this.ctx.onResult(undefined, refusal[0]);
      res.writeHead(refusal[0], { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(`${refusal[1]}\n`);
      req.socket.pause();
      return;
    }
    const route = this.routes.get(path!);
    if (!route && path === '/health') {
      this.health(res);
      return;
    }
    // Not evicted at the connection bound while this request is in progress.
    const gate = this.bounds.connections;
    gate.busy(req.socket);
    res.once('close', () => gate.idle(req.socket));
    const ex = new Exchange(this.ctx, req, res, route);
    this.live.add(ex);
    handleExchange(this.ctx, ex, path!, expectContinue)
      .catch((err: Error) => {
        this.ctx.log.error({ err: err.message, stack: err.stack, path }, 'webhook: unexpected error');
        ex.answer(500, 'internal error');
      })
      .finally(() => {
        ex.hold.release();
        this.live.delete(ex);
      });
  }

  private health(res: ServerResponse): void {
    const why = this.stopping ? 'shutting down' : this.opts.unhealthy?.();
    res.writeHead(why ? 503 : 200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(why ? `${why}\n` : 'OK\n');
  }

  /**
   * Stops within `graceMs`: no new connections, requests still receiving their body are cut
   * (503 + close), requests waiting for the bus may finish until the grace ends (then they are
   * answered 503 and their ids remembered), then every connection is closed.
   */
  async stop(graceMs = this.limits.stopGraceMs): Promise<void> {
    this.stopping = true;
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    for (const ex of this.live) if (ex.stage === 'receiving') ex.cut();
    if (this.publishing > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => this.idle.push(r)),
        new Promise<void>((r) => {
          timer = setTimeout(r, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }
    // Ids of requests still unconfirmed go to the shared memory before their 503 (identity.ts).
    const publishing = [...this.live].filter((ex) => ex.stage === 'publishing');
    if (publishing.length) {
      for (const ex of publishing) ex.shareIdentity();
      await this.opts.beforeCut?.();
    }
    for (const ex of this.live) ex.cut();
    server.closeAllConnections();
    await closed;
  }
}
