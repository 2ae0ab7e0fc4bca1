// The bounds every webhook server keeps against slow, partial and hostile clients, and what a
// process may hold for all of its webhook ports together. Defaults are applied here once; the
// `sluice eventsource` and `sluice dev` roles read overrides from SLUICE_WEBHOOK_* variables.
import { readFileSync } from 'node:fs';

export interface WebhookLimits {
  /** The whole header section must arrive within this (ms); otherwise 408 and the connection is cut. */
  headersTimeoutMs: number;
  /** A request body that sends no byte for this long (ms) gets 408 and is cut. */
  bodyIdleMs: number;
  /** The whole request (headers and body) must arrive within this (ms); otherwise 408. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (ms). */
  keepAliveTimeoutMs: number;
  /**
   * Request-body bytes held in memory at once by the process, over all ports (default 16 MiB:
   * with the connection bound it keeps RSS near 200 MiB under issue 13's abuse load). A request
   * whose next chunk does not fit and cannot displace a stalling upload (budget.ts) waits for
   * room for at most `bodyIdleMs`, then gets 503 + Retry-After.
   */
  maxBufferedBytes: number;
  /**
   * Open client connections per process over all ports. At the bound, the oldest one without a
   * request in progress is closed to admit a new one; when every one has a request in
   * progress, the new one is closed at once.
   */
  maxConnections: number;
  /** Largest header section in bytes (431 beyond). */
  maxHeaderBytes: number;
  /** Deepest JSON nesting accepted in a body (400 beyond). */
  maxJsonDepth: number;
  /**
   * Most objects + arrays + object members of a JSON body, or fields of a form (413 beyond, as
   * soon as the bound is passed): bounds the time one body can take to parse.
   */
  maxBodyNodes: number;
  /** Requests waiting for the bus at once per port; more get 429 + Retry-After. */
  maxInFlight: number;
  /**
   * How long (ms) a request keeps re-publishing its event with the same Nats-Msg-Id while the
   * bus does not confirm it, before answering 503.
   */
  publishDeadlineMs: number;
  /** On stop, how long (ms) requests waiting for the bus may still finish before they are cut. */
  stopGraceMs: number;
}

/** Connections kept free for everything else the process opens (NATS, files, the API server). */
const FD_RESERVE = 256;
/**
 * Default connection bound. An open connection costs 15-20 KiB of the process's memory even when
 * silent (socket, parser, timers, and the garbage of those that come and go); 4,096 of them plus
 * a full byte budget of stalled uploads keep RSS near 200 MiB, under issue 13's 250 MiB (8,192
 * reached it). At the bound, idle ones make way for new ones (connection-gate.ts); raise
 * SLUICE_WEBHOOK_MAX_CONNECTIONS for more.
 */
const MAX_CONNECTIONS = 4_096;

/** The open-files soft limit of this process (Linux /proc), or undefined elsewhere. */
export function openFilesSoftLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}

/** Every bound's default (the connection bound follows the process's open-files limit). */
export function defaultLimits(): WebhookLimits {
  const fds = openFilesSoftLimit();
  return {
    headersTimeoutMs: 10_000,
    bodyIdleMs: 5_000,
    requestTimeoutMs: 30_000,
    keepAliveTimeoutMs: 5_000,
    maxBufferedBytes: 16 * 1024 * 1024,
    maxConnections: Math.min(MAX_CONNECTIONS, fds ? Math.max(64, fds - FD_RESERVE) : MAX_CONNECTIONS),
    maxHeaderBytes: 16 * 1024,
    maxJsonDepth: 128,
    maxBodyNodes: 20_000,
    maxInFlight: 2048,
    publishDeadlineMs: 10_000,
    stopGraceMs: 10_000,
  };
}

/** Environment variable of each bound (a positive integer; ms for times, bytes for sizes). */
export const LIMIT_ENV: Readonly<Record<keyof WebhookLimits, string>> = {
  headersTimeoutMs: 'SLUICE_WEBHOOK_HEADERS_TIMEOUT_MS',
  bodyIdleMs: 'SLUICE_WEBHOOK_BODY_IDLE_MS',
  requestTimeoutMs: 'SLUICE_WEBHOOK_REQUEST_TIMEOUT_MS',
  keepAliveTimeoutMs: 'SLUICE_WEBHOOK_KEEPALIVE_TIMEOUT_MS',
  maxBufferedBytes: 'SLUICE_WEBHOOK_MAX_BUFFERED_BYTES',
  maxConnections: 'SLUICE_WEBHOOK_MAX_CONNECTIONS',
  maxHeaderBytes: 'SLUICE_WEBHOOK_MAX_HEADER_BYTES',
  maxJsonDepth: 'SLUICE_WEBHOOK_MAX_JSON_DEPTH',
  maxBodyNodes: 'SLUICE_WEBHOOK_MAX_BODY_NODES',
  maxInFlight: 'SLUICE_WEBHOOK_MAX_IN_FLIGHT',
  publishDeadlineMs: 'SLUICE_WEBHOOK_PUBLISH_DEADLINE_MS',
  stopGraceMs: 'SLUICE_STOP_GRACE_MS',
};

/**
 * The bounds from `env` over `base`. Throws an Error naming the variable when a value is not a
 * positive integer (a typo must not silently become "no bound").
 */
export function limitsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  base: WebhookLimits = defaultLimits(),
): WebhookLimits {
  const out = { ...base };
  for (const [key, name] of Object.entries(LIMIT_ENV) as Array<[keyof WebhookLimits, string]>) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (!/^\d+$/.test(raw.trim()) || Number(raw) <= 0) {
      throw new Error(`${name}=${JSON.stringify(raw)}: expected a positive integer`);
    }
    out[key] = Number(raw);
  }
  // Node requires the header deadline to fit inside the request deadline.
  out.headersTimeoutMs = Math.min(out.headersTimeoutMs, out.requestTimeoutMs);
  return out;
}
