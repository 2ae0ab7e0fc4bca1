// The awsLambda trigger against moto's Lambda API (credentials enforced; functions run in moto's
// no-container mode, which answers with the invocation's payload): the payload and client
// context (idempotency key) reach the function; one invocation per idempotency key; an
// unreachable endpoint is transient and the next attempt after it is back succeeds; wrong keys
// are Misconfigured (not retried). (moto's no-container mode answers for any function name, so
// a missing function cannot be shown here.)
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AWSLambdaTrigger } from '../../../../src/api/sensor.ts';
import { awsLambdaTrigger } from '../../../../src/sensors/triggers/aws-lambda.ts';
import { type Moto, motoMissing, startMoto } from '../../../harness/moto.ts';
import { skipNote } from '../../../harness/shared.ts';
import { TcpProxy } from '../../../harness/tcp-proxy.ts';
import { makeCtx, triggerError } from './ctx.ts';

type Spec = import('zod').infer<typeof AWSLambdaTrigger>;
const data = { body: { order: 'A-9' } };
const payload: Spec['payload'] = [{ src: { dependencyName: 'dep', dataKey: 'body.order' }, dest: 'order' }];

const skip = motoMissing();
describe.skipIf(skip)(`awsLambda trigger${skipNote(skip)}`, () => {
  let moto: Moto;
  let proxy: TcpProxy;
  let secrets: Record<string, Record<string, string>>;
  beforeAll(async () => {
    moto = await startMoto();
    proxy = await TcpProxy.start(Number(new URL(moto.endpoint).port));
    const res = await fetch(`${moto.endpoint}/moto-api/config`, {
      method: 'POST',
      body: JSON.stringify({ lambda: { use_docker: false } }),
    });
    if (!res.ok) throw new Error(`moto config: ${res.status}`);
    const iam = new IAMClient({
      region: moto.region,
      endpoint: moto.endpoint,
      credentials: moto.credentials,
    });
    const role = await iam.send(
      new CreateRoleCommand({
        RoleName: 'sluice-lambda',
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
          ],
        }),
      }),
    );
    const lambda = new LambdaClient({
      region: moto.region,
      endpoint: moto.endpoint,
      credentials: moto.credentials,
    });
    // An empty zip: moto's no-container mode never runs the code.
    const emptyZip = new Uint8Array([0x50, 0x4b, 0x05, 0x06, ...new Array<number>(18).fill(0)]);
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName: 'ship',
        Runtime: 'python3.12',
        Role: role.Role!.Arn!,
        Handler: 'h.handler',
        Code: { ZipFile: emptyZip },
      }),
    );
    iam.destroy();
    lambda.destroy();
    secrets = {
      aws: { id: moto.credentials.accessKeyId, secret: moto.credentials.secretAccessKey, wrong: 'nope' },
    };
    process.env.AWS_ENDPOINT_URL_LAMBDA = `http://127.0.0.1:${proxy.port}`;
  }, 90_000);
  afterAll(async () => {
    delete process.env.AWS_ENDPOINT_URL_LAMBDA;
    await proxy?.down();
    await moto?.stop();
  });

  const spec = (o: Partial<Spec> = {}, secret = 'secret'): Spec => ({
    functionName: 'ship',
    region: moto.region,
    accessKey: { name: 'aws', key: 'id' },
    secretKey: { name: 'aws', key: secret },
    payload,
    ...o,
  });

  it('invokes with the payload; one invocation per idempotency key', async () => {
    const runner = awsLambdaTrigger();
    const ctx = makeCtx({ data: { dep: data }, key: 'lambda-key-1', secrets });
    try {
      expect((await runner.fire(spec(), ctx)).detail).toBe('lambda ship: 200 {"order":"A-9"}');
      expect((await runner.fire(spec(), { ...ctx, attempt: 2 })).detail).toMatch(/already invoked/);
      expect(
        (await runner.fire(spec({ invocationType: 'Event' }), makeCtx({ data: { dep: data }, secrets })))
          .detail,
      ).toMatch(/^lambda ship: 202/);
    } finally {
      await runner.close?.();
    }
  }, 30_000);

  it('an unreachable endpoint is transient; after it is back the next attempt succeeds', async () => {
    const runner = awsLambdaTrigger();
    try {
      await proxy.down();
      const err = await triggerError(
        runner.fire(spec(), makeCtx({ data: { dep: data }, secrets })),
        'Transient',
      );
      expect(err.retryable).toBe(true);
      await proxy.up();
      expect((await runner.fire(spec(), makeCtx({ data: { dep: data }, secrets }))).detail).toMatch(
        /^lambda ship: 200/,
      );
    } finally {
      await runner.close?.();
    }
  }, 30_000);

  it('wrong keys are Misconfigured', async () => {
    const runner = awsLambdaTrigger();
    try {
      const bad = await triggerError(
        runner.fire(spec({}, 'wrong'), makeCtx({ data: { dep: data }, secrets })),
        'Misconfigured',
      );
      expect(bad.message).not.toContain('nope');
    } finally {
      await runner.close?.();
    }
  }, 30_000);
});
