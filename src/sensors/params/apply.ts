// Applies trigger parameters to a target (a trigger template, a Kubernetes resource) or builds a
// request payload from them. Neither the target nor the events are modified: a deep copy is returned.
import type { TriggerParameter } from '../../api/sensor.ts';
import type { CloudEvent } from '../../eventsources/envelope.ts';
import { lookup, MISSING, textOf } from '../match/path.ts';
import { ParameterError, resolveSource } from './resolve.ts';
import { setPath } from './set-path.ts';

type Events = Readonly<Record<string, CloudEvent>>;

function applyAll(root: unknown, params: readonly TriggerParameter[], events: Events): unknown {
  let out = root;
  params.forEach((p, i) => {
    const where = `parameter [${i}] (dest "${p.dest}")`;
    if (!p.src) return;
    let r: ReturnType<typeof resolveSource>;
    try {
      r = resolveSource(p.src, events);
    } catch (e) {
      throw new ParameterError(`${where}: ${(e as Error).message}`, { cause: e });
    }
    if (!r) return;
    // A JSON value is the event's own object: copied, so a later parameter whose dest reaches
    // inside it (or a trigger that sets fields on its payload) never writes into the event, which
    // other triggers, this trigger's retries and a partial match (its remembered size) share.
    let value: unknown =
      p.src.useRawData && r.kind !== 'string' ? (r.kind === 'json' ? structuredClone(r.raw) : r.raw) : r.text;
    const op = p.operation || 'overwrite';
    if (op === 'append' || op === 'prepend') {
      // Upstream joins the texts: the result is always a string.
      const current = lookup(out, p.dest);
      if (current !== MISSING) value = op === 'append' ? textOf(current) + r.text : r.text + textOf(current);
    }
    try {
      out = setPath(out, p.dest, value);
    } catch (e) {
      throw new ParameterError(`${where}: ${(e as Error).message}`);
    }
  });
  return out;
}

/**
 * Returns a deep copy of `target` with the parameters applied in order. Throws ParameterError
 * (naming the parameter and dependency) when a value cannot be resolved and has no default.
 */
export function applyParameters<T>(
  target: T,
  params: readonly TriggerParameter[] | undefined,
  events: Events,
): T {
  const copy = structuredClone(target);
  if (!params?.length) return copy;
  return applyAll(copy, params, events) as T;
}

/** A payload built from the parameters alone, starting from an empty object. */
export function buildPayload(params: readonly TriggerParameter[] | undefined, events: Events): unknown {
  if (!params?.length) return {};
  return applyAll({}, params, events);
}
