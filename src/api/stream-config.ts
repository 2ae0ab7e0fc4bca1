// The event stream's settings. Upstream keeps them as YAML text in the EventBus
// (`spec.jetstream.streamConfig`, `spec.jetstreamExotic.streamConfig`) and reads them with a
// case-insensitive config loader; sluice reads the same keys the same way, plus maxMsgSize,
// and accepts upstream's numeric enum values, bare numbers (nanoseconds for durations, bytes for
// sizes) and human units ("72h", "1GB", "512Mi").
//
// Unset keys take sluice's defaults. Two differ from upstream on purpose:
// - retention is "interest": an event stays until every Sensor consuming it has acknowledged it,
//   so maxMsgs/maxBytes bound the backlog not yet consumed (not history), and a bus whose
//   Sensors keep up never refuses events;
// - when that backlog is full, new events are refused (the publisher gets StreamFull and a
//   webhook answers 503) instead of the oldest unconsumed events being dropped.
import { parse } from 'yaml';
import { z } from 'zod';
import { formatPath } from './format.ts';
import { GO_DURATION } from './kit.ts';

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "1GB", "512Mi", "1048576" or a number → bytes (binary multiples); -1 stays -1. */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= -1 ? v : undefined;
  if (v.trim() === '-1') return -1;
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtKMGT]?)(i?[bB]?)\s*$/.exec(v);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}

const DUR_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
/** Go's longest duration (2^63-1 ns) in ms: longer text is an "invalid duration" in Go. */
const MAX_DURATION_MS = 9_223_372_036_854.775;

/**
 * A Go duration ("72h", "1m30s", ".5s", "+1s", "0") → milliseconds; undefined when Go's
 * time.ParseDuration would refuse it, or for a negative duration (see GO_DURATION).
 */
export function parseDurationMs(v: string): number | undefined {
  const s = v.trim();
  if (!GO_DURATION.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)/g))
    total += Number(m[1]) * DUR_UNITS[m[2]!]!;
  return total > MAX_DURATION_MS ? undefined : total;
}

/** A count or byte limit: a positive integer, or -1 for none. 0 is refused as ambiguous. */
const limit = (what: string, parseFn: (v: string | number) => number | undefined, example: string) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = parseFn(v);
    if (n === undefined || n === 0) {
      ctx.addIssue({ code: 'custom', message: `${what} must be ${example}, or -1 for no limit` });
      return z.NEVER;
    }
    return n;
  });

const count = (v: string | number): number | undefined => {
  const n = typeof v === 'number' ? v : /^\s*-?[0-9]+\s*$/.test(v) ? Number(v) : Number.NaN;
  return Number.isSafeInteger(n) && n >= -1 ? n : undefined;
};

const duration = (what: string, allowZero: boolean) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    // A bare number is nanoseconds, as upstream's loader reads it.
    const ms =
      typeof v === 'number' ? (Number.isInteger(v) && v >= 0 ? v / 1e6 : undefined) : parseDurationMs(v);
    if (ms === undefined || (!allowZero && ms === 0)) {
      ctx.addIssue({
        code: 'custom',
        message: `${what} must be a duration such as "72h" or "2m"${allowZero ? ' (0 for no limit)' : ''}`,
      });
      return z.NEVER;
    }
    return ms;
  });

const MAX_INT32 = 2 ** 31 - 1;

export const DEFAULT_STREAM_SETTINGS = {
  maxMsgs: 1_000_000,
  maxBytes: -1,
  maxAge: 72 * 3_600_000,
  maxMsgSize: -1,
  duplicates: 120_000,
  retention: 'interest',
  discard: 'new',
  maxMsgsPerSubject: -1,
  dlqMaxAge: 14 * 24 * 3_600_000,
} as const;

