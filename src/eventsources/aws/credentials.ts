// AWS client settings shared by the `sqs` and `sns` sources: region, an alternative endpoint
// (e.g. a local emulator), and credentials from the upstream Secret fields, else the SDK's
// default chain (environment, web identity, instance role). `roleARN` is not supported yet and
// refused with a clear error. Errors no retry can fix (wrong keys, no rights, a missing queue)
// are told apart from outages.
import type { SecretKeySelector } from '../../api/k8s.ts';

export interface AwsSpec {
  region: string;
  endpoint?: string | undefined;
  accessKey?: SecretKeySelector | undefined;
  secretKey?: SecretKeySelector | undefined;
  sessionToken?: SecretKeySelector | undefined;
  roleARN?: string | undefined;
}

export interface AwsClientConfig {
  region: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  maxAttempts: number;
}

export async function awsClientConfig(
  spec: AwsSpec,
  resolve: (sel: SecretKeySelector) => Promise<string>,
  type: string,
): Promise<AwsClientConfig> {
  if (spec.roleARN) throw new Error(`${type}: roleARN (assuming a role) is not supported by this build`);
  if (!!spec.accessKey !== !!spec.secretKey)
    throw new Error(`${type}: set both accessKey and secretKey, or neither`);
  const credentials =
    spec.accessKey && spec.secretKey
      ? {
          accessKeyId: (await resolve(spec.accessKey)).trim(),
          secretAccessKey: (await resolve(spec.secretKey)).trim(),
          ...(spec.sessionToken ? { sessionToken: (await resolve(spec.sessionToken)).trim() } : {}),
        }
      : undefined;
  return {
    region: spec.region,
    ...(spec.endpoint ? { endpoint: spec.endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    // One quick SDK retry; the sources' own loops retry outages with backoff.
    maxAttempts: 2,
  };
}

const FATAL = new Set([
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'AccessDenied',
  'AccessDeniedException',
  'AuthorizationError',
  'ExpiredToken',
  'QueueDoesNotExist',
  'AWS.SimpleQueueService.NonExistentQueue',
  'NotFound',
  'NotFoundException',
  'InvalidParameter',
  'InvalidParameterValue',
  'CredentialsProviderError',
]);

type AwsErr = {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number };
};

const status = (e: AwsErr) => e.$metadata?.httpStatusCode ?? e.$response?.statusCode;

/**
 * True for AWS errors retrying cannot fix: credentials, rights, a queue or topic that does not
 * exist. Any 401/403 answer counts, also one whose body the SDK could not read (some emulators
 * answer in another protocol than the service's).
 */
export function isFatalAwsError(err: unknown): boolean {
  const e = err as AwsErr | undefined;
  if (!e) return false;
  const code = status(e);
  return (
    FATAL.has(e.name ?? '') ||
    FATAL.has(e.Code ?? '') ||
    FATAL.has(e.code ?? '') ||
    code === 401 ||
    code === 403
  );
}

/** "<name>: <message>", with the HTTP status when the SDK could not read the answer. */
export function describeAwsError(err: unknown): string {
  const e = err as AwsErr;
  const code = status(e);
  if ((code === 401 || code === 403) && !FATAL.has(e.name ?? '')) {
    return `HTTP ${code}: access denied (check the access key, secret key and the rights of that user)`;
  }
  return `${e.name ?? 'Error'}: ${e.message ?? String(err)}`;
}
