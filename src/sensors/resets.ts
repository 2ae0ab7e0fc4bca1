// conditionsReset schedules of one trigger: the live timers (which delete the stored partial match
// at each scheduled time) and the time of the last scheduled reset, recomputed from the schedule
// at every join, so a reset that passed while the Sensor was down still applies after a restart.
import { Cron } from 'croner';
import type { Trigger } from '../api/sensor.ts';
import { resolveTimeZone, splitCronZone } from '../api/timezone.ts';

export interface ResetSchedule {
  /** The latest scheduled reset at or before `now` (ms), or undefined when there is none. */
  lastResetAt(now?: Date): number | undefined;
  stop(): void;
}

/** Upstream's byTime resets of a trigger (cron, optional timezone); undefined when it has none. */
export function resetSchedule(
  t: Pick<Trigger, 'template'>,
  onReset: () => Promise<void>,
): ResetSchedule | undefined {
  const resets = (t.template?.conditionsReset ?? []).flatMap((r) =>
    r.byTime?.cron ? [{ cron: r.byTime.cron, timezone: r.byTime.timezone }] : [],
  );
  if (!resets.length) return undefined;
  const crons = resets.map((r) => {
    // robfig/cron's "TZ=<zone> " prefix wins over `timezone`, as in upstream's reset cron.
    const { zone, spec } = splitCronZone(r.cron);
    const timezone = resolveTimeZone(zone ?? r.timezone);
    return new Cron(spec, { timezone, protect: true }, async () => {
      // A failed reset must not stop the later ones (croner skips runs while one is pending).
      await onReset().catch(() => {});
    });
  });
  return {
    lastResetAt(now = new Date()) {
      let last: number | undefined;
      for (const c of crons) {
        const prev = c.previousRuns(1, now)[0];
        if (prev && (last === undefined || prev.getTime() > last)) last = prev.getTime();
      }
      return last;
    },
    stop() {
      for (const c of crons) c.stop();
    },
  };
}
