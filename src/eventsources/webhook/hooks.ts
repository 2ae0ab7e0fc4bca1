// Registering a source's webhook with the provider (GitHub, GitLab, Bitbucket Cloud and Server,
// Stripe). Every provider works the same way here: for each site (repository, project, group,
// organisation, account) list its hooks, create one pointing at the public URL when none does,
// leave an existing one alone. So a restart or a second replica creates nothing twice (two
// replicas starting at the same instant can still both create one: the providers offer no
// conditional create). Failures are logged and do not stop the source: deliveries still arrive
// when the hook exists already. With deleteHookOnFinish, the hooks this process created are
// removed when the source stops.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSConfig } from '../../api/common.ts';
import type { Logger } from '../../observability/logger.ts';
import type { SourceContext } from '../adapter.ts';

export class ApiError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

export interface ClientTls {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
}

export interface ApiResponse<T> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

/** A JSON REST client for one provider; `path` is appended to the base URL unless it is absolute. */
export type ApiCall = <T = unknown>(
  method: string,
  path: string,
  body?: unknown,
  opts?: { form?: boolean },
) => Promise<ApiResponse<T>>;

export function apiClient(o: {
  base: string;
  /** Fresh headers for every call (tokens that expire are renewed here). */
  headers: () => Record<string, string> | Promise<Record<string, string>>;
  tls?: ClientTls | undefined;
  timeoutMs?: number;
}): ApiCall {
  const base = o.base.replace(/\/+$/, '');
  return async <T>(method: string, path: string, body?: unknown, opts?: { form?: boolean }) => {
    const url = new URL(
      /^https?:\/\//.test(path) ? path : `${base}${path.startsWith('/') ? '' : '/'}${path}`,
    );
    let payload: string | undefined;
    let type: string | undefined;
    if (body !== undefined && opts?.form) {
      payload = formEncode(body as Record<string, string | string[]>);
      type = 'application/x-www-form-urlencoded';
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      type = 'application/json';
    }
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': 'sluice',
      ...(await o.headers()),
      ...(type ? { 'content-type': type, 'content-length': String(Buffer.byteLength(payload!)) } : {}),
    };
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const res = await new Promise<{ status: number; headers: ApiResponse<T>['headers']; text: string }>(
      (resolve, reject) => {
        const req = send(
          url,
          {
            method,
            headers,
            timeout: o.timeoutMs ?? 15_000,
            ...(url.protocol === 'https:' && o.tls ? o.tls : {}),
          },
          (r) => {
            const chunks: Buffer[] = [];
            r.on('data', (c: Buffer) => chunks.push(c));
            r.on('end', () =>
              resolve({
                status: r.statusCode ?? 0,
                headers: r.headers,
                text: Buffer.concat(chunks).toString('utf8'),
              }),
            );
            r.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error(`${method} ${url.pathname}: timed out`)));
        req.on('error', reject);
        req.end(payload);
      },
    );
    if (res.status < 200 || res.status > 299) {
      throw new ApiError(
        `${method} ${url.pathname}: HTTP ${res.status} ${res.text.slice(0, 200)}`.trim(),
        res.status,
      );
    }
    let parsed: unknown;
    try {
      parsed = res.text ? JSON.parse(res.text) : undefined;
    } catch {
      parsed = res.text;
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  };
}

/** Stripe-style form body: arrays become `key[]=a&key[]=b`. */
export function formEncode(body: Record<string, string | string[]>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(body)) {
    if (Array.isArray(v)) for (const x of v) q.append(`${k}[]`, x);
    else q.append(k, v);
  }
  return q.toString();
}

/** The URL the provider should call: `webhook.url` joined with `webhook.endpoint`. */
export function publicUrl(hook: { url?: string | undefined; endpoint: string }): string | undefined {
  if (!hook.url) return undefined;
  return `${hook.url.replace(/\/+$/, '')}${hook.endpoint.startsWith('/') ? '' : '/'}${hook.endpoint}`;
}

