// Errors a caller of the bus can act on. `code` is stable and safe to switch on; `retryable` says
// whether the same call can succeed later (a webhook turns those into 503 + Retry-After, and
// MessageTooLarge into 413). `serverCode` keeps JetStream's err_code when there was one.
export type BusErrorCode = 'StreamFull' | 'MessageTooLarge' | 'BusUnavailable' | 'Timeout' | 'Invalid';

const RETRYABLE: ReadonlySet<BusErrorCode> = new Set(['StreamFull', 'BusUnavailable', 'Timeout']);

export class BusError extends Error {
  readonly code: BusErrorCode;
  readonly retryable: boolean;
  readonly serverCode: number | undefined;

  constructor(code: BusErrorCode, message: string, options?: ErrorOptions & { serverCode?: number }) {
    super(message, options);
    this.name = 'BusError';
    this.code = code;
    this.retryable = RETRYABLE.has(code);
    this.serverCode = options?.serverCode;
  }
}

/**
 * JetStream API err_codes sluice reacts to, as observed from nats-server 2.12 (see
 * test/integration/bus/limits.test.ts, which triggers each one on a real server).
 */
export const ServerCode = {
  /** "maximum messages exceeded", "maximum bytes exceeded", "... per subject exceeded", or a store failure. */
  StoreFailed: 10077,
  /** "message size exceeds maximum allowed" (stream max_msg_size). */
  MessageTooLarge: 10054,
  /** "insufficient resources": the server's store is full. */
  InsufficientResources: 10023,
  /** "insufficient storage resources available": cannot reserve max_bytes. */
  StorageResourcesExceeded: 10047,
  StreamNotFound: 10059,
  ConsumerNotFound: 10014,
  /** Invalid stream config, including "can not change ..." on update. */
  StreamInvalidConfig: 10052,
  ReplicasNotSupported: 10074,
  SubjectsOverlap: 10065,
  WrongLastSequence: 10071,
  /**
   * "wrong last sequence" without the sequence: the same conflict as WrongLastSequence (nats.js
   * kv.create treats both alike, as StreamWrongLastSequenceUnknown).
   */
  WrongLastSequenceUnknown: 10164,
} as const;

interface ApiErrorLike {
  err_code?: number;
  code?: number;
  description?: string;
}

/** The JetStream err_code carried by an error from the client, if any. */
export function serverCode(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const apiError = (err as { apiError?: () => ApiErrorLike }).apiError;
  if (typeof apiError !== 'function') return undefined;
  try {
    return apiError.call(err).err_code;
  } catch {
    return undefined;
  }
}

/** True for "stream not found" / "consumer not found" answers. */
export function isNotFound(err: unknown): boolean {
  const c = serverCode(err);
  return c === ServerCode.StreamNotFound || c === ServerCode.ConsumerNotFound;
}

/**
 * True for "wrong last sequence" answers (with or without the sequence): a write expecting a key
 * absent (a KV create) or at a given revision (a KV update) met another value.
 */
export function isWrongLastSequence(err: unknown): boolean {
  const c = serverCode(err);
  return c === ServerCode.WrongLastSequence || c === ServerCode.WrongLastSequenceUnknown;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function causeChain(err: unknown): unknown[] {
  const out: unknown[] = [];
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    out.push(e);
    e = e instanceof Error ? e.cause : undefined;
  }
  return out;
}

const FULL = /maximum (messages|bytes|messages per subject) exceeded|insufficient (storage )?resources/i;

/**
 * Maps an error from the NATS/JetStream client to a BusError. Server answers are matched on
 * err_code first; client-side failures (payload over the server's max_payload, timeouts, no
 * responders, closed connection) on the client's error classes.
 */
export function toBusError(err: unknown, subject?: string): BusError {
  if (err instanceof BusError) return err;
  const where = subject ? ` (subject ${subject})` : '';
  const msg = messageOf(err);
  const code = serverCode(err);
  const opts = { cause: err, ...(code !== undefined ? { serverCode: code } : {}) };
  if (
    code === ServerCode.InsufficientResources ||
    code === ServerCode.StorageResourcesExceeded ||
    (code === ServerCode.StoreFailed && FULL.test(msg))
  ) {
    return new BusError(
      'StreamFull',
      `the event stream is full${where}: ${msg}; events are accepted again once consumers catch up or limits are raised`,
      opts,
    );
  }
  if (code === ServerCode.MessageTooLarge) {
    return new BusError(
      'MessageTooLarge',
      `the event is larger than the stream accepts${where}: ${msg}`,
      opts,
    );
  }
  if (code === ServerCode.StreamNotFound) {
    return new BusError('BusUnavailable', `no stream for this bus${where}: ${msg}`, opts);
  }
  if (code !== undefined) {
    // Another server-side refusal (a store failure, ...): the bus is not able to take it now.
    return new BusError('BusUnavailable', `the bus refused the event${where}: ${msg}`, opts);
  }
  const chain = causeChain(err);
  const names = chain.map((e) => (e instanceof Error ? e.name : ''));
  if (chain.some((e) => e instanceof Error && /max_payload/i.test(e.message))) {
    return new BusError(
      'MessageTooLarge',
      `the event is larger than the NATS server's max_payload${where}: ${msg}`,
      opts,
    );
  }
  if (names.includes('InvalidArgumentError')) {
    // The client refused the message itself (a header value with CR/LF, ...): the same input fails again.
    return new BusError('Invalid', `the event cannot be published${where}: ${msg}`, opts);
  }
  if (names.includes('TimeoutError')) {
    return new BusError('Timeout', `the bus did not confirm the event in time${where}`, opts);
  }
  if (
    names.some((n) =>
      ['ClosedConnectionError', 'DrainingConnectionError', 'ConnectionError', 'JetStreamNotEnabled'].includes(
        n,
      ),
    ) ||
    chain.some((e) => e instanceof Error && /no responders|connection (closed|draining)/i.test(e.message))
  ) {
    return new BusError('BusUnavailable', `the bus is unavailable${where}: ${msg}`, opts);
  }
  return new BusError('BusUnavailable', `publishing failed${where}: ${msg}`, opts);
}

/**
 * True when `err` says the bus cannot answer now (no responders, a timeout, the connection down,
 * a JetStream "temporarily unavailable" 503 while a stream has no leader or quorum), as opposed to
 * a refusal of this request. Such a failure is nobody's fault: the caller waits and tries again.
 */
export function isOutage(err: unknown): boolean {
  for (const e of causeChain(err)) {
    if (!(e instanceof Error)) continue;
    if (OUTAGE_NAMES.has(e.name)) return true;
    if (
      /no responders|timed? ?out|temporarily unavailable|connection (closed|draining|lost)/i.test(e.message)
    )
      return true;
    const api = (e as { apiError?: () => ApiErrorLike }).apiError;
    if (typeof api === 'function') {
      try {
        if (api.call(e).code === 503) return true;
      } catch {
        // not an API error after all
      }
    }
  }
  return false;
}

const OUTAGE_NAMES = new Set([
  'TimeoutError',
  'NoRespondersError',
  'ClosedConnectionError',
  'DrainingConnectionError',
  'ConnectionError',
]);
