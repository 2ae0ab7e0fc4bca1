// The custom trigger against a gRPC server of our own speaking upstream's trigger protocol:
// FetchResource gets the spec as YAML, parameters apply to the fetched JSON, Execute gets the
// resource and payload with the idempotency key as metadata, ApplyPolicy judges the answer;
// one Execute per idempotency key; UNAVAILABLE (server down) is transient and the next attempt
// after it is back succeeds; UNAUTHENTICATED is Misconfigured; a failed policy is Rejected; a
// retry after a transient ApplyPolicy failure asks the policy again without executing again
// (issue 20 review, 6).
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustomTrigger } from '../../../../src/api/sensor.ts';
import { customTrigger } from '../../../../src/sensors/triggers/custom.ts';
import { CustomTriggerServer } from '../../../harness/grpc-servers.ts';
import { waitFor } from '../../../harness/proc.ts';
import { makeCtx, triggerError } from './ctx.ts';

type Spec = import('zod').infer<typeof CustomTrigger>;
const data = { body: { namespace: 'team-a', order: 'A-7' } };

describe('custom trigger', () => {
  let server: CustomTriggerServer;
  beforeAll(async () => {
    server = new CustomTriggerServer();
    await server.start();
  });
  afterAll(() => server?.stop());

  const spec = (): Spec => ({
    serverURL: server.address,
    spec: { pipeline: 'build', url: 'https://example.invalid/p.yaml' },
    parameters: [{ src: { dependencyName: 'dep', dataKey: 'body.namespace' }, dest: 'metadata.namespace' }],
    payload: [{ src: { dependencyName: 'dep', dataKey: 'body.order' }, dest: 'order' }],
  });

  it('fetch, parameters, execute with payload and idempotency key, policy; once per key', async () => {
    server.calls.length = 0;
    const runner = customTrigger();
    const ctx = makeCtx({ data: { dep: data }, key: 'custom-key-1' });
    try {
      expect((await runner.fire(spec(), ctx)).detail).toMatch(/executed on/);
      expect((await runner.fire(spec(), { ...ctx, attempt: 2 })).detail).toMatch(/already executed/);
      expect(server.calls.map((c) => c.method)).toEqual(['FetchResource', 'Execute', 'ApplyPolicy']);
      const [fetch, exec, policy] = server.calls;
      expect(fetch!.resource).toBe('pipeline: build\nurl: https://example.invalid/p.yaml\n');
      expect(JSON.parse(exec!.resource!)).toMatchObject({ metadata: { namespace: 'team-a' } });
      expect(JSON.parse(exec!.payload!)).toEqual({ order: 'A-7' });
      expect(exec!.metadata['idempotency-key']).toBe('custom-key-1');
      expect(exec!.metadata.traceparent).toBe(ctx.traceparent);
      expect(JSON.parse(policy!.resource!)).toEqual({ done: true });
    } finally {
      await runner.close?.();
    }
  });

  it('server down: UNAVAILABLE is transient; after it is back the next attempt succeeds', async () => {
    const runner = customTrigger();
    try {
      server.stop();
      const err = await triggerError(runner.fire(spec(), makeCtx({ data: { dep: data } })), 'Transient');
      expect(err.message).toMatch(/UNAVAILABLE/);
      await server.start();
      // The channel reconnects with its own backoff; the Sensor's retryStrategy plays this part.
      await waitFor(
        'an attempt after the restart',
        async () => !!(await runner.fire(spec(), makeCtx({ data: { dep: data } }))),
        {
          timeoutMs: 20_000,
          intervalMs: 500,
        },
      );
    } finally {
      await runner.close?.();
    }
  });

  it('an Execute answered with a transient status retries as Transient; INVALID_ARGUMENT is Rejected', async () => {
    const runner = customTrigger();
    try {
      server.fail = { code: grpc.status.RESOURCE_EXHAUSTED, times: 1 };
      await triggerError(runner.fire(spec(), makeCtx({ data: { dep: data } })), 'Transient');
      server.fail = { code: grpc.status.INVALID_ARGUMENT, times: 1 };
      const err = await triggerError(runner.fire(spec(), makeCtx({ data: { dep: data } })), 'Rejected');
      expect(err.retryable).toBe(false);
    } finally {
      server.fail = undefined;
      await runner.close?.();
    }
  });

  it('a failed policy is Rejected; UNAUTHENTICATED and a secure setup without certSecret are Misconfigured', async () => {
    const runner = customTrigger();
    const guarded = new CustomTriggerServer('needs-a-token');
    await guarded.start();
    try {
      server.policy = { success: false, message: 'pipeline failed' };
      const err = await triggerError(runner.fire(spec(), makeCtx({ data: { dep: data } })), 'Rejected');
      expect(err.message).toMatch(/pipeline failed/);
      await triggerError(
        runner.fire({ ...spec(), serverURL: guarded.address }, makeCtx({ data: { dep: data } })),
        'Misconfigured',
      );
      await triggerError(
        runner.fire({ ...spec(), secure: true }, makeCtx({ data: { dep: data } })),
        'Misconfigured',
      );
    } finally {
      server.policy = { success: true, message: 'ok' };
      guarded.stop();
      await runner.close?.();
    }
  });

  it('after a transient ApplyPolicy failure the retry asks the policy again (no second Execute)', async () => {
    server.calls.length = 0;
    const runner = customTrigger();
    const ctx = makeCtx({ data: { dep: data }, key: 'policy-retry-key' });
    try {
      server.policyFail = { code: grpc.status.UNAVAILABLE, times: 1 };
      server.policy = { success: false, message: 'result is bad' };
      const first = await triggerError(runner.fire(spec(), ctx), 'Transient');
      expect(first.message).toMatch(/ApplyPolicy.*UNAVAILABLE/);
      const second = await triggerError(runner.fire(spec(), { ...ctx, attempt: 2 }), 'Rejected');
      expect(second.message).toMatch(/result is bad/);
      server.policy = { success: true, message: 'ok' };
      expect((await runner.fire(spec(), { ...ctx, attempt: 3 })).detail).toMatch(/policy passed/);
      expect((await runner.fire(spec(), { ...ctx, attempt: 4 })).detail).toMatch(/already executed/);
      expect(server.calls.map((c) => c.method)).toEqual([
        'FetchResource',
        'Execute',
        'ApplyPolicy',
        'ApplyPolicy',
        'ApplyPolicy',
      ]);
    } finally {
      server.policyFail = undefined;
      server.policy = { success: true, message: 'ok' };
      await runner.close?.();
    }
  });
});
