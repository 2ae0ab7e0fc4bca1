// Pieces shared by many event source types: the per-event filter, metadata, JSON body flag,
// reconnect backoff, TLS, the embedded HTTP endpoint, file-watch settings, and `crossRules`, which
// writes a cross-field rule once and attaches it both as a zod check (for `sluice lint`) and as a
// CEL rule (for the API server), so the two can never drift apart.
import { z } from 'zod';
import { Backoff, ProviderWebhookContext, TLSConfig } from '../common.ts';
import { bool, type CelRule, celRules, obj, str, strMap } from '../kit.ts';

export const EventSourceFilter = obj('Decides per event whether it is published to the bus.', {
  expression: str(
    'Boolean expression evaluated against each event; events for which it is false are dropped. ' +
      'Example: `body.action == "opened"`.',
  ),
});

export const filter = () =>
  EventSourceFilter.optional().describe('Drops events that do not match before they reach the bus.');
export const metadata = () => strMap('Fixed key/values added to every event from this source.');
export const jsonBody = () =>
  bool(
    'Treat message bodies as JSON, so Sensors can filter on fields inside them. Otherwise they are bytes.',
  );
export const connectionBackoff = () =>
  Backoff.optional().describe('How connecting is retried when the broker cannot be reached.');
export const tls = () => TLSConfig.optional().describe('TLS settings for the connection.');
/**
 * The HTTP endpoint of a provider's webhook-style source. Upstream fails such a source without
 * one; its method is optional (upstream checks only endpoint and port).
 */
export const webhookField = (sender: string) =>
  ProviderWebhookContext.describe(`HTTP endpoint on which ${sender} deliveries are received.`);

// ------------------------------------------------------------------------- cross-field rules --

/** One cross-field rule, written for zod and CEL side by side. */
export interface CrossRule<V> {
  /** CEL over `self`, the object the rule is attached to. */
  cel: string;
  /** The same rule in TypeScript. */
  holds: (value: V) => boolean;
  message: string;
  /** The field to blame, when one is clearly at fault; otherwise the object itself. */
  field?: string;
  reason?: CelRule['reason'];
}

/** Attaches rules to an object schema: a zod check each, and the CEL rules for the CRD. */
export function crossRules<T extends z.ZodType>(schema: T, rules: ReadonlyArray<CrossRule<z.output<T>>>): T {
  const checked = schema.superRefine((value, ctx) => {
    for (const r of rules) {
      if (!r.holds(value))
        ctx.addIssue({ code: 'custom', message: r.message, path: r.field ? [r.field] : [] });
    }
  }) as T;
  return celRules(
    checked,
    rules.map((r) => ({
      rule: r.cel,
      message: r.message,
      ...(r.field ? { fieldPath: `.${r.field}` } : {}),
      ...(r.reason ? { reason: r.reason } : {}),
    })),
  );
}

type Fields = Record<string, unknown>;

/** A field counts as set when present; a list or map also has to be non-empty. */
export function isSet(value: Fields, key: string): boolean {
  const v = value[key];
  if (v === undefined || v === null) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** CEL form of isSet for a scalar or object field. */
export const celHas = (key: string) => `has(self.${key})`;
/** CEL form of isSet for a list or map field. */
export const celNonEmpty = (key: string) => `(has(self.${key}) && self.${key}.size() > 0)`;

// ------------------------------------------------------------------------------ file watching --

/** File operations as upstream names them; several may be joined with "|", e.g. "CREATE|WRITE". */
const FS_OP = '(CREATE|WRITE|REMOVE|RENAME|CHMOD)';
export const FS_EVENT_TYPE = new RegExp(`^${FS_OP}(\\|${FS_OP})*$`);
export const fsEventType = (description: string) =>
  z
    .string()
    .regex(FS_EVENT_TYPE, {
      message: 'must be CREATE, WRITE, REMOVE, RENAME or CHMOD (several may be joined with "|")',
    })
    .describe(description);

export const absoluteDirectory = (description: string) =>
  z.string().regex(/^\//, { message: 'must be an absolute path, e.g. "/data/"' }).describe(description);

/** Watched-path rules shared by `file`, `sftp` and `hdfs` (which inlines the fields). */
export const watchPathRules = <V extends Fields>(): CrossRule<V>[] => [
  {
    cel: `${celHas('path')} != ${celHas('pathRegexp')}`,
    holds: (v) => (v.path !== undefined) !== (v.pathRegexp !== undefined),
    message: 'set exactly one of path and pathRegexp',
    field: 'path',
  },
];

export const watchPathShape = {
  directory: absoluteDirectory('Absolute path of the directory to watch, e.g. "/data/".'),
  path: str('Name of the one file to watch, relative to the directory. Use this or pathRegexp.'),
  pathRegexp: str(
    'Regular expression that file paths relative to the directory must match. Use this or path.',
  ),
};

export const WatchPathConfig = crossRules(
  obj(
    'Which files in a directory are watched: one file by name, or all that match a pattern.',
    watchPathShape,
  ),
  watchPathRules(),
);
