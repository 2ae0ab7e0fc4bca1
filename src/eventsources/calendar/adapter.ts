// `calendar`: an event at each fire time of a schedule or interval. The event id is
// "<event name>:<fire time>", so a fire emitted twice (two replicas for a moment, a restart right
// after a fire) is stored once by the bus. With `persistence`, the last emitted fire time is kept
// in JetStream KV on the bus (not in a ConfigMap: `persistence.configMap` is accepted and the
// bus holds the state, which needs no extra RBAC); with `persistence.catchup.enabled`, fires
// missed while the source was down are emitted in order when it starts (no older than
// `maxDuration`), otherwise they are skipped. The payload is upstream's {eventTime, metadata},
// eventTime written as Go's time.String() writes it (see go-time.ts). A fire is recorded only after the bus stored it; if
// the bus cannot take it, it is retried with backoff and the schedule does not move on.
import type { CalendarEventSource } from '../../api/eventsource.ts';
import { parseDurationMs } from '../../api/stream-config.ts';
import { JsonState, openKv } from '../../bus/kv.ts';
import { kvBucketName } from '../../bus/subjects.ts';
import type { SourceAdapter } from '../adapter.ts';
import { goTimeString } from './go-time.ts';
import { compileSchedule } from './schedule.ts';

interface LastFire {
  last: string;
}

/** Longest single timer (setTimeout's limit is ~24.8 days). */
const MAX_SLEEP_MS = 2 ** 31 - 1;

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export const adapter: SourceAdapter<CalendarEventSource> = {
  type: 'calendar',
  exclusive: true,
  async start(ctx) {
    const spec = ctx.spec;
    const schedule = compileSchedule(spec);
    const stop = new AbortController();
    const signal = AbortSignal.any([ctx.signal, stop.signal]);
    const key = ctx.eventName;
    const state = spec.persistence
      ? new JsonState<LastFire>(
          await openKv(ctx.nc, kvBucketName(ctx.namespace, ctx.eventSourceName, 'calendar')),
        )
      : undefined;

    let cursor = new Date();
    if (state) {
      const saved = await state.get(key);
      const last = saved ? new Date(saved.value.last) : undefined;
      if (last && !Number.isNaN(last.getTime()) && spec.persistence?.catchup?.enabled) {
        const max = spec.persistence.catchup.maxDuration
          ? parseDurationMs(spec.persistence.catchup.maxDuration)
          : undefined;
        const oldest = max === undefined ? last : new Date(Math.max(last.getTime(), Date.now() - max));
        cursor = oldest < cursor ? oldest : cursor;
        ctx.log.info(
          { last: last.toISOString(), from: cursor.toISOString() },
          'calendar: catching up on missed fires',
        );
      }
    }

    const loop = (async () => {
      for (;;) {
        const t = schedule.next(cursor);
        if (!t) {
          ctx.log.warn('calendar: the schedule has no further fire times');
          return;
        }
        // Wake at the fire time (in steps, for far-away fires).
        for (let wait = t.getTime() - Date.now(); wait > 0; wait = t.getTime() - Date.now()) {
          if (!(await sleep(Math.min(wait, MAX_SLEEP_MS), signal))) return;
        }
        const at = t.toISOString();
        for (let backoff = 500; ; backoff = Math.min(backoff * 2, 30_000)) {
          try {
            await ctx.emit(
              {
                eventTime: goTimeString(t, schedule.zone),
                ...(spec.metadata ? { metadata: spec.metadata } : {}),
              },
              { id: `${ctx.eventName}:${at}`, time: t },
            );
            break;
          } catch (err) {
            ctx.log.warn(
              { fire: at, err: (err as Error).message, retryInMs: backoff },
              'calendar: fire not stored; retrying',
            );
            if (!(await sleep(backoff, signal))) return;
          }
        }
        if (state) {
          try {
            await state.put(key, { last: at });
          } catch (err) {
            // The bus took the event, so it is not lost; a restart may emit it again (same id:
            // dropped by the bus inside its duplicates window).
            ctx.log.warn(
              { fire: at, err: (err as Error).message },
              'calendar: could not record the last fire',
            );
          }
        }
        cursor = t;
      }
    })();

    return {
      async stop() {
        stop.abort();
        await loop;
      },
    };
  },
};
