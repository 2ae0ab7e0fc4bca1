// `slack`: posts a message with chat.postMessage (token from the slackToken Secret). Threads: the
// first message of a `thread.messageAggregationKey` starts a thread whose ts is remembered (in
// memory, per runner), later ones reply in it (and also show in the channel with
// broadcastMessageToChannel). Slack answers 200 with {ok:false,error}: rate limits and Slack-side
// failures are Transient (honouring Retry-After), token/channel/permission errors Misconfigured,
// errors about the message itself Rejected. A channel the bot is not in is joined once
// (conversations.join, needs the channels:join scope). Slack cannot deduplicate, so the runner
// remembers the idempotency keys it posted (bounded, in memory) and does not post one twice.
import type { SlackTrigger } from '../../api/sensor.ts';
import { retryAfterMs } from './http.ts';
import { RecentKeys } from './recent-keys.ts';
import { type TriggerContext, TriggerError, type TriggerRunner } from './trigger.ts';

export const DEFAULT_SLACK_API_URL = 'https://slack.com/api';
const TIMEOUT_MS = 30_000;

export interface SlackRunnerOptions {
  /** Base URL of the Slack Web API; defaults to $SLUICE_SLACK_API_URL, else https://slack.com/api. */
  apiUrl?: string;
}

const TRANSIENT = new Set([
  'ratelimited',
  'rate_limited',
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
  'team_added_to_org',
]);
const MISCONFIGURED = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'no_permission',
  'missing_scope',
  'not_allowed_token_type',
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'restricted_action',
  'ekm_access_denied',
  'org_login_required',
]);

/** How a Slack `error` string is judged (pure). */
export function classifySlackError(error: string): 'Transient' | 'Misconfigured' | 'Rejected' {
  if (TRANSIENT.has(error)) return 'Transient';
  if (MISCONFIGURED.has(error)) return 'Misconfigured';
  return 'Rejected';
}

interface SlackAnswer {
  ok?: boolean;
  error?: string;
  ts?: string;
  channel?: string | { id?: string };
}

function parseJsonList(text: string | undefined, field: string): unknown[] | undefined {
  if (!text?.trim()) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new TriggerError('Misconfigured', `slack ${field} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!Array.isArray(v)) throw new TriggerError('Misconfigured', `slack ${field} must be a JSON list`);
  return v;
}

export function slackTrigger(opts: SlackRunnerOptions = {}): TriggerRunner<SlackTrigger> {
  const base = (opts.apiUrl ?? process.env.SLUICE_SLACK_API_URL ?? DEFAULT_SLACK_API_URL).replace(/\/+$/, '');
  const threads = new RecentKeys<string>(10_000, 30 * 24 * 3600_000);
  const posted = new RecentKeys<string>();

  const call = async (
    method: string,
    token: string,
    body: unknown,
    ctx: TriggerContext,
  ): Promise<SlackAnswer> => {
    let res: Response;
    try {
      res = await fetch(`${base}/${method}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify(body),
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(TIMEOUT_MS)]),
      });
    } catch (err) {
      throw new TriggerError('Transient', `slack ${method}: ${(err as Error).message}`, { cause: err });
    }
    const text = await res.text().catch(() => '');
    const retryAfter = retryAfterMs(res.headers.get('retry-after') ?? undefined);
    const withRetry = retryAfter === undefined ? {} : { retryAfterMs: retryAfter };
    if (res.status === 429 || res.status === 408 || res.status >= 500) {
      throw new TriggerError('Transient', `slack ${method}: HTTP ${res.status}`, withRetry);
    }
    let answer: SlackAnswer;
    try {
      answer = JSON.parse(text) as SlackAnswer;
    } catch {
      throw new TriggerError(
        res.ok ? 'Transient' : 'Rejected',
        `slack ${method}: HTTP ${res.status}, not a Slack answer: ${text.slice(0, 200)}`,
      );
    }
    if (!res.ok && answer.ok !== false) {
      throw new TriggerError('Rejected', `slack ${method}: HTTP ${res.status}`);
    }
    if (answer.ok === false) {
      const error = answer.error ?? 'unknown_error';
      throw new TriggerError(classifySlackError(error), `slack ${method}: ${error}`, withRetry);
    }
    return answer;
  };

  return {
    type: 'slack',
    async fire(spec, ctx) {
      const already = posted.get(ctx.idempotencyKey);
      if (already !== undefined) return { detail: `already posted (ts ${already}, same idempotency key)` };
      if (!spec.slackToken) throw new TriggerError('Misconfigured', 'slack trigger has no slackToken');
      if (!spec.channel) throw new TriggerError('Misconfigured', 'slack trigger has no channel');
      const attachments = parseJsonList(spec.attachments, 'attachments');
      const blocks = parseJsonList(spec.blocks, 'blocks');
      if (!spec.message && !attachments && !blocks) {
        throw new TriggerError('Misconfigured', 'slack trigger has no message, attachments or blocks');
      }
      let token: string;
      try {
        token = (await ctx.resolveSecret(spec.slackToken)).trim();
      } catch (err) {
        throw new TriggerError('Misconfigured', `slackToken: ${(err as Error).message}`, { cause: err });
      }
      const channel = spec.channel;
      const aggKey = spec.thread?.messageAggregationKey;
      const threadId = aggKey ? `${channel}\u0000${aggKey}` : undefined;
      const threadTs = threadId ? threads.get(threadId) : undefined;
      const icon = spec.sender?.icon;
      const body: Record<string, unknown> = {
        channel,
        ...(spec.message ? { text: spec.message } : {}),
        ...(attachments ? { attachments } : {}),
        ...(blocks ? { blocks } : {}),
        ...(threadTs
          ? { thread_ts: threadTs, reply_broadcast: spec.thread?.broadcastMessageToChannel === true }
          : {}),
        ...(spec.sender?.username ? { username: spec.sender.username } : {}),
        ...(icon ? (/^https?:\/\//.test(icon) ? { icon_url: icon } : { icon_emoji: icon }) : {}),
      };
      let answer: SlackAnswer;
      try {
        answer = await call('chat.postMessage', token, body, ctx);
      } catch (err) {
        if (!(err instanceof TriggerError && err.message.endsWith(': not_in_channel'))) throw err;
        await call('conversations.join', token, { channel }, ctx);
        answer = await call('chat.postMessage', token, body, ctx);
      }
      const ts = answer.ts ?? '';
      posted.set(ctx.idempotencyKey, ts);
      if (threadId && !threadTs && ts) threads.set(threadId, ts);
      return { detail: `posted to ${channel}${threadTs ? ` in thread ${threadTs}` : ''} (ts ${ts})` };
    },
  };
}