export const StreamSettings = z.strictObject({
  maxMsgs: limit('maxMsgs', count, 'a whole number of events')
    .default(DEFAULT_STREAM_SETTINGS.maxMsgs)
    .describe(
      'Most events the stream holds at once (default 1000000; -1 for no count limit). With the ' +
        'default interest retention this bounds the backlog not yet consumed by the Sensors that ' +
        'exist. What happens when it is reached is set by `discard`.',
    ),
  maxBytes: limit('maxBytes', parseSize, 'a byte size such as "1GB" or 1073741824')
    .default(DEFAULT_STREAM_SETTINGS.maxBytes)
    .describe(
      'Most bytes the stream holds at once, e.g. "10GB". Default -1: no limit of its own; on a ' +
        "managed bus that means half of each server's JetStream store, so the dead letters and " +
        'every KV bucket keep the room reserved for them.',
    ),
  maxAge: duration('maxAge', true)
    .default(DEFAULT_STREAM_SETTINGS.maxAge)
    .describe(
      'How long an event is kept after it was accepted, e.g. "72h" (the default); 0 keeps events ' +
        'until another limit removes them. A safety against a Sensor that never comes back: an ' +
        'event still unconsumed at this age is dropped, logged and counted ' +
        '(sluice_bus_events_dropped_total). Held as milliseconds once parsed.',
    ),
  maxMsgSize: limit('maxMsgSize', parseSize, 'a byte size such as "1MB"')
    .refine((n) => n <= MAX_INT32, { message: 'maxMsgSize must be below 2GiB' })
    .default(DEFAULT_STREAM_SETTINGS.maxMsgSize)
    .describe(
      "Largest single event the stream accepts (default -1: the NATS server's max_payload, 1MB " +
        'unless configured). A larger event is refused with MessageTooLarge.',
    ),
  replicas: z
    .number()
    .int()
    .min(1)
    .max(5)
    .optional()
    .describe(
      'Copies of each event kept on different servers of a NATS cluster (1, 3 or 5). Unset: the ' +
        "controller picks one that the bus's servers can satisfy (1 for a single server).",
    ),
  duplicates: duration('duplicates', false)
    .default(DEFAULT_STREAM_SETTINGS.duplicates)
    .describe(
      'How long the server remembers event ids: an event published again with the same id within ' +
        'this window is stored once (default "2m"; capped at maxAge). Held as milliseconds once parsed.',
    ),
  retention: z
    .union([z.enum(['limits', 'interest', 'workqueue']), z.literal(0), z.literal(1), z.literal(2)])
    .transform((v) => (typeof v === 'number' ? (['limits', 'interest', 'workqueue'] as const)[v] : v))
    .default(DEFAULT_STREAM_SETTINGS.retention)
    .describe(
      'When stored events are removed: "interest" (default; once every Sensor consuming them has ' +
        'acknowledged them, so the limits above bound the unconsumed backlog; an event no Sensor ' +
        'depends on when it arrives is acknowledged and not kept), "limits" (kept as history until ' +
        'a limit removes them, consumed or not: with discard new a full history refuses new events) ' +
        'or "workqueue". Upstream numbers 0, 1, 2 are accepted. Switching to or from workqueue needs ' +
        'the stream to be recreated; limits and interest switch in place.',
    ),
  discard: z
    .union([z.enum(['old', 'new']), z.literal(0), z.literal(1)])
    .transform((v) => (typeof v === 'number' ? (['old', 'new'] as const)[v] : v))
    .default(DEFAULT_STREAM_SETTINGS.discard)
    .describe(
      'What a full stream does: "new" (default) refuses further events, so sources see an error ' +
        'and nothing accepted is lost; "old" drops the oldest stored events to make room ' +
        "(upstream's default). Upstream numbers 0 (old) and 1 (new) are accepted.",
    ),
  maxMsgsPerSubject: limit('maxMsgsPerSubject', count, 'a whole number of events')
    .default(DEFAULT_STREAM_SETTINGS.maxMsgsPerSubject)
    .describe(
      'sluice extension: most unconsumed events per event (one EventSource event name, i.e. one ' +
        'subject). When one event reaches it, only that event is refused (StreamFull, a webhook ' +
        'answers 503) while every other event keeps being accepted: a source whose Sensor is down ' +
        'cannot take the whole maxMsgs budget. Needs discard: new. Default -1: off.',
    ),
  dlqMaxBytes: limit('dlqMaxBytes', parseSize, 'a byte size such as "1GB"')
    .optional()
    .describe(
      "sluice extension: most bytes of dead letters kept. Default: a tenth of each server's " +
        'JetStream store on a managed bus, else 64MB (the server reserves it). A full dead-letter stream refuses new dead ' +
        'letters (the Sensor keeps the event and retries) rather than dropping old ones.',
    ),
  dlqMaxAge: duration('dlqMaxAge', true)
    .default(DEFAULT_STREAM_SETTINGS.dlqMaxAge)
    .describe(
      'sluice extension: how long a dead letter is kept, e.g. "720h" (default "336h", 14 days); ' +
        '0 keeps dead letters until purged or replayed. Expired dead letters are logged and ' +
        'counted (sluice_bus_events_dropped_total, reason dlqMaxAge). Held as milliseconds.',
    ),
  kvMaxBytes: limit('kvMaxBytes', parseSize, 'a byte size such as "16MB"')
    .optional()
    .describe(
      'sluice extension: most bytes of each KV bucket (a Sensor processed set and partial ' +
        'matches, a calendar last fire). Default 16MB. The server reserves it for each bucket, so ' +
        "one role filling its bucket cannot take another's room. A full processed set forgets " +
        'its oldest keys first; a full partial-match bucket refuses new partial matches (the ' +
        'event is retried, then dead-lettered).',
    ),
});
export type StreamSettings = z.output<typeof StreamSettings>;

