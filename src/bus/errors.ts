// Errors callers can act on. `code` is stable; `retryable` says whether trying again later can
// succeed (a webhook answers 503 + Retry-After for those, 413 for MessageTooLarge).
export type BusErrorCode = 'StreamFull' | 'MessageTooLarge' | 'BusUnavailable' | 'Timeout' | 'Invalid';

export class BusError extends Error {
  readonly code: BusErrorCode;
  readonly retryable: boolean;

  constructor(code: BusErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BusError';
    this.code = code;
    this.retryable = code === 'StreamFull' || code === 'BusUnavailable' || code === 'Timeout';
  }
}

interface ErrLike {
  name?: string;
  message?: string;
  code?: unknown;
  apiError?: () => { err_code?: number; code?: number; description?: string };
}

/** Maps an error from the NATS/JetStream client to a BusError. */
export function toBusError(err: unknown): BusError {
  if (err instanceof BusError) return err;
  const e = (err ?? {}) as ErrLike;
  const msg = e.message ?? String(err);
  const api = typeof e.apiError === 'function' ? e.apiError() : undefined;
  const errCode = api?.err_code;
  // JetStream API error codes (nats-server): 10077 maximum messages exceeded, 10078 maximum bytes
  // exceeded, 10054 message size exceeds maximum allowed, 10047 insufficient resources (store full).
  if (
    errCode === 10077 ||
    errCode === 10078 ||
    errCode === 10047 ||
    /maximum (messages|bytes) exceeded|insufficient (storage )?resources/i.test(msg)
  ) {
    return new BusError('StreamFull', `the event stream is full: ${msg}`, { cause: err });
  }
  if (errCode === 10054 || /message size exceeds|max(imum)? payload/i.test(msg)) {
    return new BusError('MessageTooLarge', `the event is larger than the bus accepts: ${msg}`, {
      cause: err,
    });
  }
  if (e.name === 'TimeoutError' || /timeout|timed out/i.test(msg)) {
    return new BusError('Timeout', `the bus did not confirm in time: ${msg}`, { cause: err });
  }
  if (
    /no responders|503|closed|disconnect|connection|stream not found|not enabled|draining/i.test(msg) ||
    errCode === 10059
  ) {
    return new BusError('BusUnavailable', `the bus is unavailable: ${msg}`, { cause: err });
  }
  return new BusError('BusUnavailable', msg, { cause: err });
}
