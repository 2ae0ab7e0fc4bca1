// `slack`: Slack Events API callbacks, interactions and slash commands. Every request must carry a
// valid X-Slack-Signature (v0 HMAC with signingSecret) and a timestamp at most 5 minutes away.
// Events API payloads must carry the verification token `token` names when they carry one (as
// upstream checks it). The URL-verification handshake is answered with its challenge (plain text,
// as upstream) and not published; other Events API envelopes than event callbacks are
// acknowledged and not published. Published data, shaped as upstream publishes it:
//   event callback   {type: <inner event type>, Data: <inner event>}; id = event_id (stable across Slack's retries)
//   interaction      the parsed form field `payload`;                  id = timestamp + signature
//   slash command    the form fields as an object (command, text, user_id, ...)
import type { SlackEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter } from '../adapter.ts';
import { parseJsonRaw } from '../json.ts';
import { members } from '../raw-json.ts';
import type { Prepared } from './route.ts';
import { addSignedRoute, checkSlackSignature, header, parseForm, sameText } from './signed.ts';

const ack = (body: string): Prepared => ({ reply: { status: 200, body: `${body}\n` } });

export const slack: SourceAdapter<SlackEventSource> = {
  type: 'slack',
  exclusive: false,
  async start(ctx) {
    const signing = (await ctx.resolveSecret(ctx.spec.signingSecret)).trim();
    const token = (await ctx.resolveSecret(ctx.spec.token)).trim();
    await addSignedRoute(ctx, {
      verify: (h, raw) =>
        checkSlackSignature(
          signing,
          raw,
          header(h, 'x-slack-request-timestamp'),
          header(h, 'x-slack-signature'),
        ),
      prepare: (h, body, raw): Prepared => {
        const ts = header(h, 'x-slack-request-timestamp');
        const sig = header(h, 'x-slack-signature');
        const requestId = ts && sig ? { id: `${ts}-${sig.slice(3, 35)}` } : {};
        if (typeof body === 'string') {
          // Interactions and slash commands arrive as forms.
          const form = parseForm(raw);
          if (form.payload) return { ...requestId, data: parseJsonRaw(form.payload) };
          if (form.command) return { ...requestId, data: form };
          throw new Error('form carries neither an interaction payload nor a slash command');
        }
        // Published as sent (raw-json.ts): only the fields judged here are parsed.
        const m = members(body) ?? new Map();
        const field = (k: string): unknown => m.get(k)?.value;
        const type = field('type');
        const bodyToken = field('token');
        if (token && typeof bodyToken === 'string' && !sameText(bodyToken, token)) {
          return { reply: { status: 403, body: 'verification token does not match\n' } };
        }
        if (type === 'url_verification') {
          const challenge = field('challenge');
          if (typeof challenge !== 'string') throw new Error('url_verification without a challenge');
          return { reply: { status: 200, body: challenge } };
        }
        const event = members(m.get('event'));
        if (type !== 'event_callback' || !event) {
          return ack(`${typeof type === 'string' ? type : 'untyped'} payload acknowledged, not published`);
        }
        const eventId = field('event_id');
        return {
          data: { type: event.get('type')?.value, Data: m.get('event') },
          ...(typeof eventId === 'string' ? { id: eventId } : requestId),
        };
      },
    });
    return { stop: async () => {} };
  },
};
