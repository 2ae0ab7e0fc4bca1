// `awsLambda`: invokes a Lambda function (@aws-sdk/client-lambda) with the JSON payload built from
// `payload`, as upstream does, with `invocationType` (RequestResponse by default; Event queues it,
// DryRun checks rights). The idempotency key and traceparent travel in the invocation's client
// context (`custom.idempotencyKey`, `custom.traceparent`, readable by the function as
// context.clientContext), so a function can drop a repeat; in this process one invocation per
// key (RecentKeys). Outcomes: the function answering with an error (FunctionError) is transient,
// as are throttling, 5xx and network errors (retryStrategy decides); wrong credentials, missing
// rights and a function that does not exist are Misconfigured; other 4xx are Rejected. The API
// endpoint follows the SDK's settings, e.g. AWS_ENDPOINT_URL_LAMBDA for a local server.
// `roleARN` is not supported yet (Misconfigured).
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { AWSLambdaTrigger } from '../../api/sensor.ts';
import { awsClientConfig, describeAwsError, isFatalAwsError } from '../../eventsources/aws/credentials.ts';
import { RecentKeys } from './recent-keys.ts';
import { TriggerError, type TriggerRunner } from './trigger.ts';

type Spec = import('zod').infer<typeof AWSLambdaTrigger>;

const MISCONFIGURED = new Set([
  'ResourceNotFoundException',
  'AccessDeniedException',
  'InvalidParameterValueException',
]);
const TRANSIENT = new Set([
  'TooManyRequestsException',
  'ServiceException',
  'ResourceNotReadyException',
  'EC2ThrottledException',
]);

function classify(err: unknown, fn: string): TriggerError {
  if (err instanceof TriggerError) return err;
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const text = `lambda ${fn}: ${describeAwsError(err)}`;
  if (MISCONFIGURED.has(e.name ?? '') || isFatalAwsError(err))
    return new TriggerError('Misconfigured', text, { cause: err });
  if (TRANSIENT.has(e.name ?? '') || status === undefined || status >= 500 || status === 429)
    return new TriggerError('Transient', text, { cause: err });
  return new TriggerError('Rejected', text, { cause: err });
}

export function awsLambdaTrigger(): TriggerRunner<Spec> {
  const clients = new Map<string, LambdaClient>();
  const done = new RecentKeys();
  return {
    type: 'awsLambda',
    async fire(spec, ctx) {
      const dedupe = `${spec.region}\u0000${spec.functionName}\u0000${ctx.idempotencyKey}`;
      if (done.has(dedupe)) return { detail: `already invoked ${spec.functionName} (same idempotency key)` };
      let config: Awaited<ReturnType<typeof awsClientConfig>>;
      try {
        config = await awsClientConfig(spec, ctx.resolveSecret, 'awsLambda');
      } catch (err) {
        throw new TriggerError('Misconfigured', (err as Error).message, { cause: err });
      }
      const id = JSON.stringify([
        config.region,
        config.credentials?.accessKeyId ?? '',
        config.credentials?.secretAccessKey ?? '',
      ]);
      let client = clients.get(id);
      if (!client) {
        client = new LambdaClient(config);
        clients.set(id, client);
      }
      const clientContext = Buffer.from(
        JSON.stringify({
          custom: {
            idempotencyKey: ctx.idempotencyKey,
            ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}),
          },
        }),
      ).toString('base64');
      try {
        const out = await client.send(
          new InvokeCommand({
            FunctionName: spec.functionName,
            InvocationType: spec.invocationType ?? 'RequestResponse',
            Payload: Buffer.from(JSON.stringify(ctx.buildPayload(spec.payload) ?? {})),
            ClientContext: clientContext,
          }),
          { abortSignal: ctx.signal },
        );
        const answer = out.Payload ? Buffer.from(out.Payload).toString('utf8').slice(0, 512) : '';
        if (out.FunctionError) {
          throw new TriggerError(
            'Transient',
            `lambda ${spec.functionName}: the function failed (${out.FunctionError}): ${answer}`,
          );
        }
        done.set(dedupe, true);
        return { detail: `lambda ${spec.functionName}: ${out.StatusCode}${answer ? ` ${answer}` : ''}` };
      } catch (err) {
        throw classify(err, spec.functionName);
      }
    },
    async close() {
      for (const c of clients.values()) c.destroy();
      clients.clear();
    },
  };
}
