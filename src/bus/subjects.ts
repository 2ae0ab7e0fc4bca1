// Names on the bus: streams, subjects, consumers and KV buckets.
//
// Kubernetes and event names may contain dots, spaces, wildcards or anything else, and several
// namespaces may share one NATS. Every name part is therefore escaped reversibly before it goes
// into a subject or a JetStream name, so no input can break a subject or make two different
// (namespace, bus, EventSource, event) tuples share one:
//
//   token escape   bytes outside [A-Za-z0-9_-] become "~" + two hex digits ("." → "~2e",
//                  "~" → "~7e"); the empty string is "~" alone (escaping never yields that).
//
// Layout (each <part> escaped):
//   event subject  sluice.<namespace>.<bus>.<eventsource>.<event>
//   DLQ subject    sluice-dlq.<namespace>.<bus>.<sensor>.<trigger>
//   event stream   sluice_<namespace>_<bus>           ("_" inside a part is escaped as "~5f",
//   DLQ stream     sluice_<namespace>_<bus>_dlq        so "_" only ever separates parts)
//   consumer       <sensor>_<dependency>
//
// The bus name is part of the subject (not only the namespace) so two EventBuses in one namespace
// pointed at the same NATS do not claim overlapping subjects. Names longer than JetStream allows
// are shortened to a prefix plus a hash of the whole name.
import { createHash } from 'node:crypto';

const SAFE = /[A-Za-z0-9_-]/;

