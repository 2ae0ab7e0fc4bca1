// `bitbucketserver` (Bitbucket Server / Data Center): X-Hub-Signature ("sha256=<hex>" HMAC of the
// raw body) checked with webhookSecret; {headers, body, metadata} (as upstream) published with X-Request-Id as the event
// id. oneEventPerChange splits a repo:refs_changed delivery into one event per change (ids
// "<request id>-<index>"); skipBranchRefsChangedOnOpenPR drops branch updates that have an open
// pull request (asked through the API; when it cannot be asked, the change is kept). The project
// and repository asked about come from the delivery, which may be unsigned: they must look like a
// project key and a repository slug (no "/", no ".."), or nothing is asked; and the asking is
// bounded per delivery (MAX_PR_LOOKUPS calls, PR_LOOKUP_BUDGET_MS in all, each call at most
// PR_LOOKUP_TIMEOUT_MS): past a bound the remaining changes are kept unchecked. The published body
// is the delivery's text as sent, with `changes` cut down when changes are dropped or split. With
// accessToken the hook is registered on the listed repositories and on every repository of the
// listed projects, and re-checked every checkInterval (default 1m).
import type { BitbucketServerEventSource } from '../../api/eventsource.ts';
import { parseDurationMs } from '../../api/stream-config.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { elements, member, members, type RawJson, withMember } from '../raw-json.ts';
import { MAX_EVENTS_PER_DELIVERY } from './exchange.ts';
import { type ApiCall, apiClient, clientTls, type HookSite, registerIfConfigured } from './hooks.ts';
import type { Prepared, StandardPayload } from './route.ts';
import {
  addSignedRoute,
  checkHubSignature,
  codeHostPayload,
  header,
  idFrom,
  optionalSecret,
} from './signed.ts';

interface Paged<T> {
  values?: T[];
  isLastPage?: boolean;
  nextPageStart?: number;
}

interface ServerHook {
  id: number;
  url?: string;
}

interface RefChange {
  ref?: { id?: string; type?: string };
  refId?: string;
  type?: string;
}

/** Most pull-request lookups one delivery may cause. */
export const MAX_PR_LOOKUPS = 20;
/** Time all lookups of one delivery may take together (ms). */
export const PR_LOOKUP_BUDGET_MS = 5_000;
/** Longest wait for one lookup (ms). */
export const PR_LOOKUP_TIMEOUT_MS = 2_500;

/** A project key or repository slug as Bitbucket Server makes them (never a path). */
const NAME = /^[A-Za-z0-9_~-][A-Za-z0-9_.~-]*$/;
const safeName = (v: unknown): v is string => typeof v === 'string' && NAME.test(v) && !v.includes('..');

/** All items of a Bitbucket Server paged collection (`start` / `isLastPage`). */
async function allValues<T>(call: ApiCall, path: string): Promise<T[]> {
  const out: T[] = [];
  let start = 0;
  for (let i = 0; i < 100; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const page = (await call<Paged<T>>('GET', `${path}${sep}limit=100&start=${start}`)).body;
    out.push(...(page.values ?? []));
    if (page.isLastPage !== false || page.nextPageStart === undefined) break;
    start = page.nextPageStart;
  }
  return out;
}

const repoPath = (projectKey: string, slug: string) =>
  `/projects/${encodeURIComponent(projectKey)}/repos/${encodeURIComponent(slug)}`;