/**
 * Why these settings can lose accepted events or refuse them without a real backlog, as
 * sentences for `sluice lint` and the EventBus status; [] when they cannot.
 */
export function streamSettingWarnings(s: StreamSettings): { lossy: string[]; history: string[] } {
  const lossy: string[] = [];
  const history: string[] = [];
  if (s.discard === 'old')
    lossy.push(
      'discard: old drops the oldest unconsumed events when the stream is full (accepted events are lost; each drop is logged and counted)',
    );
  if (s.retention === 'limits')
    history.push(
      'retention: limits keeps consumed events as history, so maxMsgs/maxBytes fill up even when every Sensor keeps up' +
        (s.discard === 'new' ? ' and the bus then refuses new events until maxAge removes old ones' : ''),
    );
  return { lossy, history };
}

const KEYS = Object.keys(StreamSettings.shape) as Array<keyof StreamSettings>;
const BY_LOWER = new Map(KEYS.map((k) => [k.toLowerCase(), k]));

export type StreamConfigResult = { ok: true; settings: StreamSettings } | { ok: false; errors: string[] };

/**
 * Parses upstream's streamConfig YAML text (absent or empty → all defaults). Keys are matched
 * without regard to case, as upstream does. Errors name the key at fault.
 */
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
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return {
      ok: false,
      errors: ['streamConfig must be a YAML mapping of settings such as "maxMsgs: 100000"'],
    };
  const errors: string[] = [];
  const normalised: Record<string, unknown> = {};
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(doc)) {
    const canonical = BY_LOWER.get(key.toLowerCase());
    if (!canonical) {
      unknown.push(key);
      continue;
    }
    if (canonical in normalised) {
      errors.push(`streamConfig.${canonical}: given more than once (keys are not case-sensitive)`);
      continue;
    }
    // An explicit null means "not set", like an absent key.
    if (value !== null) normalised[canonical] = value;
  }
  if (unknown.length)
    errors.push(`streamConfig: unknown key(s) ${unknown.join(', ')} (known: ${KEYS.join(', ')})`);
  const r = StreamSettings.safeParse(normalised);
  if (!r.success) {
    for (const i of r.error.issues) {
      const key = formatPath(i.path);
      const message = i.code === 'custom' ? i.message : issueMessage(key);
      errors.push(`streamConfig.${key}: ${message}`);
    }
  }
  if (r.success && r.data.maxMsgsPerSubject > 0 && r.data.discard === 'old')
    errors.push(
      'streamConfig.maxMsgsPerSubject: needs discard: new (with discard: old it would drop the oldest events of a subject without a trace)',
    );
  if (errors.length || !r.success) return { ok: false, errors };
  return { ok: true, settings: r.data };
}

function issueMessage(key: string): string {
  switch (key) {
    case 'retention':
      return 'retention must be limits, interest or workqueue (or 0, 1, 2)';
    case 'discard':
      return 'discard must be new or old (or 1, 0)';
    case 'replicas':
      return 'replicas must be a whole number from 1 to 5';
    default:
      return `${key} has the wrong type (a number or a string such as "1GB" or "72h")`;
  }
}

/**
 * The event stream's duplicates window in ms: `duplicates`, capped at `maxAge` (JetStream refuses
 * a window longer than the age limit). An event id repeated within it is stored once.
 */
export function duplicatesWindowMs(s: Pick<StreamSettings, 'duplicates' | 'maxAge'>): number {
  return s.maxAge > 0 ? Math.min(s.duplicates, s.maxAge) : s.duplicates;
}

/** The duplicates window of the stream a `streamConfig` text makes (the default when invalid). */
export function streamConfigDuplicatesMs(text: string | undefined): number {
  const parsed = parseStreamConfig(text);
  return duplicatesWindowMs(parsed.ok ? parsed.settings : DEFAULT_STREAM_SETTINGS);
}
