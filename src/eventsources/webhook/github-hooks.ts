// Registers the GitHub webhook of a `github` event source through the REST API when `apiToken` is
// set: for each repository (or organization) it lists the hooks, creates one pointing at
// `webhook.url` + `webhook.endpoint` when none does, and leaves an existing one alone, so a
// restart or a second replica registers nothing twice. With `deleteHookOnFinish` the hooks it
// created are removed when the source stops. Failures are logged, not fatal: deliveries still
// arrive when the hook exists already. `githubApp` credentials are not supported yet.
import type { GithubEventSource } from '../../api/eventsource.ts';
import type { Logger } from '../../observability/logger.ts';

interface Hook {
  id: number;
  config?: { url?: string };
}

export interface HookRegistration {
  /** Hooks this process created (API paths), for deleteHookOnFinish. */
  created: string[];
  remove(): Promise<void>;
}

export function hookTargets(spec: GithubEventSource): string[] {
  const repos: string[] = [];
  for (const r of spec.repositories ?? [])
    for (const n of r.names) repos.push(`/repos/${r.owner}/${n}/hooks`);
  if (spec.owner && spec.repository) repos.push(`/repos/${spec.owner}/${spec.repository}/hooks`);
  for (const org of spec.organizations ?? []) repos.push(`/orgs/${org}/hooks`);
  return repos;
}

export async function registerGithubHooks(
  spec: GithubEventSource,
  token: string,
  secret: string | undefined,
  log: Logger,
): Promise<HookRegistration> {
  const base = (spec.githubBaseURL ?? 'https://api.github.com').replace(/\/+$/, '');
  const hook = spec.webhook;
  const url = hook?.url
    ? `${hook.url.replace(/\/+$/, '')}${hook.endpoint.startsWith('/') ? '' : '/'}${hook.endpoint}`
    : undefined;
  const created: string[] = [];
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/vnd.github+json',
        'x-github-api-version': '2022-11-28',
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
    return res.status === 204 ? undefined : res.json();
  };
  if (!url) {
    log.warn(
      'github: apiToken is set but webhook.url is not: cannot register the hook (set the public URL GitHub should call)',
    );
    return { created, remove: async () => {} };
  }
  for (const path of hookTargets(spec)) {
    try {
      const hooks = (await call('GET', `${path}?per_page=100`)) as Hook[];
      if (hooks.some((h) => h.config?.url === url)) {
        log.info({ path, url }, 'github: hook already registered');
        continue;
      }
      const made = (await call('POST', path, {
        name: 'web',
        active: spec.active ?? true,
        events: spec.events?.length ? spec.events : ['push'],
        config: {
          url,
          content_type: spec.contentType ?? 'json',
          insecure_ssl: spec.insecure ? '1' : '0',
          ...(secret ? { secret } : {}),
        },
      })) as Hook;
      created.push(`${path}/${made.id}`);
      log.info({ path, url, id: made.id }, 'github: hook registered');
    } catch (err) {
      log.error({ path, err: (err as Error).message }, 'github: could not register the hook');
    }
  }
  return {
    created,
    async remove() {
      for (const p of created) {
        try {
          await call('DELETE', p);
          log.info({ hook: p }, 'github: hook removed (deleteHookOnFinish)');
        } catch (err) {
          log.warn({ hook: p, err: (err as Error).message }, 'github: could not remove the hook');
        }
      }
    },
  };
}
