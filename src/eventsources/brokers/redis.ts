// `redis` (pub/sub channels, glob patterns allowed) and `redisStream` (streams read through a
// consumer group). Pub/sub is at most once, as Redis pub/sub itself is. Stream entries are
// acknowledged (XACK) only after the bus stored the event; an entry whose event could not be
// stored stays pending and is read again, and entries left pending by a consumer that went away
// are claimed after a minute. The event id of a stream entry is "<stream>:<entry id>", so an
// entry read twice is stored once.
import { hostname } from 'node:os';
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisEventSource, RedisStreamEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { parseJsonRaw } from '../json.ts';
import { isDefiniteRefusal, reportRefusal } from '../retry.ts';

type Common = Pick<RedisEventSource, 'hostAddress' | 'password' | 'db' | 'tls' | 'username'>;

async function options(ctx: SourceContext<unknown>, spec: Common): Promise<RedisOptions> {
  const [host, port] = spec.hostAddress.split(':');
  const tls = spec.tls;
  return {
    host: host || '127.0.0.1',
    port: Number(port || 6379),
    db: spec.db ?? 0,
    ...(spec.username ? { username: spec.username } : {}),
    ...(spec.password ? { password: (await ctx.resolveSecret(spec.password)).trim() } : {}),
    ...(tls && (tls.caCertSecret || tls.clientCertSecret || tls.insecureSkipVerify || tls.enabled)
      ? {
          tls: {
            ...(tls.caCertSecret ? { ca: await ctx.resolveSecret(tls.caCertSecret) } : {}),
            ...(tls.clientCertSecret ? { cert: await ctx.resolveSecret(tls.clientCertSecret) } : {}),
            ...(tls.clientKeySecret ? { key: await ctx.resolveSecret(tls.clientKeySecret) } : {}),
            ...(tls.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
          },
        }
      : {}),
    maxRetriesPerRequest: null,
    retryStrategy: (n) => Math.min(200 * 2 ** n, 10_000),
    lazyConnect: true,
  };
}

function body(raw: string, json: boolean | undefined): unknown {
  if (!json) return raw;
  return parseJsonRaw(raw);
}

export const redis: SourceAdapter<RedisEventSource> = {
  type: 'redis',
  exclusive: true,
  async start(ctx) {
    const spec = ctx.spec;
    const client = new Redis(await options(ctx, spec));
    await client.connect();
    // Emits run one at a time, in arrival order.
    let chain: Promise<void> = Promise.resolve();
    const onMessage = (pattern: string | undefined, channel: string, message: string) => {
      chain = chain.then(async () => {
        let data: unknown;
        try {
          data = body(message, spec.jsonBody);
        } catch {
          ctx.processingFailed('invalid-json');
          ctx.log.warn({ channel }, 'redis: message is not JSON although jsonBody is set; dropped');
          return;
        }
        try {
          await ctx.emit({
            channel,
            ...(pattern ? { pattern } : {}),
            body: data,
            ...(spec.metadata ? { metadata: spec.metadata } : {}),
          });
        } catch (err) {
          if (isDefiniteRefusal(err)) reportRefusal(ctx, { channel }, err, 'dropped');
          else
            ctx.log.warn(
              { channel, err: (err as Error).message },
              'redis: event not stored (pub/sub cannot redeliver)',
            );
        }
      });
    };
    client.on('pmessage', (pattern: string, channel: string, message: string) =>
      onMessage(pattern, channel, message),
    );
    client.on('message', (channel: string, message: string) => onMessage(undefined, channel, message));
    const globs = spec.channels.filter((c) => /[*?[]/.test(c));
    const plain = spec.channels.filter((c) => !/[*?[]/.test(c));
    if (plain.length) await client.subscribe(...plain);
    if (globs.length) await client.psubscribe(...globs);
    ctx.log.info({ channels: spec.channels }, 'redis: subscribed');
    return {
      async stop() {
        client.disconnect();
        await chain;
      },
    };
  },
};

const CLAIM_IDLE_MS = 60_000;

export const redisStream: SourceAdapter<RedisStreamEventSource> = {
  type: 'redisStream',
  // Consumer groups share the entries between replicas: running in every replica is safe.
  exclusive: false,
  async start(ctx) {
    const spec = ctx.spec;
    const group = spec.consumerGroup || 'argo-events-cg';
    const consumer = `${process.env.POD_NAME ?? hostname()}-${ctx.eventName}`;
    const count = spec.maxMsgCountPerRead ?? 10;
    const client = new Redis(await options(ctx, spec));
    await client.connect();
    for (const stream of spec.streams) {
      try {
        await client.xgroup('CREATE', stream, group, '$', 'MKSTREAM');
      } catch (err) {
        if (!/BUSYGROUP/.test((err as Error).message)) throw err;
      }
    }
    const stop = new AbortController();
    const sleep = (ms: number) =>
      new Promise<void>((r) => {
        const t = setTimeout(r, ms);
        stop.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            r();
          },
          { once: true },
        );
      });

    /** Publishes one entry; acks it only when stored. Returns false when the bus refused. */
    const handle = async (stream: string, id: string, fields: string[]): Promise<boolean> => {
      const values: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) values[fields[i]!] = fields[i + 1]!;
      try {
        await ctx.emit(
          { stream, id, values, ...(spec.metadata ? { metadata: spec.metadata } : {}) },
          { id: `${stream}:${id}` },
        );
      } catch (err) {
        if (!isDefiniteRefusal(err)) {
          ctx.log.warn(
            { stream, entry: id, err: (err as Error).message },
            'redisStream: event not stored; entry stays pending',
          );
          return false;
        }
        // Pending it would be read and refused again for ever: acked past, counted, logged.
        reportRefusal(ctx, { stream, entry: id }, err, 'acknowledged past it');
      }
      await client.xack(stream, group, id);
      return true;
    };

    type Entries = Array<[string, Array<[string, string[]]>]> | null;
    const loop = (async () => {
      let backlog = true; // first our own pending entries (e.g. after a crash), then new ones
      let lastClaim = 0;
      while (!stop.signal.aborted) {
        try {
          if (Date.now() - lastClaim > CLAIM_IDLE_MS / 2) {
            lastClaim = Date.now();
            for (const stream of spec.streams) {
              // Entries another consumer read and never acked (it died): take them over.
              await client.xautoclaim(stream, group, consumer, CLAIM_IDLE_MS, '0-0', 'COUNT', count);
            }
            backlog = true;
          }
          const args = [
            'GROUP',
            group,
            consumer,
            'COUNT',
            String(count),
            ...(backlog ? [] : ['BLOCK', '1000']),
            'STREAMS',
            ...spec.streams,
            ...spec.streams.map(() => (backlog ? '0' : '>')),
          ];
          const reply = (await client.call('XREADGROUP', ...args)) as unknown[] | null;
          // One stream comes back as [name, entries], several as [[name, entries], ...].
          const res = (reply && typeof reply[0] === 'string' ? [reply] : reply) as Entries;
          let read = 0;
          let refused = false;
          for (const [stream, entries] of res ?? []) {
            for (const [id, fields] of entries) {
              read++;
              if (!(await handle(stream, id, fields))) refused = true;
            }
          }
          if (backlog && read === 0) backlog = false;
          if (refused) {
            backlog = true;
            await sleep(1000);
          }
        } catch (err) {
          if (stop.signal.aborted) break;
          ctx.log.warn({ err: (err as Error).message }, 'redisStream: read failed; retrying');
          await sleep(1000);
        }
      }
    })();
    ctx.log.info({ streams: spec.streams, group, consumer }, 'redisStream: reading');
    return {
      async stop() {
        stop.abort();
        client.disconnect();
        await loop;
      },
    };
  },
};
