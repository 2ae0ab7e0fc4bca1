// Partial matches of a multi-dependency trigger, as pure functions over the state kept in KV.
// Each event is used in at most one firing: the events of a firing move from `events` to
// `inflight` (keyed by idempotency key) in one compare-and-set before the trigger runs, and are
// removed after it settled. Recorded events are discarded when they are older than the trigger's
// last scheduled conditionsReset (so a reset that fell while the Sensor was down still applies)
// or were recorded under another spec (the trigger's conditions or a dependency's filters changed).
import { createHash } from 'node:crypto';
import { type ConditionNode, evaluateConditions } from '../api/conditions.ts';
import type { EventDependency, Trigger } from '../api/sensor.ts';
import type { CloudEvent } from '../eventsources/envelope.ts';

export interface PartialMatch {
  /** Latest event per dependency, not used by a firing yet. */
  events: Record<string, CloudEvent>;
  /** Firings claimed and not yet settled, by idempotency key. */
  inflight?: Record<string, Record<string, CloudEvent>>;
  /** specFingerprint() of the trigger when `events` were recorded. */
  fingerprint?: string;
}

export interface JoinTrigger {
  name: string;
  conditions: ConditionNode;
  dependencies: ReadonlySet<string>;
  fingerprint: string;
}

export type Firing = [key: string, events: Record<string, CloudEvent>];

export interface JoinResult {
  /** The state to write (compare-and-set); undefined when nothing changes. */
  next?: PartialMatch;
  /** Firings to run now: a new one, or the in-flight one this event already belongs to. */
  firings: Firing[];
  /** Recorded events dropped as stale (older than the last reset, or recorded under another spec). */
  discarded: number;
  /** The event itself is older than the last reset and was not recorded. */
  tooOld: boolean;
  /** Id of the recorded event of the same dependency this one replaced (latest wins, as upstream). */
  replaced?: string;
}

const eventMs = (e: CloudEvent): number => {
  const t = Date.parse(e.time);
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
};

/**
 * Adds `ev` (of dependency `dep`) to trigger `t`'s partial match `state`. `resetAt` is the time of
 * the trigger's last scheduled conditionsReset (ms), if it has any; `keyOf` gives a firing's
 * idempotency key.
 */
export function joinEvent(
  state: PartialMatch,
  t: JoinTrigger,
  dep: string,
  ev: CloudEvent,
  opts: { resetAt?: number; keyOf(fired: Record<string, CloudEvent>): string },
): JoinResult {
  const inflight = state.inflight ?? {};
  // A redelivery of an event already claimed by a firing: settle that firing (again).
  const mine = firingsOf(state, dep, ev);
  if (mine.length) return { firings: mine, discarded: 0, tooOld: false };
  const resetAt = opts.resetAt ?? Number.NEGATIVE_INFINITY;
  const sameSpec = state.fingerprint === t.fingerprint;
  const kept: Record<string, CloudEvent> = {};
  let discarded = 0;
  for (const [d, e] of Object.entries(state.events)) {
    if (sameSpec && eventMs(e) >= resetAt) kept[d] = e;
    else discarded++;
  }
  if (eventMs(ev) < resetAt) {
    const changed = discarded > 0 || !sameSpec;
    return {
      ...(changed ? { next: { events: kept, inflight, fingerprint: t.fingerprint } } : {}),
      firings: [],
      discarded,
      tooOld: true,
    };
  }
  const replaced = kept[dep] && kept[dep].id !== ev.id ? { replaced: kept[dep].id } : {};
  const events = { ...kept, [dep]: ev };
  const have = new Set(Object.keys(events).filter((d) => t.dependencies.has(d)));
  if (!evaluateConditions(t.conditions, have))
    return {
      next: { events, inflight, fingerprint: t.fingerprint },
      firings: [],
      discarded,
      tooOld: false,
      ...replaced,
    };
  const fired: Record<string, CloudEvent> = {};
  const left: Record<string, CloudEvent> = {};
  for (const [d, e] of Object.entries(events)) (have.has(d) ? fired : left)[d] = e;
  const key = opts.keyOf(fired);
  return {
    next: { events: left, inflight: withFiring(inflight, key, fired), fingerprint: t.fingerprint },
    firings: [[key, fired]],
    discarded,
    tooOld: false,
    ...replaced,
  };
}

/** The in-flight firings of `state` that used `ev` as `dep`. */
export function firingsOf(state: PartialMatch, dep: string, ev: CloudEvent): Firing[] {
  const inflight = state.inflight ?? {};
  const out: Firing[] = [];
  for (const key in inflight) if (inflight[key]![dep]?.id === ev.id) out.push([key, inflight[key]!]);
  return out;
}

