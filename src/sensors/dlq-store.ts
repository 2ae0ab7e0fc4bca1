// Storing a dead-letter record. A record is the only trace of an event that failed for good, so
// the message it stands for is acked only after the record is stored; when the DLQ stream is
// missing, full or the bus refuses the write, the record is retried in place (1 s doubling to
// 30 s, counted in sluice_sensor_dead_letter_store_failures_total and logged each time) while the
// message is kept in progress. The trigger is not run again and the dlqTrigger not fired again,
// as a redelivery would do; the handler slot held is backpressure, not loss. Only stopping the
// Sensor ends the wait (the message is then redelivered to the next process).
import type { Publisher } from '../bus/publisher.ts';
import type { Logger } from '../observability/logger.ts';
import type { SensorMetrics } from './metrics.ts';

export interface DeadLetterStoreEnv {
  namespace: string;
  sensorName: string;
  publisher: Publisher;
  metrics: SensorMetrics;
  log: Logger;
  /** Aborted when the Sensor stops. */
  signal: AbortSignal;
}

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

/** Publishes `bytes` on `subject` (deduplicated by `msgId`), retrying until stored; see above. */
export async function storeDeadLetter(
  env: DeadLetterStoreEnv,
  subject: string,
  bytes: Uint8Array,
  msgId: string,
): Promise<void> {
  for (let wait = FIRST_RETRY_MS; ; wait = Math.min(wait * 2, MAX_RETRY_MS)) {
    try {
      await env.publisher.publish(subject, bytes, { msgId });
      return;
    } catch (err) {
      if (env.signal.aborted) throw err;
      env.metrics.deadLetterStoreFailures.inc({ namespace: env.namespace, sensor_name: env.sensorName });
      env.log.error(
        { subject, msgId, bytes: bytes.length, err: (err as Error).message, retryInMs: wait },
        'dead-letter record could not be stored; the message is kept until it is',
      );
      await pause(wait, env.signal);
    }
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal.removeEventListener('abort', stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', stop, { once: true });
  });
}
