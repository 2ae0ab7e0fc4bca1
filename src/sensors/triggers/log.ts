// `log`: writes the triggering events to the Sensor's log. `intervalSeconds` keeps at most one
// line per interval (the others are counted as successes, not written).
import type { LogTrigger } from '../../api/sensor.ts';
import type { Logger } from '../../observability/logger.ts';
import type { TriggerRunner } from './trigger.ts';

const plain = new WeakMap<Logger, Logger>();

/**
 * `log` without its key redaction. The redaction paths (logger.ts) name secret-bearing keys at the
 * top two levels of a line; this trigger's line holds only its name, the idempotency key and the
 * events keyed by dependency, so they could only ever hide a whole event of a dependency named
 * like a secret. Redacting costs more than writing the line (measured: 16 µs against 10 µs per
 * 1 KiB event), on every event a log trigger fires for.
 */
function unredacted(log: Logger): Logger {
  let l = plain.get(log);
  if (!l) {
    l = log.child({}, { redact: [] });
    plain.set(log, l);
  }
  return l;
}

export function logTrigger(): TriggerRunner<LogTrigger> {
  const last = new Map<string, number>();
  return {
    type: 'log',
    async fire(spec, ctx) {
      const every = (spec.intervalSeconds ?? 0) * 1000;
      const now = Date.now();
      const key = `${ctx.sensorName}/${ctx.triggerName}`;
      if (every > 0 && now - (last.get(key) ?? 0) < every) return { detail: 'skipped (interval)' };
      last.set(key, now);
      unredacted(ctx.log).info(
        {
          trigger: ctx.triggerName,
          idempotencyKey: ctx.idempotencyKey,
          events: Object.fromEntries(
            Object.entries(ctx.events).map(([dep, ev]) => [
              dep,
              { id: ev.id, source: ev.source, subject: ev.subject, time: ev.time, data: ev.data },
            ]),
          ),
        },
        'log trigger',
      );
      return { detail: 'logged' };
    },
  };
}
