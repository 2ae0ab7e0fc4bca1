// `log`: writes the triggering events to the Sensor's log. `intervalSeconds` keeps at most one
// line per interval (the others are counted as successes, not written).
import type { LogTrigger } from '../../api/sensor.ts';
import type { TriggerRunner } from './trigger.ts';

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
      ctx.log.info(
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
