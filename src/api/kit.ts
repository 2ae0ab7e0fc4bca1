// Building blocks for the API schemas. Every schema in src/api is written with these so the
// conventions hold everywhere:
//
// - Objects are strict: an unknown field is an error (that is how typos are caught), both in
//   `sluice lint` and, through the generated CRDs, in the API server.
// - Every field carries a description in our own words; it becomes the CRD description that
//   `kubectl explain` prints.
// - Defaults live in the schema (`.default(...)`), so parsed objects already have them; the CRD
//   generator leaves them out of the CRD so stored objects stay exactly as the user wrote them.
// - Arbitrary JSON (Kubernetes pod-spec pieces, free-form payloads) is `opaque()`, which the CRD
//   marks `x-kubernetes-preserve-unknown-fields`.
// - Cross-field rules that the API server must also enforce are attached with `celRules()` and
//   mirrored in zod with `.superRefine()` so lint and the API server agree.
// - An optional field may be given as YAML null (or an empty Helm value), which upstream's Go
//   types read as "not set": the CRD marks it `nullable` and parsing drops it. The keys that
//   choose a kind (a trigger template's type) read null as the empty object instead, so
//   `log: ~` is a log trigger with its defaults (see `present`).
import { z } from 'zod';

interface DefLike {
  type: string;
  shape?: Record<string, z.ZodType>;
}
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: DefLike } })._zod.def;

const wrapped = new WeakSet<z.ZodType>();

/** An optional field that also takes null: null → not set, or with `empty`, → the parse of {}. */
function acceptNull(field: z.ZodType, empty: boolean): z.ZodType {
  if (!(field instanceof z.ZodOptional) || wrapped.has(field)) return field;
  const inner = field.unwrap() as z.ZodType;
  // The API server refuses null for an enum even when nullable, and checking the values with
  // CEL instead costs too much inside lists: enum fields keep refusing null, here and there.
  if (defOf(inner).type === 'enum') return field;
  let out: z.ZodType = inner
    .nullable()
    .transform((v, ctx) => {
      if (v !== null || !empty) return v ?? undefined;
      // {} still goes through the object's own checks (e.g. http: ~ still needs a url).
      const r = inner.safeParse({});
      if (r.success) return r.data;
      for (const issue of r.error.issues)
        ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
      return z.NEVER;
    })
    .optional();
  const meta = z.globalRegistry.get(field);
  if (meta) out = out.meta(meta);
  wrapped.add(out);
  return out;
}

/**
 * The shape with every optional field taking null as "not set" (see the header). The field
 * types are unchanged for TypeScript: parsing returns what it returned before.
 */
export function nullTolerant<T extends z.ZodRawShape>(shape: T): T {
  const out: Record<string, z.ZodType> = {};
  for (const [k, v] of Object.entries(shape)) out[k] = acceptNull(v as z.ZodType, false);
  return out as unknown as T;
}

/** An optional object field whose presence matters: null reads as `{}` (e.g. `log: ~`). */
export function present<T extends z.ZodType>(field: T): T {
  return acceptNull(field, true) as T;
}

/** Removes keys whose value is undefined (a null that was dropped), as if never written. */
function dropUndefined<V>(v: V): V {
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return v;
}

/** A strict object with a description; optional fields take null (see nullTolerant). */
export function obj<T extends z.ZodRawShape>(description: string, shape: T) {
  return z.strictObject(nullTolerant(shape)).overwrite(dropUndefined).describe(description);
}

/** A zod refinement from a check that returns why a value is wrong (or undefined). */
export const refineWith =
  <V>(check: (v: V) => string | undefined) =>
  (v: V, ctx: z.RefinementCtx) => {
    const message = check(v);
    if (message) ctx.addIssue({ code: 'custom', message });
  };

/** An optional string field. */
export const str = (description: string) => z.string().optional().describe(description);
/** An optional boolean field. */
export const bool = (description: string) => z.boolean().optional().describe(description);
/** An optional integer field (any sign unless constrained). */
export const int = (description: string) => z.number().int().optional().describe(description);
/** An optional non-negative integer field. */
export const count = (description: string) => z.number().int().min(0).optional().describe(description);
/** An optional number field (upstream `Amount`: a JSON number, e.g. a backoff factor). */
export const amount = (description: string) => z.number().optional().describe(description);
/** An optional list of strings. */
export const strList = (description: string) => z.array(z.string()).optional().describe(description);
/** An optional string-to-string map (labels, headers, metadata). */
export const strMap = (description: string) =>
  z.record(z.string(), z.string()).optional().describe(description);

/**
 * Go's time.ParseDuration syntax, as upstream reads durations: "10s", "1m30s", "250ms", ".5s",
 * "1.5h", "+1s", "0"; units ns, us, µs (U+00B5), μs (U+03BC), ms, s, m, h. A negative duration
 * ("-1s"), which Go parses, is refused: no sluice field means anything by it.
 */
