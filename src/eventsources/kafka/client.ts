// Kafka client settings shared by the `kafka` EventSource and the `kafka` trigger: brokers, TLS
// and SASL from the upstream fields (Secrets resolved here), kafkajs logging routed to pino at
// warn, and which errors no retry can fix (bad credentials, missing rights), so a source fails
// with a clear message instead of retrying forever.
import { type KafkaConfig, logLevel, type SASLOptions } from 'kafkajs';
import type { SASLConfig, TLSConfig } from '../../api/common.ts';
import type { SecretKeySelector } from '../../api/k8s.ts';
import type { Logger } from '../../observability/logger.ts';

type SASL = import('zod').infer<typeof SASLConfig>;

export interface KafkaClientSpec {
  /** Comma-separated host:port list. */
  url: string;
  tls?: TLSConfig | undefined;
  sasl?: SASL | undefined;
}

/** Splits upstream's comma-separated broker list. */
export function brokerList(url: string): string[] {
  return url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

async function saslOptions(
  sasl: SASL,
  resolve: (sel: SecretKeySelector) => Promise<string>,
): Promise<SASLOptions> {
  const username = sasl.userSecret ? (await resolve(sasl.userSecret)).trim() : '';
  const password = sasl.passwordSecret ? (await resolve(sasl.passwordSecret)).trim() : '';
  switch (sasl.mechanism ?? 'PLAIN') {
    case 'PLAIN':
      return { mechanism: 'plain', username, password };
    case 'SCRAM-SHA-256':
      return { mechanism: 'scram-sha-256', username, password };
    case 'SCRAM-SHA-512':
      return { mechanism: 'scram-sha-512', username, password };
    case 'OAUTHBEARER':
      // Upstream sends the password Secret as the bearer token.
      return { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: password }) };
    case 'GSSAPI':
      throw new Error('kafka: SASL mechanism GSSAPI (Kerberos) is not supported by this build');
  }
}

/**
 * kafkajs client settings. `clientId` names this client on the broker; errors reading Secrets
 * propagate; GSSAPI is refused with a clear error.
 */
export async function kafkaConfig(
  spec: KafkaClientSpec,
  clientId: string,
  resolve: (sel: SecretKeySelector) => Promise<string>,
  log: Logger,
): Promise<KafkaConfig> {
  const tls = spec.tls;
  const useTls =
    !!tls && !!(tls.enabled || tls.caCertSecret || tls.clientCertSecret || tls.insecureSkipVerify);
  return {
    clientId,
    brokers: brokerList(spec.url),
    connectionTimeout: 5_000,
    requestTimeout: 15_000,
    ...(useTls
      ? {
          ssl: {
            ...(tls.caCertSecret ? { ca: [await resolve(tls.caCertSecret)] } : {}),
            ...(tls.clientCertSecret ? { cert: await resolve(tls.clientCertSecret) } : {}),
            ...(tls.clientKeySecret ? { key: await resolve(tls.clientKeySecret) } : {}),
            rejectUnauthorized: !tls.insecureSkipVerify,
          },
        }
      : {}),
    ...(spec.sasl ? { sasl: await saslOptions(spec.sasl, resolve) } : {}),
    // A few quick retries per request; reconnecting after that is the caller's loop.
    retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 5 },
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...rest } = entry.log;
      const fields = { kafka: entry.namespace, ...rest };
      if (entry.level <= logLevel.ERROR) log.warn(fields, `kafka client: ${message}`);
      else log.debug(fields, `kafka client: ${message}`);
    },
  };
}

const FATAL_TYPES = new Set([
  'SASL_AUTHENTICATION_FAILED',
  'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'UNSUPPORTED_SASL_MECHANISM',
  'ILLEGAL_SASL_STATE',
  'INVALID_TOPIC_EXCEPTION',
]);

type KafkaErr = { name?: string; type?: string; cause?: unknown; originalError?: unknown };

/** True for errors retrying cannot fix: wrong credentials, missing rights, an invalid topic name. */
export function isFatalKafkaError(err: unknown): boolean {
  const seen = new Set<unknown>();
  for (let e = err as KafkaErr | undefined; e && !seen.has(e); e = (e.originalError ?? e.cause) as KafkaErr) {
    seen.add(e);
    if (e.name === 'KafkaJSSASLAuthenticationError' || FATAL_TYPES.has(e.type ?? '')) return true;
  }
  return false;
}
