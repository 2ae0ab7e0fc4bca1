// `custom`: a user's gRPC trigger server speaking upstream's protocol (custom-trigger.proto):
// FetchResource with the template's `spec` as YAML, the trigger's `parameters` applied to the
// fetched resource when it is JSON, Execute with the resource and the `payload` JSON, then
// ApplyPolicy on the answer. Every call carries the idempotency key ("idempotency-key" metadata)
// and `traceparent`, so a server can make a repeat harmless; in this process one Execute per
// key (RecentKeys). gRPC statuses map to the runtime's retry rules: UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED, ABORTED, INTERNAL and UNKNOWN are transient; UNAUTHENTICATED,
// PERMISSION_DENIED and UNIMPLEMENTED mean the setup is wrong; others reject the input.
// ApplyPolicy answering success=false fails the trigger (dead-letter; upstream only logs it), and
// a server without ApplyPolicy (UNIMPLEMENTED) passes. A retry after Execute succeeded but
// ApplyPolicy failed skips Execute and asks the policy again with the kept answer, so success is
// reported only once the policy's verdict is known. One channel per server, TLS and CA.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { stringify } from 'yaml';
import type { CustomTrigger } from '../../api/sensor.ts';
import { RecentKeys } from './recent-keys.ts';
import { type TriggerContext, TriggerError, type TriggerRunner } from './trigger.ts';

type Spec = import('zod').infer<typeof CustomTrigger>;
type Unary<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => void;
type TriggerClient = grpc.Client & {
  FetchResource: Unary<{ resource: Buffer }, { resource: Buffer }>;
  Execute: Unary<{ resource: Buffer; payload: Buffer }, { response: Buffer }>;
  ApplyPolicy: Unary<{ request: Buffer }, { success: boolean; message: string }>;
};
type Ctor = new (
  address: string,
  creds: grpc.ChannelCredentials,
  opts?: grpc.ChannelOptions,
) => TriggerClient;

const CALL_TIMEOUT_MS = 30_000;
let ctor: Ctor | undefined;

function triggerClient(): Ctor {
  if (!ctor) {
    const def = loadSync(fileURLToPath(new URL('./custom-trigger.proto', import.meta.url)), {
      keepCase: true,
      defaults: true,
    });
    ctor = (grpc.loadPackageDefinition(def) as unknown as { triggers: { Trigger: Ctor } }).triggers.Trigger;
  }
  return ctor;
}

const TRANSIENT = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.ABORTED,
  grpc.status.INTERNAL,
  grpc.status.UNKNOWN,
  grpc.status.CANCELLED,
]);
const MISCONFIGURED = new Set([
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNIMPLEMENTED,
]);

/** The TriggerError a gRPC status stands for. */
export function classifyStatus(err: grpc.ServiceError, what: string): TriggerError {
  const text = `${what}: ${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`;
  if (TRANSIENT.has(err.code)) return new TriggerError('Transient', text, { cause: err });
  if (MISCONFIGURED.has(err.code)) return new TriggerError('Misconfigured', text, { cause: err });
  return new TriggerError('Rejected', text, { cause: err });
}

