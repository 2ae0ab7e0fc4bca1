// `email`: sends one message over SMTP with nodemailer (STARTTLS when the server offers it, TLS
// from the start on port 465). The Message-ID is derived from the idempotency key, so receivers
// and archives that deduplicate by Message-ID see a repeat as the same message; the runner also
// remembers the keys it sent (bounded, in memory) and does not send one twice. SMTP 4xx answers
// and connection failures are Transient, 5xx Rejected, authentication failures Misconfigured.
import { createHash } from 'node:crypto';
import { createTransport, type Transporter } from 'nodemailer';
import type { EmailTrigger } from '../../api/sensor.ts';
import { RecentKeys } from './recent-keys.ts';
import { TriggerError, type TriggerRunner } from './trigger.ts';

const TIMEOUT_MS = 30_000;

/** `<hash@domain-of-from>`: the same for every attempt of one trigger call. */
export function messageIdFor(key: string, from: string | undefined): string {
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 32);
  const domain = /@([^>\s]+)>?\s*$/.exec(from ?? '')?.[1] ?? 'sluice.invalid';
  return `<${hash}.sluice@${domain}>`;
}

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
}

/** How a nodemailer error is judged (pure). */
export function classifySmtpError(err: SmtpError): 'Transient' | 'Rejected' | 'Misconfigured' {
  const rc = err.responseCode;
  if (err.code === 'EAUTH' || rc === 530 || rc === 534 || rc === 535 || rc === 538) return 'Misconfigured';
  if (rc !== undefined && rc >= 400 && rc < 500) return 'Transient';
  if (rc !== undefined && rc >= 500) return 'Rejected';
  if (err.code === 'EENVELOPE') return 'Misconfigured';
  if (err.code === 'EMESSAGE') return 'Rejected';
  return 'Transient';
}

export function emailTrigger(): TriggerRunner<EmailTrigger> {
  const transports = new Map<string, Transporter>();
  const sent = new RecentKeys<string>();

  return {
    type: 'email',
    async fire(spec, ctx) {
      const messageId = messageIdFor(ctx.idempotencyKey, spec.from);
      if (sent.has(ctx.idempotencyKey)) return { detail: `already sent ${messageId} (same idempotency key)` };
      if (!spec.host) throw new TriggerError('Misconfigured', 'email trigger has no host');
      const to = (spec.to ?? []).filter((x) => x.trim());
      if (!to.length) throw new TriggerError('Misconfigured', 'email trigger has no recipients (to)');
      if (!spec.from) throw new TriggerError('Misconfigured', 'email trigger has no from address');
      const port = spec.port || 587;
      let pass: string | undefined;
      if (spec.smtpPassword) {
        try {
          pass = (await ctx.resolveSecret(spec.smtpPassword)).trim();
        } catch (err) {
          throw new TriggerError('Misconfigured', `smtpPassword: ${(err as Error).message}`, { cause: err });
        }
      }
      const id = JSON.stringify([spec.host, port, spec.username ?? '', pass ?? '']);
      let transport = transports.get(id);
      if (!transport) {
        transport = createTransport({
          host: spec.host,
          port,
          secure: port === 465,
          ...(spec.username ? { auth: { user: spec.username, pass: pass ?? '' } } : {}),
          connectionTimeout: TIMEOUT_MS,
          greetingTimeout: TIMEOUT_MS,
          socketTimeout: TIMEOUT_MS,
        });
        transports.set(id, transport);
      }
      ctx.signal.throwIfAborted();
      let info: { rejected?: unknown[]; response?: string };
      try {
        info = await transport.sendMail({
          from: spec.from,
          to,
          subject: spec.subject ?? '',
          text: spec.body ?? '',
          messageId,
          headers: ctx.traceparent ? { traceparent: ctx.traceparent } : {},
        });
      } catch (err) {
        const e = err as SmtpError;
        throw new TriggerError(
          classifySmtpError(e),
          `smtp ${spec.host}:${port}: ${e.response ?? e.message}`,
          { cause: err },
        );
      }
      sent.set(ctx.idempotencyKey, messageId);
      const rejected = (info.rejected ?? []).map(String);
      if (rejected.length)
        ctx.log.warn({ trigger: ctx.triggerName, rejected }, 'email: some recipients were refused');
      return {
        detail: `sent ${messageId} to ${to.length - rejected.length} recipient(s)${rejected.length ? `, refused: ${rejected.join(', ')}` : ''}`,
      };
    },
    async close() {
      for (const t of transports.values()) t.close();
      transports.clear();
    },
  };
}