/** `state` without the in-flight firings that used `ev` as `dep` (undefined: none). */
export function withoutFiringsOf(state: PartialMatch, dep: string, ev: CloudEvent): PartialMatch | undefined {
  const before = state.inflight ?? {};
  const inflight: Record<string, Record<string, CloudEvent>> = {};
  let dropped = false;
  for (const k in before) {
    if (before[k]![dep]?.id === ev.id) dropped = true;
    else inflight[k] = before[k]!;
  }
  return dropped ? { ...state, inflight } : undefined;
}

/** The state after firing `key` settled (undefined: nothing to write). */
export function settleFiring(state: PartialMatch, key: string): PartialMatch | undefined {
  const before = state.inflight ?? {};
  if (!(key in before)) return undefined;
  // Copied without the key (not `delete`: it would turn the copy into a slow dictionary object).
  const inflight: Record<string, Record<string, CloudEvent>> = {};
  let left = 0;
  for (const k in before)
    if (k !== key) {
      inflight[k] = before[k]!;
      left++;
    }
  const known = measured.get(before);
  if (known !== undefined) measured.set(inflight, left ? known - 1 - entryBytes(key, before[key]!) : 2);
  return { ...state, inflight };
}

/** `inflight` with firing `key` added; its size is known at once when `inflight`'s was. */
function withFiring(inflight: InFlight, key: string, fired: Record<string, CloudEvent>): InFlight {
  const grown = { ...inflight, [key]: fired };
  const known = key in inflight ? undefined : measured.get(inflight);
  if (known !== undefined) measured.set(grown, known + (known > 2 ? 1 : 0) + entryBytes(key, fired));
  return grown;
}

type InFlight = NonNullable<PartialMatch['inflight']>;

/**
 * JSON byte sizes of events, of firings' event records and of in-flight sets (none is changed
 * once made: every step of a join copies).
 */
const measured = new WeakMap<object, number>();

/** Bytes of JSON.stringify(text): printable ASCII without quote or backslash is its length + 2. */
function stringBytes(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return Buffer.byteLength(JSON.stringify(text));
  }
  return text.length + 2;
}

/** Bytes of the JSON text of `{ name: event, ... }`, remembered per record and per event. */
function eventsBytes(events: Record<string, CloudEvent>): number {
  const known = measured.get(events);
  if (known !== undefined) return known;
  let n = 2; // {}
  let first = true;
  for (const name in events) {
    const ev = events[name]!;
    let b = measured.get(ev);
    if (b === undefined) {
      b = Buffer.byteLength(JSON.stringify(ev));
      measured.set(ev, b);
    }
    n += (first ? 0 : 1) + stringBytes(name) + 1 + b;
    first = false;
  }
  measured.set(events, n);
  return n;
}

const entryBytes = (key: string, fired: Record<string, CloudEvent>): number =>
  stringBytes(key) + 1 + eventsBytes(fired);

/** Bytes of the JSON text of an in-flight set, remembered (and carried over by each step). */
function inflightBytes(inflight: InFlight): number {
  const known = measured.get(inflight);
  if (known !== undefined) return known;
  let n = 2;
  let first = true;
  for (const key in inflight) {
    n += (first ? 0 : 1) + entryBytes(key, inflight[key]!);
    first = false;
  }
  measured.set(inflight, n);
  return n;
}

/**
 * The size of `JSON.stringify(state)` in bytes (UTF-8), without writing the whole text: each
 * event's, firing's and in-flight set's size is measured once and remembered (a step that adds
 * or removes a firing carries the size over), so checking a state costs a few additions, not a
 * serialisation (that serialisation was half the CPU of an AND join with many firings in flight).
 */
export function stateBytes(state: PartialMatch): number {
  let n = 2 + stringBytes('events') + 1 + eventsBytes(state.events);
  if (state.inflight !== undefined) n += 1 + stringBytes('inflight') + 1 + inflightBytes(state.inflight);
  if (state.fingerprint !== undefined)
    n += 1 + stringBytes('fingerprint') + 1 + stringBytes(state.fingerprint);
  return n;
}

/** True when a state holds nothing (it can be deleted). */
export const isEmpty = (s: PartialMatch): boolean =>
  Object.keys(s.events).length === 0 && Object.keys(s.inflight ?? {}).length === 0;

/**
 * A fingerprint of what a trigger's partial matches depend on: its conditions and, for each of
 * its dependencies, the source, filters and transform. Partial matches recorded under another
 * fingerprint are discarded (upstream clears them when the Sensor spec changes).
 */
export function specFingerprint(
  t: Pick<Trigger, 'template'>,
  deps: readonly EventDependency[],
  names: ReadonlySet<string>,
): string {
  const used = deps
    .filter((d) => names.has(d.name))
    .map((d) => ({
      name: d.name,
      eventSourceName: d.eventSourceName,
      eventName: d.eventName,
      filters: d.filters ?? null,
      filtersLogicalOperator: d.filtersLogicalOperator ?? null,
      transform: d.transform ?? null,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  return createHash('sha256')
    .update(JSON.stringify({ conditions: t.template?.conditions ?? null, deps: used }))
    .digest('hex')
    .slice(0, 16);
}
