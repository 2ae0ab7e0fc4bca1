// `gitlab`: GitLab webhook deliveries. X-Gitlab-Token must equal secretToken (when set); the
// token header is not published. {headers, body, metadata} (as upstream) is published under X-Gitlab-Event-UUID (or
// Idempotency-Key) as the event id. With projects or groups listed, the hook is registered with
// accessToken through the REST API of gitlabBaseURL.
import type { GitlabEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter } from '../adapter.ts';
import { type ApiCall, allPages, apiClient, type HookSite, registerIfConfigured } from './hooks.ts';
import { addSignedRoute, checkToken, codeHostPayload, header, idFrom, optionalSecret } from './signed.ts';

/** Upstream event names ("PushEvents", "MergeRequestsEvents") as GitLab hook fields ("push_events"). */
export function gitlabEventField(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

interface GitlabHook {
  id: number;
  url?: string;
}

function gitlabSites(spec: GitlabEventSource, call: ApiCall, token: string | undefined): HookSite[] {
  const fields: Record<string, boolean> = { push_events: false };
  for (const e of spec.events) fields[gitlabEventField(e)] = true;
  const paths = [
    ...(spec.projects ?? (spec.projectID ? [spec.projectID] : [])).map(
      (p) => [p, `/projects/${encodeURIComponent(p)}/hooks`] as const,
    ),
    ...(spec.groups ?? []).map((g) => [`group ${g}`, `/groups/${encodeURIComponent(g)}/hooks`] as const),
  ];
  return paths.map(([label, path]) => ({
    label,
    exists: async (url) => (await allPages<GitlabHook>(call, path)).some((h) => h.url === url),
    async create(url) {
      const made = await call<GitlabHook>('POST', path, {
        url,
        ...fields,
        enable_ssl_verification: spec.enableSSLVerification ?? false,
        ...(token ? { token } : {}),
      });
      return async () => void (await call('DELETE', `${path}/${made.body.id}`));
    },
  }));
}

export const gitlab: SourceAdapter<GitlabEventSource> = {
  type: 'gitlab',
  exclusive: false,
  async start(ctx) {
    const token = await optionalSecret(ctx, ctx.spec.secretToken);
    await addSignedRoute(ctx, {
      ...(token ? { verify: (h) => checkToken(token, header(h, 'x-gitlab-token'), 'X-Gitlab-Token') } : {}),
      hideHeaders: ['x-gitlab-token'],
      prepare: (h, _body, _raw, standard) => ({
        ...idFrom(h, 'x-gitlab-event-uuid', 'idempotency-key'),
        data: codeHostPayload(standard),
      }),
    });
    const wanted =
      (ctx.spec.projects?.length ?? 0) + (ctx.spec.groups?.length ?? 0) > 0 || !!ctx.spec.projectID;
    let hooks: Awaited<ReturnType<typeof registerIfConfigured>>;
    if (wanted) {
      const access = await ctx.resolveSecret(ctx.spec.accessToken);
      const call = apiClient({
        base: `${ctx.spec.gitlabBaseURL.replace(/\/+$/, '')}/api/v4`,
        headers: () => ({ 'private-token': access.trim() }),
      });
      hooks = await registerIfConfigured(ctx, ctx.spec.webhook, async () =>
        gitlabSites(ctx.spec, call, token),
      );
    }
    return {
      async stop() {
        if (ctx.spec.deleteHookOnFinish) await hooks?.remove();
        else hooks?.stop();
      },
    };
  },
};
