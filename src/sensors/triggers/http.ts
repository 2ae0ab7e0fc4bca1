// `http`: one request per attempt, with the idempotency key in `Idempotency-Key` and the trace
// context in `traceparent`. Success is any 2xx, or exactly the codes in `policy.status.allow`.
// 408, 429 and 5xx are transient (honouring Retry-After); other answers are a rejection that
// retrying the same request cannot fix. Keep-alive agents are reused across calls.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { HTTPTrigger, TriggerPolicy } from '../../api/sensor.ts';
import { type TriggerContext, TriggerError, type TriggerRunner } from './trigger.ts';

const DEFAULT_TIMEOUT_S = 60;
const MAX_ERROR_BODY = 512;

/** Seconds or an HTTP date → ms from now (undefined when absent or unreadable). */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** How an HTTP status is judged (pure). */
export function classifyStatus(
  status: number,
  allow: readonly number[] | undefined,
): 'ok' | 'Transient' | 'Rejected' {
  if (allow?.length ? allow.includes(status) : status >= 200 && status < 300) return 'ok';
  if (status === 408 || status === 429 || status >= 500) return 'Transient';
  return 'Rejected';
}

async function secureValue(
  ctx: TriggerContext,
  from: NonNullable<NonNullable<HTTPTrigger['secureHeaders']>[number]['valueFrom']>,
): Promise<string> {
  if (from.secretKeyRef) return ctx.resolveSecret(from.secretKeyRef);
  if (from.configMapKeyRef) return ctx.resolveConfigMap(from.configMapKeyRef);
  throw new TriggerError('Misconfigured', 'a secure header names neither a Secret nor a ConfigMap key');
}

export function httpTrigger(): TriggerRunner<HTTPTrigger> {
  const agents = {
    http: new HttpAgent({ keepAlive: true, maxSockets: 256 }),
    https: new Map<string, HttpsAgent>(),
  };

  const httpsAgent = async (spec: HTTPTrigger, ctx: TriggerContext): Promise<HttpsAgent> => {
    const tls = spec.tls;
    const key = JSON.stringify(tls ?? {});
    let agent = agents.https.get(key);
    if (!agent) {
      agent = new HttpsAgent({
        keepAlive: true,
        maxSockets: 256,
        ...(tls?.caCertSecret ? { ca: await ctx.resolveSecret(tls.caCertSecret) } : {}),
        ...(tls?.clientCertSecret ? { cert: await ctx.resolveSecret(tls.clientCertSecret) } : {}),
        ...(tls?.clientKeySecret ? { key: await ctx.resolveSecret(tls.clientKeySecret) } : {}),
        rejectUnauthorized: !tls?.insecureSkipVerify,
      });
      agents.https.set(key, agent);
    }
    return agent;
  };

  return {
    type: 'http',
    async fire(spec, ctx, policy) {
      const target = spec.url ?? spec.serverURL;
      let url: URL;
      try {
        url = new URL(target ?? '');
      } catch {
        throw new TriggerError('Misconfigured', `http trigger url ${JSON.stringify(target)} is not a URL`);
      }
      const method = spec.method ?? 'POST';
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'idempotency-key': ctx.idempotencyKey,
        ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}),
        ...(spec.headers ?? {}),
      };
      for (const h of spec.secureHeaders ?? []) {
        if (h.valueFrom) headers[h.name.toLowerCase()] = (await secureValue(ctx, h.valueFrom)).trim();
      }
      if (spec.dynamicHeaders?.length) {
        const dyn = ctx.buildPayload(spec.dynamicHeaders) as Record<string, unknown>;
        for (const [k, v] of Object.entries(dyn ?? {})) headers[k.toLowerCase()] = String(v);
      }
      if (spec.basicAuth?.username || spec.basicAuth?.password) {
        const user = spec.basicAuth.username ? await ctx.resolveSecret(spec.basicAuth.username) : '';
        const pass = spec.basicAuth.password ? await ctx.resolveSecret(spec.basicAuth.password) : '';
        headers.authorization = `Basic ${Buffer.from(`${user.trim()}:${pass.trim()}`).toString('base64')}`;
      }
      if (spec.host) headers.host = spec.host;
      const hasBody = method !== 'GET' && method !== 'HEAD';
      const body = hasBody ? Buffer.from(JSON.stringify(ctx.buildPayload(spec.payload) ?? {})) : undefined;
      if (body) headers['content-length'] = String(body.length);

      const timeoutMs = (spec.timeout || DEFAULT_TIMEOUT_S) * 1000;
      const isHttps = url.protocol === 'https:';
      if (!isHttps && url.protocol !== 'http:') {
        throw new TriggerError(
          'Misconfigured',
          `http trigger url must be http or https, not ${url.protocol}`,
        );
      }
      const agent = isHttps ? await httpsAgent(spec, ctx) : agents.http;
      const res = await new Promise<{ status: number; headers: IncomingMessage['headers']; text: string }>(
        (resolve, reject) => {
          const req = (isHttps ? httpsRequest : httpRequest)(
            url,
            { method, headers, agent, signal: ctx.signal, timeout: timeoutMs },
            (r) => {
              const chunks: Buffer[] = [];
              let size = 0;
              r.on('data', (c: Buffer) => {
                if (size < MAX_ERROR_BODY) chunks.push(c);
                size += c.length;
              });
              r.on('end', () =>
                resolve({
                  status: r.statusCode ?? 0,
                  headers: r.headers,
                  text: Buffer.concat(chunks).toString('utf8').slice(0, MAX_ERROR_BODY),
                }),
              );
              r.on('error', reject);
            },
          );
          req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)));
          req.on('error', (err) =>
            reject(
              new TriggerError('Transient', `${method} ${url.origin}${url.pathname}: ${err.message}`, {
                cause: err,
              }),
            ),
          );
          req.end(body);
        },
      );
      const allow = (policy as TriggerPolicy | undefined)?.status?.allow;
      const verdict = classifyStatus(res.status, allow);
      if (verdict === 'ok') return { detail: `HTTP ${res.status}` };
      const retryAfter = retryAfterMs(res.headers['retry-after'] as string | undefined);
      throw new TriggerError(
        verdict,
        `HTTP ${res.status} from ${method} ${url.origin}${url.pathname}${res.text ? `: ${res.text.trim()}` : ''}`,
        retryAfter === undefined ? {} : { retryAfterMs: retryAfter },
      );
    },
    async close() {
      agents.http.destroy();
      for (const a of agents.https.values()) a.destroy();
    },
  };
}
