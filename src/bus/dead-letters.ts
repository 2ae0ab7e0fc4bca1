// Dead-letter bursts: a periodic look at how many records each (Sensor, trigger) subject of a bus's
// DLQ stream holds; growth since the previous look is reported per Sensor (the controller turns it
// into a Warning event on the Sensor). The first look is the baseline: records that were already
// there when the controller started are not news.
import type { JetStreamManager } from '@nats-io/jetstream';
import { parseDlqSubject } from './subjects.ts';

/**
 * Polls `stream` (a DLQ stream) every `everyMs` (default 10 s) and calls `onGrowth` with the number
 * of new records per Sensor when there are any. Errors (bus unreachable) skip that look. Returns a stop function.
 */
export function watchDeadLetters(
  jsm: () => Promise<JetStreamManager>,
  stream: string,
  onGrowth: (bySensor: Map<string, number>) => void,
  everyMs = 10_000,
): () => void {
  let prev: Record<string, number> | undefined;
  let stopped = false;
  const look = async () => {
    try {
      const info = await (await jsm()).streams.info(stream, { subjects_filter: '>' });
      const now = (info.state.subjects ?? {}) as Record<string, number>;
      if (prev) {
        const grown = new Map<string, number>();
        for (const [subject, n] of Object.entries(now)) {
          const added = n - (prev[subject] ?? 0);
          const sensor = added > 0 ? parseDlqSubject(subject)?.sensor : undefined;
          if (sensor) grown.set(sensor, (grown.get(sensor) ?? 0) + added);
        }
        if (grown.size && !stopped) onGrowth(grown);
      }
      prev = now;
    } catch {
      // Unreachable for now: the stream monitor reports that; try again next time.
    }
  };
  void look();
  const timer = setInterval(() => void look(), everyMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
