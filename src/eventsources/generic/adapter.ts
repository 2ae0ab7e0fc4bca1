// `generic`: a user's gRPC server that speaks upstream's generic protocol (generic.proto here):
// one StartEventSource call per entry, whose answer stream carries the events. The stream is
// paused while an event is being stored (HTTP/2 flow control then holds the server back) and the
// publish retried with backoff while the bus refuses, so nothing read is dropped. When the
// stream ends or fails, the call is made again with backoff (500 ms doubling to 30 s). The
// protocol has no acknowledgement and no event id: each received message gets one random id,
// kept for every retry of its publish (so a publish whose outcome was unknown, retried, is
// stored once); what the server sends again after a reconnect is a new event, and what was in
// flight when this process died is the server's to resend. A message the bus refuses for good
// (too large) is counted, logged and dropped: the protocol has no way to answer it. `authSecret` is sent as "authorization: Bearer <token>"; a server that
// answers UNAUTHENTICATED or PERMISSION_DENIED on the first call fails the start with a clear
// error. Every replica would get the same events: the source runs in the elected replica only.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { GenericEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { parseJsonText } from '../json.ts';
import { Backoff, pause, reportRefusal, storeHeld } from '../retry.ts';

interface GenericEvent {
  name: string;
  payload: Buffer;
}

type EventingClient = grpc.Client & {
  StartEventSource(
    req: { name: string; config: Buffer },
    md: grpc.Metadata,
  ): grpc.ClientReadableStream<GenericEvent>;
};

let clientCtor: (new (address: string, creds: grpc.ChannelCredentials) => EventingClient) | undefined;

function eventingClient(): new (address: string, creds: grpc.ChannelCredentials) => EventingClient {
  if (!clientCtor) {
    const def = loadSync(fileURLToPath(new URL('./generic.proto', import.meta.url)), {
      keepCase: true,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      generic: { Eventing: new (a: string, c: grpc.ChannelCredentials) => EventingClient };
    };
    clientCtor = pkg.generic.Eventing;
  }
  return clientCtor;
}

const FATAL = new Set([
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNIMPLEMENTED,
]);
const FIRST_ANSWER_MS = 5_000;

function body(ctx: SourceContext<GenericEventSource>, ev: GenericEvent): { body: unknown } | undefined {
  const text = Buffer.from(ev.payload ?? []).toString('utf8');
  if (!ctx.spec.jsonBody) return { body: text };
  try {
    return { body: parseJsonText(text) };
  } catch {
    ctx.processingFailed('invalid-json');
    ctx.log.warn({ name: ev.name }, 'generic: event payload is not JSON although jsonBody is set; dropped');
    return undefined;
  }
}

export const adapter: SourceAdapter<GenericEventSource> = {
  type: 'generic',
  exclusive: true,
  async start(ctx) {
    const spec = ctx.spec;
    const Ctor = eventingClient();
    const client = new Ctor(
      spec.url,
      spec.insecure ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(),
    );
    const md = new grpc.Metadata();
    if (spec.authSecret)
      md.set('authorization', `Bearer ${(await ctx.resolveSecret(spec.authSecret)).trim()}`);
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, ctx.signal]);
    let current: grpc.ClientReadableStream<GenericEvent> | undefined;

    const store = async (ev: GenericEvent): Promise<void> => {
      const decoded = body(ctx, ev);
      if (!decoded) return;
      const data = {
        body: decoded.body,
        ...(spec.metadata && Object.keys(spec.metadata).length ? { metadata: spec.metadata } : {}),
      };
      // One id per received message, the same on every retry: a retry after an unknown outcome
      // (publish deadline passed while the bus was stalled) dedupes on the bus.
      const id = randomUUID();
      const r = await storeHeld(() => ctx.emit(data, { id }), {
        signal,
        onHold: (err, waitMs) =>
          ctx.log.warn(
            { id, err: (err as Error).message, retryInMs: waitMs },
            'generic: event not stored; stream paused, retrying',
          ),
      });
      if (r.outcome === 'refused') reportRefusal(ctx, { id, name: ev.name }, r.err, 'dropped');
    };

    /** One call: resolves when its stream ends (with the error, if any). `onAnswer` fires on the first answer. */
    const call = (onAnswer: (err?: grpc.ServiceError) => void) =>
      new Promise<grpc.ServiceError | undefined>((resolve) => {
        const stream = client.StartEventSource(
          { name: ctx.eventName, config: Buffer.from(spec.config ?? '') },
          md,
        );
        current = stream;
        let chain = Promise.resolve();
        stream.on('metadata', () => onAnswer());
        stream.on('data', (ev: GenericEvent) => {
          onAnswer();
          stream.pause();
          chain = chain.then(() => store(ev)).finally(() => stream.resume());
        });
        stream.on('error', (err: grpc.ServiceError) => {
          onAnswer(err);
          void chain.then(() => resolve(err));
        });
        stream.on('end', () => void chain.then(() => resolve(undefined)));
      });

    let first: ((err?: grpc.ServiceError) => void) | undefined;
    const firstAnswer = new Promise<grpc.ServiceError | undefined>((resolve) => {
      first = resolve;
      setTimeout(() => resolve(undefined), FIRST_ANSWER_MS).unref();
    });
    const loop = (async () => {
      const backoff = new Backoff();
      while (!signal.aborted) {
        const err = await call((e) => {
          first?.(e);
          if (!e) backoff.reset();
        });
        if (signal.aborted) break;
        const wait = backoff.take();
        if (err && FATAL.has(err.code))
          ctx.log.error({ err: err.details, retryInMs: wait }, 'generic: server refused the call');
        else
          ctx.log.warn(
            { err: err?.details ?? 'stream ended', retryInMs: wait },
            'generic: stream closed; calling again',
          );
        await pause(wait, signal);
      }
    })();
    const refused = await firstAnswer;
    first = undefined;
    if (refused && FATAL.has(refused.code)) {
      stop.abort();
      current?.cancel();
      await loop;
      client.close();
      throw new Error(
        `generic ${spec.url}: ${grpc.status[refused.code]}: ${refused.details} (check authSecret)`,
      );
    }
    ctx.log.info({ url: spec.url }, 'generic: streaming');
    return {
      async stop() {
        stop.abort();
        current?.cancel();
        await loop;
        client.close();
      },
    };
  },
};
