// EventSource defaults, all in one place. Schemas leave defaulted fields optional so stored
// objects stay as the user wrote them; the controller and the adapters call
// withEventSourceDefaults on a parsed spec to get the values they act on. Every default here is
// also stated in the field's description ("Defaults to ...").
import { DEFAULT_PROVIDER_METHOD } from '../common.ts';
import type { EventSourceSpec } from './index.ts';

export const DEFAULT_EVENT_BUS = 'default';
export const DEFAULT_REPLICAS = 1;
/** Largest accepted webhook request body, in bytes (1 MiB), as upstream. */
export const DEFAULT_MAX_PAYLOAD_SIZE = 1_048_576;
export const DEFAULT_CALENDAR_TIMEZONE = 'UTC';
export const DEFAULT_REDIS_STREAM_CONSUMER_GROUP = 'argo-events-cg';
export const DEFAULT_REDIS_STREAM_MAX_MSG_COUNT_PER_READ = 10;
export const DEFAULT_SFTP_POLL_INTERVAL = '10s';
export const DEFAULT_HOOK_CHECK_INTERVAL = '1m';
export const DEFAULT_HDFS_CHECK_INTERVAL = '1m';
export const DEFAULT_STORAGE_GRID_REGION = 'us-east-1';
export const DEFAULT_PULSAR_SUBSCRIPTION_TYPE = 'exclusive';
export const DEFAULT_AZURE_QUEUE_WAIT_SECONDS = 3;
export const DEFAULT_KAFKA_REBALANCE_STRATEGY = 'range';
export const DEFAULT_SASL_MECHANISM = 'PLAIN';

/** Applies `fill` to a copy of every entry of one source-type map. */
function each<T extends object>(
  map: Record<string, T> | undefined,
  fill: (entry: T) => T,
): Record<string, T> | undefined {
  if (map === undefined) return undefined;
  return Object.fromEntries(Object.entries(map).map(([name, entry]) => [name, fill({ ...entry })]));
}

interface HasMaxPayload {
  maxPayloadSize?: number | undefined;
}
const withPayloadLimit = <T extends HasMaxPayload>(ctx: T): T => ({
  ...ctx,
  maxPayloadSize: ctx.maxPayloadSize ?? DEFAULT_MAX_PAYLOAD_SIZE,
});
/** For sources that embed the HTTP endpoint under `webhook` (whose method is optional). */
const nestedWebhook = <T extends { webhook: HasMaxPayload & { method?: string | undefined } }>(e: T): T => ({
  ...e,
  webhook: { ...withPayloadLimit(e.webhook), method: e.webhook.method ?? DEFAULT_PROVIDER_METHOD },
});

/** Returns a deep enough copy of `spec` with every default filled in; the input is not changed. */
export function withEventSourceDefaults(spec: EventSourceSpec): EventSourceSpec {
  const out: EventSourceSpec = structuredClone(spec);
  out.eventBusName = spec.eventBusName || DEFAULT_EVENT_BUS;
  out.replicas = spec.replicas ?? DEFAULT_REPLICAS;

  out.webhook = each(out.webhook, withPayloadLimit);
  out.github = each(out.github, nestedWebhook);
  out.gitlab = each(out.gitlab, nestedWebhook);
  out.bitbucket = each(out.bitbucket, nestedWebhook);
  out.gerrit = each(out.gerrit, nestedWebhook);
  out.slack = each(out.slack, nestedWebhook);
  out.stripe = each(out.stripe, nestedWebhook);
  out.sns = each(out.sns, nestedWebhook);
  out.storageGrid = each(out.storageGrid, (e) => ({
    ...nestedWebhook(e),
    region: e.region ?? DEFAULT_STORAGE_GRID_REGION,
  }));
  out.bitbucketserver = each(out.bitbucketserver, (e) => ({
    ...nestedWebhook(e),
    checkInterval: e.checkInterval ?? DEFAULT_HOOK_CHECK_INTERVAL,
  }));

  out.calendar = each(out.calendar, (e) => ({ ...e, timezone: e.timezone || DEFAULT_CALENDAR_TIMEZONE }));
  out.sftp = each(out.sftp, (e) => ({
    ...e,
    pollIntervalDuration: e.pollIntervalDuration ?? DEFAULT_SFTP_POLL_INTERVAL,
  }));
  out.hdfs = each(out.hdfs, (e) => ({ ...e, checkInterval: e.checkInterval ?? DEFAULT_HDFS_CHECK_INTERVAL }));
  out.redisStream = each(out.redisStream, (e) => ({
    ...e,
    consumerGroup: e.consumerGroup || DEFAULT_REDIS_STREAM_CONSUMER_GROUP,
    maxMsgCountPerRead: e.maxMsgCountPerRead ?? DEFAULT_REDIS_STREAM_MAX_MSG_COUNT_PER_READ,
  }));
  out.pulsar = each(out.pulsar, (e) => ({ ...e, type: e.type ?? DEFAULT_PULSAR_SUBSCRIPTION_TYPE }));
  out.azureQueueStorage = each(out.azureQueueStorage, (e) => ({
    ...e,
    waitTimeInSeconds: e.waitTimeInSeconds ?? DEFAULT_AZURE_QUEUE_WAIT_SECONDS,
  }));
  out.kafka = each(out.kafka, (e) => ({
    ...e,
    ...(e.consumerGroup
      ? {
          consumerGroup: {
            ...e.consumerGroup,
            rebalanceStrategy: e.consumerGroup.rebalanceStrategy ?? DEFAULT_KAFKA_REBALANCE_STRATEGY,
          },
        }
      : {}),
    ...(e.sasl ? { sasl: { ...e.sasl, mechanism: e.sasl.mechanism ?? DEFAULT_SASL_MECHANISM } } : {}),
  }));

  // Keep absent maps absent rather than present-but-undefined, so the copy compares equal to
  // what a user would have written with the defaults spelled out.
  for (const key of Object.keys(out) as Array<keyof EventSourceSpec>) {
    if (out[key] === undefined) delete out[key];
  }
  return out;
}