export const GO_DURATION = /^\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$/;
export const durationString = () =>
  z.string().regex(GO_DURATION, {
    message: 'must be a duration such as "30s", "5m", "1h30m" or ".5s" (Go syntax, not negative)',
  });
/** An optional duration string field. */
export const duration = (description: string) => durationString().optional().describe(description);

const UNIT = '(ns|us|µs|μs|ms|s|m|h)';
/** One component of a Go duration, and one with a digit that is not 0. */
const PART = `([0-9]+(\\.[0-9]*)?|\\.[0-9]+)${UNIT}`;
const NONZERO_PART = `([0-9]*[1-9][0-9]*(\\.[0-9]*)?|[0-9]*\\.[0-9]*[1-9][0-9]*)${UNIT}`;
/** A Go duration greater than zero (a pattern the CRD can carry: no zero interval reaches a pod). */
export const POSITIVE_DURATION = new RegExp(`^\\+?(${PART})*${NONZERO_PART}(${PART})*$`);
/** An optional duration that must be greater than zero (intervals: zero would fire or poll without pause). */
export const positiveDuration = (description: string) =>
  z
    .string()
    .regex(POSITIVE_DURATION, {
      message: 'must be a positive duration such as "10s", "1m" or ".5s" (zero would repeat without pause)',
    })
    .optional()
    .describe(description);

/**
 * Upstream `Int64OrString`: an integer (nanoseconds for durations) or a string (e.g. "3s").
 * The CRD marks it `x-kubernetes-int-or-string`.
 */
export const intOrString = () =>
  z.union([z.number().int(), z.string()]).meta({ 'x-kubernetes-int-or-string': true });

/** Like intOrString, but the string form must be a Go duration. */
export const intOrDuration = (description: string) =>
  z
    .union([z.number().int().min(0), durationString()])
    .meta({
      'x-kubernetes-int-or-string': true,
      // Bounds the CEL cost estimate (the API server rejects rules over unbounded strings).
      maxLength: 64,
      'x-kubernetes-validations': [
        {
          rule: `type(self) == int || self.matches('${GO_DURATION.source.replaceAll('\\', '\\\\')}')`,
          message: 'must be a number of nanoseconds or a duration such as "30s", "5m" or "1h30m"',
        },
      ],
    })
    .optional()
    .describe(description);

/** Free-form JSON object kept as written (pod-spec pieces, resources, payloads). */
export const opaque = (description: string) =>
  z
    .record(z.string(), z.unknown())
    .meta({ 'x-kubernetes-preserve-unknown-fields': true, type: 'object' })
    .optional()
    .describe(description);

/** Any JSON value kept as written. */
export const anyJson = (description: string) =>
  z.unknown().meta({ 'x-kubernetes-preserve-unknown-fields': true }).optional().describe(description);

/** A map from event name to one source's config, as in EventSource spec (e.g. `webhook:`). */
export const namedMap = <T extends z.ZodType>(description: string, value: T) =>
  z.record(z.string(), value).meta({ maxProperties: MAX_NAMED }).optional().describe(description);

/** Upper bound on entries per source-type map and on Sensor dependencies/triggers (keeps CEL cost bounded). */
export const MAX_NAMED = 100;

/** A CEL rule for the CRD (`x-kubernetes-validations`). */
export interface CelRule {
  rule: string;
  message: string;
  /** JSONPath of the field to blame, relative to the object the rule is on. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** Attaches CEL rules that the generated CRD carries; mirror them in zod with superRefine. */
export function celRules<T extends z.ZodType>(schema: T, rules: CelRule[]): T {
  return schema.meta({ 'x-kubernetes-validations': rules }) as T;
}

/** Exactly one of `keys` must be set (checked in zod; pair with `exactlyOneCel` for the CRD). */
export function exactlyOne(keys: readonly string[], what: string) {
  return (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const set = keys.filter((k) => value[k] !== undefined && value[k] !== null);
    if (set.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          set.length === 0
            ? `exactly one ${what} must be set (one of: ${keys.join(', ')})`
            : `exactly one ${what} must be set, found ${set.join(' and ')}`,
      });
    }
  };
}

/**
 * CEL half of exactlyOne: at most one. CEL's has() is false for a field given as null, so
 * `log: ~` (a log trigger with its defaults) would look like no trigger type at all; "none set"
 * is therefore left to lint and the controller, which see the null.
 */
export function exactlyOneCel(keys: readonly string[], what: string): CelRule {
  return {
    rule: `[${keys.map((k) => `has(self.${k})`).join(', ')}].filter(x, x).size() <= 1`,
    message: `exactly one ${what} must be set, found more than one (one of: ${keys.join(', ')})`,
  };
}
