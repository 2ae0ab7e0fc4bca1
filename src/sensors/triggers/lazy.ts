// A runner whose module (and client library) is imported on its first call, so a Sensor that
// never fires a Kafka, gRPC or Lambda trigger does not load kafkajs, grpc-js or the AWS SDK
// (together about 45 MiB resident).
import type { TriggerRunner } from './trigger.ts';

/** Wraps `load` (resolving to the runner factory) in a runner of `type` that loads on first use. */
export function lazyRunner(type: string, load: () => Promise<() => TriggerRunner>): TriggerRunner {
  let runner: Promise<TriggerRunner> | undefined;
  const get = () => {
    runner ??= load().then((make) => make());
    return runner;
  };
  return {
    type,
    async fire(spec, ctx, policy) {
      return (await get()).fire(spec, ctx, policy);
    },
    async close() {
      if (runner) await (await runner).close?.();
    },
  };
}
