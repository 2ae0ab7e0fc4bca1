// gRPC servers of our own that speak upstream's `generic` EventSource and `custom` trigger
// protocols (the .proto files in src/), for the tests of those two: events are pushed to every
// open StartEventSource stream; trigger calls are recorded and answered as a test configures.
// Both check a bearer token when given one, and can be stopped and started again on their port.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { freePort } from './ports.ts';

const root = new URL('../../src/', import.meta.url);
function load<T>(rel: string): T {
  const def = loadSync(fileURLToPath(new URL(rel, root)), { keepCase: true, defaults: true });
  return grpc.loadPackageDefinition(def) as unknown as T;
}

type Service = { service: grpc.ServiceDefinition };

abstract class RestartableServer {
  port = 0;
  private server: grpc.Server | undefined;
  protected abstract register(server: grpc.Server): void;

  async start(): Promise<void> {
    if (!this.port) this.port = await freePort();
    const server = new grpc.Server();
    this.register(server);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${this.port}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    this.server = server;
  }

  /** Ends every call at once (as a crash would) and stops listening. */
  stop(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }
}

const authorized = (md: grpc.Metadata, token: string | undefined) =>
  !token || md.get('authorization')[0] === `Bearer ${token}`;

/** The `generic` side: `push` sends an event on every open stream. */
export class GenericEventServer extends RestartableServer {
  readonly token: string | undefined;
  readonly calls: Array<{ name: string; config: string }> = [];
  private readonly streams = new Set<grpc.ServerWritableStream<unknown, unknown>>();

  constructor(token?: string) {
    super();
    this.token = token;
  }

  protected register(server: grpc.Server): void {
    const pkg = load<{ generic: { Eventing: Service } }>('eventsources/generic/generic.proto');
    server.addService(pkg.generic.Eventing.service, {
      StartEventSource: (call: grpc.ServerWritableStream<{ name: string; config: Buffer }, unknown>) => {
        if (!authorized(call.metadata, this.token)) {
          call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'bad token' });
          return;
        }
        this.calls.push({ name: call.request.name, config: Buffer.from(call.request.config).toString() });
        call.sendMetadata(new grpc.Metadata());
        this.streams.add(call);
        call.on('cancelled', () => this.streams.delete(call));
        call.on('close', () => this.streams.delete(call));
      },
    });
  }

  get open(): number {
    return this.streams.size;
  }

  push(payload: string, name = 'ev'): void {
    for (const s of this.streams) s.write({ name, payload: Buffer.from(payload) });
  }

  override stop(): void {
    this.streams.clear();
    super.stop();
  }
}

export interface CustomCall {
  method: 'FetchResource' | 'Execute' | 'ApplyPolicy';
  resource?: string;
  payload?: string;
  metadata: Record<string, string>;
}

/** The `custom` trigger side: records calls; `fail` makes Execute answer with that gRPC status. */
export class CustomTriggerServer extends RestartableServer {
  readonly token: string | undefined;
  readonly calls: CustomCall[] = [];
  /** The resource FetchResource returns for a spec (default: the spec YAML echoed as JSON object). */
  resource = (spec: string): string => JSON.stringify({ spec, metadata: { namespace: 'default' } });
  fail: { code: grpc.status; times: number } | undefined;
  policy = { success: true, message: 'ok' };
  /** ApplyPolicy answers this status `times` times before answering `policy`. */
  policyFail: { code: grpc.status; times: number } | undefined;

  constructor(token?: string) {
    super();
    this.token = token;
  }

  protected register(server: grpc.Server): void {
    const pkg = load<{ triggers: { Trigger: Service } }>('sensors/triggers/custom-trigger.proto');
    const meta = (md: grpc.Metadata) =>
      Object.fromEntries(Object.entries(md.getMap()).map(([k, v]) => [k, String(v)]));
    type Unary<Req> = grpc.ServerUnaryCall<Req, unknown>;
    const guard = <Req>(call: Unary<Req>, cb: grpc.sendUnaryData<unknown>) => {
      if (authorized(call.metadata, this.token)) return true;
      cb({ code: grpc.status.UNAUTHENTICATED, details: 'bad token' });
      return false;
    };
    server.addService(pkg.triggers.Trigger.service, {
      FetchResource: (call: Unary<{ resource: Buffer }>, cb: grpc.sendUnaryData<unknown>) => {
        if (!guard(call, cb)) return;
        const spec = Buffer.from(call.request.resource).toString();
        this.calls.push({ method: 'FetchResource', resource: spec, metadata: meta(call.metadata) });
        cb(null, { resource: Buffer.from(this.resource(spec)) });
      },
      Execute: (call: Unary<{ resource: Buffer; payload: Buffer }>, cb: grpc.sendUnaryData<unknown>) => {
        if (!guard(call, cb)) return;
        this.calls.push({
          method: 'Execute',
          resource: Buffer.from(call.request.resource).toString(),
          payload: Buffer.from(call.request.payload).toString(),
          metadata: meta(call.metadata),
        });
        if (this.fail && this.fail.times > 0) {
          this.fail.times--;
          cb({ code: this.fail.code, details: 'failing as asked' });
          return;
        }
        cb(null, { response: Buffer.from(JSON.stringify({ done: true })) });
      },
      ApplyPolicy: (call: Unary<{ request: Buffer }>, cb: grpc.sendUnaryData<unknown>) => {
        if (!guard(call, cb)) return;
        this.calls.push({
          method: 'ApplyPolicy',
          resource: Buffer.from(call.request.request).toString(),
          metadata: meta(call.metadata),
        });
        if (this.policyFail && this.policyFail.times > 0) {
          this.policyFail.times--;
          cb({ code: this.policyFail.code, details: 'policy failing as asked' });
          return;
        }
        cb(null, this.policy);
      },
    });
  }
}
