// The entries of an EventSource, one per event name under each `spec.<type>` this build runs, each
// with the adapter that runs it; and starting or stopping a list of them together.
import { SOURCE_TYPES } from '../api/eventsource/index.ts';
import type { EventSourceSpec } from '../api/eventsource.ts';
import type { Logger } from '../observability/logger.ts';
import type { SourceAdapter, SourceContext, StartedSource } from './adapter.ts';
import { loadAdapter } from './adapters.ts';

/** One event of an EventSource: `spec.<type>.<eventName>` and the adapter that runs it. */
export interface SourceEntry {
  type: string;
  eventName: string;
  /** This entry's settings, as parsed by the schema. */
  spec: Record<string, unknown>;
  adapter: SourceAdapter<unknown>;
}

/** What `collectEntries` found in a spec. */
export interface CollectedEntries {
  /** In SOURCE_TYPES order, then in the order of the event names under each type. */
  entries: SourceEntry[];
  /** Source types in the spec that this build does not run (each logged at warn). */
  unsupported: string[];
}

/**
 * The entries of `spec`, loading the adapter of each type it uses (and only those). A type this
 * build does not run is reported in `unsupported`, never an error: the controller says so too.
 */
export async function collectEntries(spec: EventSourceSpec, log: Logger): Promise<CollectedEntries> {
  const entries: SourceEntry[] = [];
  const unsupported: string[] = [];
  const byType = spec as unknown as Record<string, Record<string, Record<string, unknown>> | undefined>;
  for (const type of SOURCE_TYPES) {
    const events = byType[type];
    if (!events || Object.keys(events).length === 0) continue;
    const adapter = await loadAdapter(type);
    if (!adapter) {
      unsupported.push(type);
      log.warn({ type }, 'source type not run by this build; its events are not produced');
      continue;
    }
    for (const [eventName, entrySpec] of Object.entries(events)) {
      entries.push({ type, eventName, spec: entrySpec, adapter });
    }
  }
  return { entries, unsupported };
}

/**
 * Starts `list` one after the other, each with the context `contextFor` makes for it, calling
 * `onStarted` after each. When one fails to start, the ones started already are stopped and the
 * adapter's error is rethrown.
 */
export async function startEntries(
  list: readonly SourceEntry[],
  contextFor: (e: SourceEntry, signal: AbortSignal) => SourceContext<unknown>,
  signal: AbortSignal,
  onStarted: (e: SourceEntry) => void,
): Promise<StartedSource[]> {
  const started: StartedSource[] = [];
  try {
    for (const e of list) {
      started.push(await e.adapter.start(contextFor(e, signal)));
      onStarted(e);
    }
  } catch (err) {
    await stopAll(started);
    throw err;
  }
  return started;
}

/** Stops every source at once; resolves when all have stopped or failed to (never rejects). */
export async function stopAll(sources: readonly StartedSource[]): Promise<void> {
  await Promise.allSettled(sources.map((s) => s.stop()));
}