async function serverRepos(
  spec: BitbucketServerEventSource,
  call: ApiCall,
): Promise<Array<{ projectKey: string; repositorySlug: string }>> {
  const repos = [...(spec.repositories ?? [])];
  if (spec.projectKey && spec.repositorySlug) {
    repos.push({ projectKey: spec.projectKey, repositorySlug: spec.repositorySlug });
  }
  for (const key of spec.projects ?? []) {
    const list = await allValues<{ slug: string }>(call, `/projects/${encodeURIComponent(key)}/repos`);
    for (const r of list) repos.push({ projectKey: key, repositorySlug: r.slug });
  }
  const seen = new Set<string>();
  return repos.filter((r) => {
    const k = `${r.projectKey}/${r.repositorySlug}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function serverSites(
  spec: BitbucketServerEventSource,
  repos: Array<{ projectKey: string; repositorySlug: string }>,
  call: ApiCall,
  secret: string | undefined,
): HookSite[] {
  return repos.map(({ projectKey, repositorySlug }) => {
    const path = `${repoPath(projectKey, repositorySlug)}/webhooks`;
    return {
      label: `${projectKey}/${repositorySlug}`,
      exists: async (url) => (await allValues<ServerHook>(call, path)).some((h) => h.url === url),
      async create(url) {
        const made = await call<ServerHook>('POST', path, {
          name: 'sluice',
          url,
          active: true,
          events: spec.events?.length ? spec.events : ['repo:refs_changed'],
          ...(secret ? { configuration: { secret } } : {}),
        });
        return async () => void (await call('DELETE', `${path}/${made.body.id}`));
      },
    };
  });
}

/** True when a branch has an open pull request from it. */
async function hasOpenPR(call: ApiCall, projectKey: string, slug: string, ref: string): Promise<boolean> {
  const q = new URLSearchParams({ state: 'OPEN', direction: 'OUTGOING', at: ref, limit: '1' });
  const res = await call<Paged<unknown>>('GET', `${repoPath(projectKey, slug)}/pull-requests?${q}`);
  return (res.body.values?.length ?? 0) > 0;
}

export const bitbucketserver: SourceAdapter<BitbucketServerEventSource> = {
  type: 'bitbucketserver',
  exclusive: false,
  async start(ctx: SourceContext<BitbucketServerEventSource>) {
    const spec = ctx.spec;
    const key = await optionalSecret(ctx, spec.webhookSecret);
    const token = await optionalSecret(ctx, spec.accessToken);
    const call = apiClient({
      base: `${spec.bitbucketserverBaseURL.replace(/\/+$/, '')}/api/1.0`,
      headers: (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {}),
      tls: await clientTls(ctx, spec.tls),
    });

    const lookup = apiClient({
      base: `${spec.bitbucketserverBaseURL.replace(/\/+$/, '')}/api/1.0`,
      headers: (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {}),
      tls: await clientTls(ctx, spec.tls),
      timeoutMs: PR_LOOKUP_TIMEOUT_MS,
    });

    /** Changes kept by skipBranchRefsChangedOnOpenPR (all when it is off or cannot ask). */
    const keptChanges = async (body: unknown, changes: RawJson[]): Promise<number[]> => {
      const all = changes.map((_, i) => i);
      if (!spec.skipBranchRefsChangedOnOpenPR || !token) return all;
      const repo = members(member(body, 'repository'));
      const project = members(repo?.get('project'))?.get('key')?.value;
      const slug = repo?.get('slug')?.value;
      if (!safeName(project) || !safeName(slug)) return all;
      const started = Date.now();
      let calls = 0;
      const kept: number[] = [];
      for (const [i, raw] of changes.entries()) {
        const change = raw.value as RefChange | null;
        const ref = change?.ref?.id ?? change?.refId;
        const ask = typeof ref === 'string' && change?.ref?.type === 'BRANCH' && change.type === 'UPDATE';
        if (ask && calls < MAX_PR_LOOKUPS && Date.now() - started < PR_LOOKUP_BUDGET_MS) {
          calls++;
          try {
            if (await hasOpenPR(lookup, project, slug, ref)) continue;
          } catch (err) {
            ctx.log.warn(
              { ref, err: (err as Error).message },
              'bitbucketserver: could not look up open pull requests; keeping the change',
            );
          }
        }
        kept.push(i);
      }
      return kept;
    };

    const prepare = async (
      h: Parameters<typeof idFrom>[0],
      body: unknown,
      _raw: Buffer,
      standard: StandardPayload,
    ): Promise<Prepared> => {
      const id = idFrom(h, 'x-request-id').id;
      const whole = codeHostPayload(standard);
      const asIs: Prepared = { ...(id ? { id } : {}), data: whole };
      if (!spec.oneEventPerChange && !spec.skipBranchRefsChangedOnOpenPR) return asIs;
      if (member(body, 'eventKey')?.value !== 'repo:refs_changed') return asIs;
      const changes = elements(member(body, 'changes'));
      if (!changes) return asIs;
      // Each change may cost an API call and becomes an event: bounded, not amplified.
      if (changes.length > MAX_EVENTS_PER_DELIVERY) {
        throw new Error(`more than ${MAX_EVENTS_PER_DELIVERY} changes in one delivery`);
      }
      const kept = await keptChanges(body, changes);
      // The body as sent, with `changes` holding only these.
      const withChanges = (which: number[]) => ({
        ...whole,
        body: withMember(body as RawJson, 'changes', `[${which.map((i) => changes[i]!.text).join(',')}]`),
      });
      if (!spec.oneEventPerChange) {
        if (kept.length === 0) return { reply: { status: 200, body: 'no change left to publish\n' } };
        if (kept.length === changes.length) return asIs;
        return { ...asIs, data: withChanges(kept) };
      }
      return { events: kept.map((i) => ({ ...(id ? { id: `${id}-${i}` } : {}), data: withChanges([i]) })) };
    };

    await addSignedRoute(ctx, {
      ...(key ? { verify: (h, raw) => checkHubSignature(key, raw, header(h, 'x-hub-signature')) } : {}),
      prepare,
    });

    const recheck = parseDurationMs(spec.checkInterval ?? '1m') || 60_000;
    const hooks = token
      ? await registerIfConfigured(
          ctx,
          spec.webhook,
          async () => serverSites(spec, await serverRepos(spec, call), call, key),
          recheck,
        )
      : undefined;
    return {
      async stop() {
        if (spec.deleteHookOnFinish) await hooks?.remove();
        else hooks?.stop();
      },
    };
  },
};