export function customTrigger(): TriggerRunner<Spec> {
  const clients = new Map<string, TriggerClient>();
  /** Per server + key: Execute's answer (policy not yet known) or 'settled' (policy passed). */
  const done = new RecentKeys<Buffer | 'settled'>();

  const clientFor = async (spec: Spec, ctx: TriggerContext): Promise<TriggerClient> => {
    const id = JSON.stringify([
      spec.serverURL,
      !!spec.secure,
      spec.certSecret ?? null,
      spec.serverNameOverride ?? null,
    ]);
    let c = clients.get(id);
    if (!c) {
      let creds = grpc.credentials.createInsecure();
      if (spec.secure) {
        if (!spec.certSecret)
          throw new TriggerError('Misconfigured', 'custom trigger: secure is set but certSecret is not');
        creds = grpc.credentials.createSsl(Buffer.from(await ctx.resolveSecret(spec.certSecret)));
      }
      const Client = triggerClient();
      c = new Client(
        spec.serverURL,
        creds,
        spec.serverNameOverride ? { 'grpc.ssl_target_name_override': spec.serverNameOverride } : {},
      );
      clients.set(id, c);
    }
    return c;
  };

  const call = <Req, Res>(
    client: TriggerClient,
    method: 'FetchResource' | 'Execute' | 'ApplyPolicy',
    req: Req,
    ctx: TriggerContext,
  ) =>
    new Promise<Res>((resolve, reject) => {
      const md = new grpc.Metadata();
      md.set('idempotency-key', ctx.idempotencyKey);
      if (ctx.traceparent) md.set('traceparent', ctx.traceparent);
      const fn = client[method].bind(client) as unknown as Unary<Req, Res>;
      const handle = { cancel: () => {} };
      const onAbort = () => handle.cancel();
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      const c = fn(req, md, { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, res) => {
        ctx.signal.removeEventListener('abort', onAbort);
        if (err)
          reject(classifyStatus(err, `custom trigger ${method} on ${client.getChannel().getTarget()}`));
        else resolve(res);
      }) as unknown as grpc.ClientUnaryCall | undefined;
      if (c) handle.cancel = () => c.cancel();
    });

  /** FetchResource, parameters, Execute: the server's answer. */
  const execute = async (client: TriggerClient, spec: Spec, ctx: TriggerContext): Promise<Buffer> => {
    const fetched = await call<{ resource: Buffer }, { resource: Buffer }>(
      client,
      'FetchResource',
      { resource: Buffer.from(stringify(spec.spec ?? {})) },
      ctx,
    );
    let resource = Buffer.from(fetched.resource ?? []);
    if (spec.parameters?.length) {
      let obj: unknown;
      try {
        obj = JSON.parse(resource.toString('utf8'));
      } catch {
        throw new TriggerError(
          'Rejected',
          'custom trigger: the fetched resource is not JSON, so parameters cannot apply',
        );
      }
      resource = Buffer.from(JSON.stringify(ctx.applyParameters(obj, spec.parameters)));
    }
    const payload = spec.payload?.length
      ? Buffer.from(JSON.stringify(ctx.buildPayload(spec.payload)))
      : Buffer.alloc(0);
    const executed = await call<{ resource: Buffer; payload: Buffer }, { response: Buffer }>(
      client,
      'Execute',
      { resource, payload },
      ctx,
    );
    return Buffer.from(executed.response ?? []);
  };

  /** ApplyPolicy: resolves when it passes (or the server has none), else a TriggerError. */
  const applyPolicy = async (client: TriggerClient, response: Buffer, ctx: TriggerContext): Promise<void> => {
    try {
      const verdict = await call<{ request: Buffer }, { success: boolean; message: string }>(
        client,
        'ApplyPolicy',
        { request: response },
        ctx,
      );
      if (!verdict.success) {
        throw new TriggerError(
          'Rejected',
          `custom trigger: the server's policy judged the result a failure: ${verdict.message}`,
        );
      }
    } catch (err) {
      const unimplemented =
        err instanceof TriggerError &&
        (err.cause as grpc.ServiceError | undefined)?.code === grpc.status.UNIMPLEMENTED;
      if (!unimplemented) throw err;
    }
  };

  return {
    type: 'custom',
    async fire(spec, ctx) {
      const dedupe = `${spec.serverURL}\u0000${ctx.idempotencyKey}`;
      const prior = done.get(dedupe);
      if (prior === 'settled')
        return { detail: `already executed on ${spec.serverURL} (same idempotency key)` };
      const client = await clientFor(spec, ctx);
      const response = prior ?? (await execute(client, spec, ctx));
      // Kept before the policy call: a retry after a failed ApplyPolicy does not Execute again.
      done.set(dedupe, response);
      await applyPolicy(client, response, ctx);
      done.set(dedupe, 'settled');
      return {
        detail: `${prior ? 'policy passed for the earlier execution' : 'executed'} on ${spec.serverURL} (${response.length} bytes answered)`,
      };
    },
    async close() {
      for (const c of clients.values()) c.close();
      clients.clear();
    },
  };
}
