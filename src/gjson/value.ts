// What a gjson lookup returns: a JSON value (string, number, boolean, null, array, plain object)
// or MISSING when the path leads nowhere (gjson's "does not exist", which null is not).

/** Returned by a lookup when the path leads nowhere. */
export const MISSING: unique symbol = Symbol('missing');
/** A JSON value, or MISSING. */
export type Lookup = unknown;

export type JsonObject = Record<string, unknown>;

/** A plain JSON object (not an array, not null). */
export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An object or an array: something a path can go into. */
export function isContainer(v: unknown): v is JsonObject | unknown[] {
  return typeof v === 'object' && v !== null;
}
