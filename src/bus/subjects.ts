// Names on the bus. Every token is escaped reversibly so that dots, spaces, wildcards and other
// characters in Kubernetes or event names can neither break a subject nor make two different
// (namespace, EventSource, event) triples share one. Escape: any byte outside [A-Za-z0-9_-] becomes
// "~" + two hex digits (so "~" itself is "~7e").

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

export function unescapeToken(t: string): string {
  if (t === '~') return '';
  const bytes: number[] = [];
  for (let i = 0; i < t.length; i++) {
    if (t[i] === '~') {
      bytes.push(Number.parseInt(t.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(t.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

export interface BusRef {
  namespace: string;
  busName: string;
}

const EVENTS = 'sluice';
const DLQ = 'sluice-dlq';

/** Stream holding a bus's events. */
export function eventStreamName(bus: BusRef): string {
  return `sluice-${escapeToken(bus.namespace)}-${escapeToken(bus.busName)}`;
}
export function dlqStreamName(bus: BusRef): string {
  return `${eventStreamName(bus)}-dlq`;
}
export function eventStreamSubjects(bus: BusRef): string[] {
  return [`${EVENTS}.${escapeToken(bus.namespace)}.${escapeToken(bus.busName)}.>`];
}
export function dlqStreamSubjects(bus: BusRef): string[] {
  return [`${DLQ}.${escapeToken(bus.namespace)}.${escapeToken(bus.busName)}.>`];
}

/** Subject of one event: namespace, bus, EventSource and event name. */
export function eventSubject(bus: BusRef, eventSource: string, eventName: string): string {
  return `${EVENTS}.${escapeToken(bus.namespace)}.${escapeToken(bus.busName)}.${escapeToken(eventSource)}.${escapeToken(eventName)}`;
}

export function parseEventSubject(
  subject: string,
): (BusRef & { eventSource: string; eventName: string }) | undefined {
  const parts = subject.split('.');
  if (parts.length !== 5 || parts[0] !== EVENTS) return undefined;
  return {
    namespace: unescapeToken(parts[1]!),
    busName: unescapeToken(parts[2]!),
    eventSource: unescapeToken(parts[3]!),
    eventName: unescapeToken(parts[4]!),
  };
}

export function dlqSubject(bus: BusRef, sensor: string, trigger: string): string {
  return `${DLQ}.${escapeToken(bus.namespace)}.${escapeToken(bus.busName)}.${escapeToken(sensor)}.${escapeToken(trigger)}`;
}

/** Durable consumer of one (Sensor, dependency). Consumer names allow the escaped alphabet. */
export function consumerName(sensor: string, dependency: string): string {
  // "_" separates the two parts, so it is escaped inside them (unescapeToken reads "~5f" back).
  const t = (s: string) => escapeToken(s).replaceAll('_', '~5f');
  return `${t(sensor)}_${t(dependency)}`;
}

/** The Sensor a consumer name belongs to, or undefined for other consumers. */
export function consumerSensor(name: string): { sensor: string; dependency: string } | undefined {
  const i = name.indexOf('_');
  if (i < 0) return undefined;
  return { sensor: unescapeToken(name.slice(0, i)), dependency: unescapeToken(name.slice(i + 1)) };
}
