// `github`: GitHub webhook deliveries. Verifies X-Hub-Signature-256 (or the legacy sha1
// X-Hub-Signature) with webhookSecret, publishes {headers, body, metadata} (as upstream) under X-GitHub-Delivery as the
// event id; a form-encoded delivery (content type `form`) publishes its JSON `payload` field. With apiToken or githubApp it registers the hook on the listed repositories or
// organisations through the REST API (githubBaseURL for GitHub Enterprise).
import { createSign } from 'node:crypto';
import type { GithubEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { MAX_JSON_NODES } from '../json.ts';
import { parseJson } from './decode.ts';
import { type ApiCall, allPages, apiClient, type HookSite, registerIfConfigured } from './hooks.ts';
import {
  addSignedRoute,
  checkHubSignature,
  codeHostPayload,
  header,
  idFrom,
  optionalSecret,
} from './signed.ts';

export const GITHUB_API = 'https://api.github.com';

/** Deepest JSON nesting accepted in a form-encoded `payload` (as for JSON bodies). */
const MAX_PAYLOAD_DEPTH = 128;

/**
 * A delivery with content type `form` carries the JSON event in the form field `payload` (as
 * go-github's ValidatePayload reads it); throws (→ 400) when it is missing or not JSON.
 */
function formPayload(form: string): unknown {
  const payload = new URLSearchParams(form).get('payload');
  if (payload === null) throw new Error('form-encoded delivery without a payload field');
  const parsed = parseJson(Buffer.from(payload), MAX_PAYLOAD_DEPTH, MAX_JSON_NODES);
  if (!parsed.ok) throw new Error(`payload field: ${parsed.message}`);
  return parsed.body;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** A GitHub App JWT (RS256, valid 9 minutes, issued a minute in the past for clock skew). */
export function githubAppJwt(appID: number, privateKeyPem: string, nowSeconds = Date.now() / 1000): string {
  const now = Math.floor(nowSeconds);
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ iat: now - 60, exp: now + 540, iss: String(appID) }));
  const sig = createSign('RSA-SHA256').update(`${head}.${body}`).sign(privateKeyPem);
  return `${head}.${body}.${b64url(sig)}`;
}

const GITHUB_HEADERS = { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' };

/** Authorization for hook management: a token, or an App installation token renewed before it expires. */
async function githubAuth(
  ctx: SourceContext<GithubEventSource>,
  base: string,
): Promise<(() => Promise<string>) | undefined> {
  const token = await optionalSecret(ctx, ctx.spec.apiToken);
  if (token) return async () => token;
  const app = ctx.spec.githubApp;
  if (!app) return undefined;
  const key = await ctx.resolveSecret(app.privateKey);
  let cached: { token: string; until: number } | undefined;
  return async () => {
    if (cached && cached.until > Date.now()) return cached.token;
    const call = apiClient({
      base,
      headers: () => ({ ...GITHUB_HEADERS, authorization: `Bearer ${githubAppJwt(app.appID, key)}` }),
    });
    const res = await call<{ token: string; expires_at?: string }>(
      'POST',
      `/app/installations/${app.installationID}/access_tokens`,
    );
    const expires = res.body.expires_at ? Date.parse(res.body.expires_at) : Date.now() + 3_600_000;
    cached = { token: res.body.token, until: expires - 120_000 };
    return cached.token;
  };
}

interface GithubHook {
  id: number;
  config?: { url?: string };
}

/** Where the hook goes: `/repos/<owner>/<name>/hooks` or `/orgs/<org>/hooks`. */
export function githubHookPaths(spec: GithubEventSource): string[] {
  const paths: string[] = [];
  for (const r of spec.repositories ?? [])
    for (const n of r.names) paths.push(`/repos/${r.owner}/${n}/hooks`);
  if (spec.owner && spec.repository) paths.push(`/repos/${spec.owner}/${spec.repository}/hooks`);
  for (const org of spec.organizations ?? []) paths.push(`/orgs/${org}/hooks`);
  return [...new Set(paths)];
}

function githubSites(spec: GithubEventSource, call: ApiCall, secret: string | undefined): HookSite[] {
  return githubHookPaths(spec).map((path) => ({
    label: path.replace(/^\/(repos|orgs)\//, '').replace(/\/hooks$/, ''),
    exists: async (url) => (await allPages<GithubHook>(call, path)).some((h) => h.config?.url === url),
    async create(url) {
      const made = await call<GithubHook>('POST', path, {
        name: 'web',
        active: spec.active ?? true,
        events: spec.events?.length ? spec.events : ['push'],
        config: {
          url,
          content_type: spec.contentType ?? 'json',
          insecure_ssl: spec.insecure ? '1' : '0',
          ...(secret ? { secret } : {}),
        },
      });
      return async () => void (await call('DELETE', `${path}/${made.body.id}`));
    },
  }));
}

export const github: SourceAdapter<GithubEventSource> = {
  type: 'github',
  exclusive: false,
  async start(ctx) {
    const key = await optionalSecret(ctx, ctx.spec.webhookSecret);
    await addSignedRoute(ctx, {
      ...(key
        ? {
            verify: (h, raw) =>
              checkHubSignature(key, raw, header(h, 'x-hub-signature-256'), header(h, 'x-hub-signature')),
          }
        : {}),
      prepare: (h, body, _raw, standard) => ({
        ...idFrom(h, 'x-github-delivery'),
        data: codeHostPayload(typeof body === 'string' ? { ...standard, body: formPayload(body) } : standard),
      }),
    });
    const base = ctx.spec.githubBaseURL ?? GITHUB_API;
    const auth = await githubAuth(ctx, base);
    const call = apiClient({
      base,
      headers: async () => ({
        ...GITHUB_HEADERS,
        ...(auth ? { authorization: `Bearer ${await auth()}` } : {}),
      }),
    });
    const hooks = auth
      ? await registerIfConfigured(ctx, ctx.spec.webhook, async () => githubSites(ctx.spec, call, key))
      : undefined;
    return {
      async stop() {
        if (ctx.spec.deleteHookOnFinish) await hooks?.remove();
        else hooks?.stop();
      },
    };
  },
};
