// `bitbucket` (Bitbucket Cloud): webhook deliveries published as {headers, body, metadata} (as upstream) with
// X-Request-UUID as the event id (not X-Hook-UUID: that names the hook, the same on every
// delivery). The upstream spec has no shared secret for Bitbucket Cloud, so deliveries are not
// verified (webhook.authSecret can still demand a bearer token from whatever proxies them). With
// `auth` (app password or OAuth token) the hook is registered on the listed repositories through
// the 2.0 API (SLUICE_BITBUCKET_API_URL overrides its base URL, e.g. for a proxy or a test).
import type { BitbucketEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { type ApiCall, apiClient, type HookSite, registerIfConfigured } from './hooks.ts';
import { addSignedRoute, codeHostPayload, idFrom } from './signed.ts';

export const BITBUCKET_API = 'https://api.bitbucket.org/2.0';

interface BitbucketHook {
  uuid: string;
  url?: string;
}

interface Page<T> {
  values?: T[];
  next?: string;
}

async function authHeader(ctx: SourceContext<BitbucketEventSource>): Promise<string | undefined> {
  const auth = ctx.spec.auth;
  if (auth?.oauthToken) return `Bearer ${(await ctx.resolveSecret(auth.oauthToken)).trim()}`;
  if (auth?.basic) {
    const user = (await ctx.resolveSecret(auth.basic.username)).trim();
    const pass = (await ctx.resolveSecret(auth.basic.password)).trim();
    return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }
  return undefined;
}

export function bitbucketRepos(spec: BitbucketEventSource): Array<{ owner: string; repositorySlug: string }> {
  const repos = [...(spec.repositories ?? [])];
  if (spec.owner && spec.repositorySlug)
    repos.push({ owner: spec.owner, repositorySlug: spec.repositorySlug });
  return repos;
}

function bitbucketSites(spec: BitbucketEventSource, call: ApiCall): HookSite[] {
  return bitbucketRepos(spec).map(({ owner, repositorySlug }) => {
    const path = `/repositories/${encodeURIComponent(owner)}/${encodeURIComponent(repositorySlug)}/hooks`;
    return {
      label: `${owner}/${repositorySlug}`,
      async exists(url) {
        let next: string | undefined = `${path}?pagelen=100`;
        for (let i = 0; next && i < 50; i++) {
          const page: Page<BitbucketHook> = (await call<Page<BitbucketHook>>('GET', next)).body;
          if (page.values?.some((h) => h.url === url)) return true;
          next = page.next;
        }
        return false;
      },
      async create(url) {
        const made = await call<BitbucketHook>('POST', path, {
          description: 'sluice event source',
          url,
          active: true,
          events: spec.events?.length ? spec.events : ['repo:push'],
        });
        return async () => void (await call('DELETE', `${path}/${encodeURIComponent(made.body.uuid)}`));
      },
    };
  });
}

export const bitbucket: SourceAdapter<BitbucketEventSource> = {
  type: 'bitbucket',
  exclusive: false,
  async start(ctx) {
    await addSignedRoute(ctx, {
      prepare: (h, _body, _raw, standard) => ({
        ...idFrom(h, 'x-request-uuid'),
        data: codeHostPayload(standard),
      }),
    });
    const auth = await authHeader(ctx);
    const call = apiClient({
      base: process.env.SLUICE_BITBUCKET_API_URL || BITBUCKET_API,
      headers: (): Record<string, string> => (auth ? { authorization: auth } : {}),
    });
    const hooks = auth
      ? await registerIfConfigured(ctx, ctx.spec.webhook, async () => bitbucketSites(ctx.spec, call))
      : undefined;
    return {
      async stop() {
        if (ctx.spec.deleteHookOnFinish) await hooks?.remove();
        else hooks?.stop();
      },
    };
  },
};
