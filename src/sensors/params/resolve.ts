// Where a trigger parameter's value comes from (upstream's order of precedence):
//   1. the dependency's event is missing: `value` if set, else the parameter is skipped (normal
//      with "||" conditions);
//   2. no key and no template: `value` if set, else the whole event as JSON text;
//   3. dataTemplate / contextTemplate: the template's text, unless it fails or gives nothing;
//   4. dataKey / contextKey: the value at that path (data wins when both data and context are set);
//   5. `value`; else the parameter cannot be resolved (an error naming the dependency and keys).
// The value is text, except that a key that finds a number, boolean, null, object or array keeps
// that type for `useRawData` (the JSON value is inserted instead of its text).
import type { TriggerParameterSource } from '../../api/sensor.ts';
import type { CloudEvent } from '../../eventsources/envelope.ts';
import { EvalBudgetError } from '../inline-budget.ts';
import { lookup, MISSING, textOf } from '../match/path.ts';
import { compileTemplate, type GoTemplate } from './template/index.ts';

export class ParameterError extends Error {
  readonly code = 'ParameterError';
}

export type ValueKind = 'string' | 'number' | 'bool' | 'null' | 'json';
export interface Resolved {
  /** The value as text (what is inserted without useRawData). */
  text: string;
  kind: ValueKind;
  /** The JSON value, for useRawData when kind is not "string". */
  raw: unknown;
}

const templates = new Map<string, GoTemplate>();
function template(src: string, name: string): GoTemplate {
  const key = `${name}\u0000${src}`;
  let t = templates.get(key);
  if (!t) {
    t = compileTemplate(src, name);
    if (templates.size > 2000) templates.clear();
    templates.set(key, t);
  }
  return t;
}

/** The CloudEvents attributes as upstream's EventContext marshals them. */
export function eventContext(ev: CloudEvent): Record<string, unknown> {
  return {
    id: ev.id,
    source: ev.source,
    specversion: ev.specversion ?? '1.0',
    type: ev.type,
    datacontenttype: ev.datacontenttype,
    subject: ev.subject,
    time: ev.time,
  };
}

/** The event data as JSON: data that arrived as JSON text is parsed. */
export function eventData(ev: CloudEvent): unknown {
  const d = ev.data;
  if (typeof d === 'string' && /json/i.test(ev.datacontenttype ?? '')) {
    try {
      return JSON.parse(d) as unknown;
    } catch {
      return d;
    }
  }
  return d;
}

const kindOf = (v: unknown): ValueKind => {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'number':
      return 'number';
    case 'boolean':
      return 'bool';
    default:
      return 'json';
  }
};

const text = (t: string): Resolved => ({ text: t, kind: 'string', raw: t });

/** Resolves a parameter source; undefined when the parameter is to be skipped. */
export function resolveSource(
  src: TriggerParameterSource,
  events: Readonly<Record<string, CloudEvent>>,
): Resolved | undefined {
  const ev = Object.hasOwn(events, src.dependencyName) ? events[src.dependencyName] : undefined;
  const dflt = src.value;
  if (!ev) return dflt !== undefined ? text(dflt) : undefined;
  const useData = Boolean(src.dataKey || src.dataTemplate);
  const useContext = Boolean(src.contextKey || src.contextTemplate);
  if (!useData && !useContext) {
    if (dflt !== undefined) return text(dflt);
    return text(JSON.stringify({ context: eventContext(ev), data: eventData(ev) ?? null }));
  }
  const payload = useData ? eventData(ev) : eventContext(ev);
  const key = useData ? src.dataKey : src.contextKey;
  const tpl = useData ? src.dataTemplate : src.contextTemplate;
  const which = useData ? 'data' : 'context';
  const problems: string[] = [];
  if (tpl) {
    try {
      const out = template(tpl, `${which}Template`).execute({ Input: payload });
      if (out !== '' && out !== '<no value>') return text(out);
      problems.push(`${which}Template ${JSON.stringify(tpl)} gave no value`);
    } catch (e) {
      // Over the work budget is not "the template gave nothing": no fallback to the key or value.
      if (e instanceof EvalBudgetError) throw e;
      problems.push((e as Error).message);
    }
  }
  if (key) {
    const v = lookup(payload, key);
    if (v !== MISSING) {
      const kind = kindOf(v);
      return { text: kind === 'null' ? 'null' : textOf(v), kind, raw: v };
    }
    problems.push(`${which}Key "${key}" does not exist in the event ${which}`);
  }
  if (dflt !== undefined) return text(dflt);
  throw new ParameterError(
    `cannot resolve a value from dependency "${src.dependencyName}" (${problems.join('; ')}) and no default value is set`,
  );
}