/** Client TLS options from an upstream TLSConfig (CA, client certificate, skip verification). */
export async function clientTls(
  ctx: Pick<SourceContext, 'resolveSecret'>,
  tls: TLSConfig | undefined,
): Promise<ClientTls | undefined> {
  if (!tls) return undefined;
  return {
    ...(tls.caCertSecret ? { ca: await ctx.resolveSecret(tls.caCertSecret) } : {}),
    ...(tls.clientCertSecret ? { cert: await ctx.resolveSecret(tls.clientCertSecret) } : {}),
    ...(tls.clientKeySecret ? { key: await ctx.resolveSecret(tls.clientKeySecret) } : {}),
    ...(tls.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
  };
}

/** One place a hook lives (a repository, project, group, organisation, account). */
export interface HookSite {
  /** For logs, e.g. "acme/shop". */
  label: string;
  /** True when a hook calling `url` exists there already. */
  exists(url: string): Promise<boolean>;
  /** Creates the hook; returns how to delete it again. */
  create(url: string): Promise<() => Promise<void>>;
}

export interface HookRegistration {
  /** Labels of the sites where this process created the hook. */
  created(): string[];
  /** Deletes the hooks this process created (deleteHookOnFinish) and stops re-checking. */
  remove(): Promise<void>;
  /** Stops re-checking without deleting anything. */
  stop(): void;
}

/**
 * Makes sure each site has a hook calling `url`, once now and, with `recheckMs`, again every
 * interval (re-creating one that was deleted on the provider's side).
 */
export async function ensureHooks(o: {
  provider: string;
  url: string;
  sites: () => Promise<HookSite[]>;
  log: Logger;
  recheckMs?: number | undefined;
}): Promise<HookRegistration> {
  const created = new Map<string, () => Promise<void>>();
  const pass = async (): Promise<void> => {
    let sites: HookSite[];
    try {
      sites = await o.sites();
    } catch (err) {
      o.log.error(
        { err: (err as Error).message },
        `${o.provider}: could not list where to register the hook`,
      );
      return;
    }
    for (const site of sites) {
      try {
        if (await site.exists(o.url)) {
          o.log.debug({ site: site.label, url: o.url }, `${o.provider}: hook already registered`);
          continue;
        }
        const remove = await site.create(o.url);
        // The latest one: a hook re-created after someone deleted it replaces the gone one.
        created.set(site.label, remove);
        o.log.info({ site: site.label, url: o.url }, `${o.provider}: hook registered`);
      } catch (err) {
        o.log.error(
          { site: site.label, err: (err as Error).message },
          `${o.provider}: could not register the hook`,
        );
      }
    }
  };
  await pass();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  if (o.recheckMs && o.recheckMs > 0) {
    timer = setInterval(() => {
      running ??= pass().finally(() => {
        running = undefined;
      });
    }, o.recheckMs);
    timer.unref();
  }
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  return {
    created: () => [...created.keys()],
    stop,
    async remove() {
      stop();
      await running;
      for (const [label, remove] of created) {
        try {
          await remove();
          o.log.info({ site: label }, `${o.provider}: hook removed (deleteHookOnFinish)`);
        } catch (err) {
          o.log.warn(
            { site: label, err: (err as Error).message },
            `${o.provider}: could not remove the hook`,
          );
        }
      }
      created.clear();
    },
  };
}

/**
 * Starts registration when the source has credentials; logs why not when it has them but no
 * public URL. Returns undefined when nothing is registered.
 */
export async function registerIfConfigured(
  ctx: Pick<SourceContext<unknown>, 'log' | 'type'>,
  hook: { url?: string | undefined; endpoint: string },
  sites: () => Promise<HookSite[]>,
  recheckMs?: number,
): Promise<HookRegistration | undefined> {
  const url = publicUrl(hook);
  if (!url) {
    ctx.log.warn(
      `${ctx.type}: credentials to register the hook are set but webhook.url is not; set the public base URL the provider should call`,
    );
    return undefined;
  }
  return ensureHooks({ provider: ctx.type, url, sites, log: ctx.log, recheckMs });
}

/** Follows page-number pagination until a short page (GitHub `page`, GitLab `page`). */
export async function allPages<T>(
  call: ApiCall,
  path: string,
  perPage = 100,
  pick: (body: unknown) => T[] = (b) => (Array.isArray(b) ? (b as T[]) : []),
): Promise<T[]> {
  const out: T[] = [];
  for (let page = 1; page <= 50; page++) {
    const sep = path.includes('?') ? '&' : '?';
    const items = pick((await call('GET', `${path}${sep}per_page=${perPage}&page=${page}`)).body);
    out.push(...items);
    if (items.length < perPage) break;
  }
  return out;
}
