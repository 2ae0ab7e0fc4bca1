// Context filters: every CloudEvents attribute the filter sets must equal the event's. Upstream
// compares only type, subject, source and datacontenttype and ignores the rest; sluice compares
// every attribute that is set (id, specversion and time too; times are compared as instants), so
// no field of the filter is silently ignored.
import type { EventContext } from '../../api/sensor.ts';
import type { CloudEvent } from '../../eventsources/envelope.ts';
import { Fail } from './result.ts';

const KEYS = ['id', 'source', 'specversion', 'type', 'datacontenttype', 'subject', 'time'] as const;

export function compileContextFilter(ctx: EventContext, where: string): (ev: CloudEvent) => Fail | undefined {
  const wanted = KEYS.filter((k) => ctx[k] !== undefined && ctx[k] !== '').map((k) => [k, ctx[k]!] as const);
  return (ev) => {
    for (const [k, want] of wanted) {
      const got = (ev as unknown as Record<string, unknown>)[k];
      if (got === want) continue;
      if (k === 'time' && typeof got === 'string') {
        const a = Date.parse(got);
        if (!Number.isNaN(a) && a === Date.parse(want)) continue;
      }
      return new Fail(
        `${where}.context: ${k} is ${JSON.stringify(got ?? null)}, not ${JSON.stringify(want)}`,
        false,
      );
    }
    return undefined;
  };
}