export function escapeToken(s: string): string {
  if (s === '') return '~';
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += byte < 128 && SAFE.test(c) ? c : `~${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Decodes "~hh" escapes; undefined for text outside the escaped alphabet. */
function decode(t: string): string | undefined {
  if (!/^(?:[A-Za-z0-9_-]|~[0-9a-f]{2})+$/.test(t)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < t.length; i++) {
    if (t[i] === '~') {
      bytes.push(Number.parseInt(t.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(t.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Inverse of escapeToken; undefined when `t` is not something escapeToken produces. */
export function unescapeToken(t: string): string | undefined {
  if (t === '~') return '';
  const s = decode(t);
  // Only the canonical escape of a string is accepted (e.g. not "~41" for "A").
  return s !== undefined && escapeToken(s) === t ? s : undefined;
}

/** A name part that can sit next to "_" separators: like escapeToken, with "_" escaped too. */
function namePart(s: string): string {
  return escapeToken(s).replaceAll('_', '~5f');
}

function unNamePart(t: string): string | undefined {
  const s = t === '~' ? '' : decode(t);
  return s !== undefined && namePart(s) === t ? s : undefined;
}

/** JetStream's limit for stream and consumer names. */
export const MAX_NAME_LENGTH = 255;

/**
 * `name` if it fits in `max`, else a prefix of it, "~~" and 16 hex of its SHA-256. "~~" never
 * occurs in escaped text, so a shortened name is never mistaken for a parseable one.
 */
export function boundedName(name: string, max = MAX_NAME_LENGTH): string {
  if (name.length <= max) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 16);
  return `${name.slice(0, max - 18)}~~${hash}`;
}

export interface BusRef {
  namespace: string;
  busName: string;
}

const EVENTS = 'sluice';
const DLQ = 'sluice-dlq';
const DLQ_SUFFIX = '_dlq';

/** Stream holding a bus's events. */
export function eventStreamName(bus: BusRef): string {
  return boundedName(`sluice_${namePart(bus.namespace)}_${namePart(bus.busName)}`, MAX_NAME_LENGTH - 4);
}

/** Stream holding a bus's dead letters. */
export function dlqStreamName(bus: BusRef): string {
  return `${eventStreamName(bus)}${DLQ_SUFFIX}`;
}

export function eventStreamSubjects(bus: BusRef): string[] {
  return [`${EVENTS}.${escapeToken(bus.namespace)}.${escapeToken(bus.busName)}.>`];
}

export function dlqStreamSubjects(bus: BusRef): string[] {
  return [`${DLQ}.${escapeToken(bus.namespace)}.${escapeToken(bus.busName)}.>`];
}

/** Subject of one event; also the filter subject of a dependency on that event. */
export function subjectFor(bus: BusRef, eventSource: string, eventName: string): string {
  return `${EVENTS}.${escapeToken(bus.namespace)}.${escapeToken(bus.busName)}.${escapeToken(eventSource)}.${escapeToken(eventName)}`;
}

/** Subject matching every event of one EventSource. */
export function eventSourceSubjects(bus: BusRef, eventSource: string): string {
  return `${EVENTS}.${escapeToken(bus.namespace)}.${escapeToken(bus.busName)}.${escapeToken(eventSource)}.*`;
}

export interface EventAddress extends BusRef {
  eventSource: string;
  eventName: string;
}

function parseFive(subject: string, head: string): [string, string, string, string] | undefined {
  const parts = subject.split('.');
  if (parts.length !== 5 || parts[0] !== head) return undefined;
  const out = parts.slice(1).map(unescapeToken);
  if (out.some((p) => p === undefined)) return undefined;
  return out as [string, string, string, string];
}

/** Inverse of subjectFor; undefined for any other subject. */
export function parseSubject(subject: string): EventAddress | undefined {
  const p = parseFive(subject, EVENTS);
  return p && { namespace: p[0], busName: p[1], eventSource: p[2], eventName: p[3] };
}

/** @deprecated use subjectFor (kept for callers written against the first version). */
export const eventSubject = subjectFor;
/** @deprecated use parseSubject. */
export const parseEventSubject = parseSubject;

export function dlqSubject(bus: BusRef, sensor: string, trigger: string): string {
  return `${DLQ}.${escapeToken(bus.namespace)}.${escapeToken(bus.busName)}.${escapeToken(sensor)}.${escapeToken(trigger)}`;
}

export function parseDlqSubject(subject: string): (BusRef & { sensor: string; trigger: string }) | undefined {
  const p = parseFive(subject, DLQ);
  return p && { namespace: p[0], busName: p[1], sensor: p[2], trigger: p[3] };
}

/** Durable consumer name of one (Sensor, dependency) on its bus's event stream. */
export function consumerName(sensor: string, dependency: string): string {
  return boundedName(`${namePart(sensor)}_${namePart(dependency)}`);
}

/**
 * The (Sensor, dependency) a consumer name was made from, or undefined for names consumerName
 * does not produce (other tools' consumers, or shortened over-long names: for those, read the
 * consumer's metadata, see consumerOwner in consumer.ts).
 */
export function consumerSensor(name: string): { sensor: string; dependency: string } | undefined {
  const parts = name.split('_');
  if (parts.length !== 2) return undefined;
  const sensor = unNamePart(parts[0]!);
  const dependency = unNamePart(parts[1]!);
  if (sensor === undefined || dependency === undefined) return undefined;
  return { sensor, dependency };
}

/** One part of a KV bucket name: [A-Za-z0-9] kept, other bytes as "-" + hex, "" as "-". */
export function kvNamePart(s: string): string {
  return s === ''
    ? '-'
    : [...Buffer.from(s, 'utf8')]
        .map((b) => {
          const c = String.fromCharCode(b);
          return b < 128 && /[A-Za-z0-9]/.test(c) ? c : `-${b.toString(16).padStart(2, '0')}`;
        })
        .join('');
}

/**
 * KV bucket for one Sensor's state of one kind ("processed", "conditions", ...). Bucket names
 * allow only [-_A-Za-z0-9], so parts are escaped with "-" + hex and joined with "_".
 */
export function kvBucketName(namespace: string, sensor: string, purpose: string): string {
  const part = kvNamePart;
  // "KV_" is prepended by the server to form the stream name, hence the shorter limit.
  return boundedName(
    `sluice_${part(namespace)}_${part(sensor)}_${part(purpose)}`,
    MAX_NAME_LENGTH - 3,
  ).replace(/[^-_A-Za-z0-9]/g, '-');
}
