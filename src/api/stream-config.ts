// The event stream's settings. Upstream keeps them as YAML text in the EventBus
// (`spec.jetstream.streamConfig`); sluice reads the same keys, accepting upstream's numeric enum
// values and human sizes/durations. Unset keys take sluice's defaults, which differ from
// upstream in one deliberate way: a full stream rejects new events (backpressure) instead of
// dropping the oldest.
import { parse } from 'yaml';
import { z } from 'zod';
import { GO_DURATION } from './kit.ts';
import { formatPath } from './validate.ts';

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "1GB", "512Mi", "1048576" or a number → bytes; -1 means unlimited. */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= -1 ? v : undefined;
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtKMGT]?)(i?[bB]?)\s*$/.exec(v);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}

const DUR_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go duration ("72h", "1m30s") → milliseconds. */
export function parseDurationMs(v: string): number | undefined {
  if (!GO_DURATION.test(v)) return undefined;
  let total = 0;
  for (const m of v.matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g))
    total += Number(m[1]) * DUR_UNITS[m[2]!]!;
  return total;
}

const size = (what: string) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = parseSize(v);
    if (n === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `${what} must be a byte size such as "1GB", or -1 for unlimited`,
      });
      return z.NEVER;
    }
    return n;
  });

const dur = (what: string) =>
  z.union([z.number().int().min(0), z.string()]).transform((v, ctx) => {
    // A bare number is upstream's nanoseconds.
    const ms = typeof v === 'number' ? v / 1e6 : parseDurationMs(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `${what} must be a duration such as "72h" or "2m"` });
      return z.NEVER;
    }
    return ms;
  });

export const StreamSettings = z.strictObject({
  maxMsgs: z.number().int().min(-1).default(1_000_000).describe('Most events kept; -1 for no limit.'),
  maxBytes: size('maxBytes')
    .default(-1)
    .describe('Most bytes kept; -1 for no limit (the store limit applies).'),
  maxAge: dur('maxAge')
    .default(72 * 3_600_000)
    .describe('How long events are kept (milliseconds once parsed).'),
  maxMsgSize: size('maxMsgSize').default(-1).describe('Largest event accepted; -1 for the server maximum.'),
  replicas: z
    .number()
    .int()
    .min(1)
    .max(5)
    .optional()
    .describe('Stream replicas; defaults to min(3, bus replicas), 1 for an existing server.'),
  duplicates: dur('duplicates')
    .default(120_000)
    .describe('Window in which a repeated event id is dropped (milliseconds once parsed).'),
  retention: z
    .union([z.enum(['limits', 'interest', 'workqueue']), z.literal(0), z.literal(1), z.literal(2)])
    .transform((v) => (typeof v === 'number' ? (['limits', 'interest', 'workqueue'] as const)[v] : v))
    .default('limits')
    .describe('Retention: limits (default), interest or workqueue (upstream 0, 1, 2).'),
  discard: z
    .union([z.enum(['old', 'new']), z.literal(0), z.literal(1)])
    .transform((v) => (typeof v === 'number' ? (['old', 'new'] as const)[v] : v))
    .default('new')
    .describe('What happens when full: new (reject, the sluice default) or old (drop oldest; upstream 0).'),
});
export type StreamSettings = z.output<typeof StreamSettings>;

export type StreamConfigResult = { ok: true; settings: StreamSettings } | { ok: false; errors: string[] };

/** Parses upstream's streamConfig YAML text (empty → all defaults). */
export function parseStreamConfig(text: string | undefined): StreamConfigResult {
  let doc: unknown = {};
  if (text?.trim()) {
    try {
      doc = parse(text) ?? {};
    } catch (err) {
      return {
        ok: false,
        errors: [`streamConfig is not valid YAML: ${(err as Error).message.split('\n')[0]}`],
      };
    }
  }
  if (typeof doc !== 'object' || Array.isArray(doc))
    return { ok: false, errors: ['streamConfig must be a YAML mapping'] };
  const r = StreamSettings.safeParse(doc);
  if (r.success) return { ok: true, settings: r.data };
  return {
    ok: false,
    errors: r.error.issues.map((i) =>
      i.code === 'unrecognized_keys'
        ? `streamConfig: unknown key(s) ${i.keys.join(', ')}`
        : `streamConfig.${formatPath(i.path)}: ${i.message}`,
    ),
  };
}
