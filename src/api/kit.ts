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
import { z } from 'zod';

/** A strict object with a description. */
export function obj<T extends z.ZodRawShape>(description: string, shape: T) {
  return z.strictObject(shape).describe(description);
}

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

/** Go duration syntax, as upstream uses it: "10s", "1m30s", "250ms", "1h". */
export const GO_DURATION = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;
export const durationString = () =>
  z.string().regex(GO_DURATION, { message: 'must be a duration such as "30s", "5m" or "1h30m"' });
/** An optional duration string field. */
export const duration = (description: string) => durationString().optional().describe(description);

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

/** CEL form of exactlyOne. */
export function exactlyOneCel(keys: readonly string[], what: string): CelRule {
  return {
    rule: `[${keys.map((k) => `has(self.${k})`).join(', ')}].filter(x, x).size() == 1`,
    message: `exactly one ${what} must be set (one of: ${keys.join(', ')})`,
  };
}
