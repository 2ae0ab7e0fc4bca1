// Total conversions of per-message fields: a source's message with a field out of range (a
// timestamp of -9e15 ms, a non-numeric attribute) must map to a fallback, never throw in the
// middle of a consumer loop (where one bad record would stop every later one).

/**
 * The Date `ms` milliseconds after the epoch (number, numeric string or bigint), or undefined
 * when it is not a time JavaScript can represent (NaN, beyond ±8.64e15 ms, not numeric).
 * Never throws.
 */
export function dateFromMs(ms: unknown): Date | undefined {
  let n = Number.NaN;
  if (typeof ms === 'number') n = ms;
  else if (typeof ms === 'bigint') n = Number(ms);
  else if (typeof ms === 'string' && ms.trim() !== '') n = Number(ms);
  if (!Number.isFinite(n)) return undefined;
  const d = new Date(n);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** `d` when it is a valid Date, else undefined (never throws). */
export function validDate(d: unknown): Date | undefined {
  return d instanceof Date && !Number.isNaN(d.getTime()) ? d : undefined;
}

/**
 * Milliseconds from a nanosecond count given as a decimal string, number or bigint (NSQ's
 * timestamps), or undefined when it is not one. Never throws.
 */
export function msFromNanos(ns: unknown): number | undefined {
  try {
    if (typeof ns === 'bigint') return Number(ns / 1_000_000n);
    if (typeof ns === 'string' && /^-?\d{1,30}$/.test(ns.trim()))
      return Number(BigInt(ns.trim()) / 1_000_000n);
    if (typeof ns === 'number' && Number.isFinite(ns)) return Math.trunc(ns / 1_000_000);
    if (ns && typeof ns === 'object' && typeof (ns as { toString(): string }).toString === 'function')
      return msFromNanos(String(ns));
  } catch {
    // not a number: the caller falls back
  }
  return undefined;
}

/**
 * JSON-safe copy of message attributes whose binary values (Uint8Array/Buffer) become base64
 * strings, as upstream's Go encoding writes []byte, instead of `{"0":104,...}`.
 */
export function base64Binary(value: unknown, depth = 0): unknown {
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => base64Binary(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = base64Binary(v, depth + 1);
  return out;
}
