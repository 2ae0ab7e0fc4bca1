// How a sluice process reaches its EventBus: the server URL(s), one way of authenticating and TLS
// settings. The caller (controller, or a role reading its injected config) has already resolved
// Kubernetes Secrets into strings, so everything here is plain text.
import { z } from 'zod';

const nonEmpty = (what: string) => z.string().min(1, { message: `${what} must not be empty` });

const urlEntry = /^([a-z][a-z0-9+.-]*:\/\/)?[^\s,/]+(:[0-9]+)?\/?$/i;

export const BusAuth = z
  .union([
    z
      .strictObject({
        user: nonEmpty('user').describe('User name the server expects.'),
        password: z.string().describe('Password for that user.'),
      })
      .describe('User name and password.'),
    z.strictObject({ token: nonEmpty('token').describe('Shared authorization token.') }),
    z.strictObject({
      nkeySeed: z
        .string()
        .trim()
        .regex(/^SU[A-Z2-7]{50,}$/, { message: 'nkeySeed must be a user NKey seed (starts with "SU")' })
        .describe('User NKey seed; the server knows the matching public key.'),
    }),
    z.strictObject({
      creds: z
        .string()
        .refine((s) => s.includes('-----BEGIN NATS USER JWT-----'), {
          message: 'creds must be the text of a NATS .creds file (user JWT and NKey seed)',
        })
        .describe('Full text of a NATS .creds file (decentralised JWT auth).'),
    }),
  ])
  .describe('Exactly one way of authenticating to NATS.');
export type BusAuth = z.output<typeof BusAuth>;

export const BusTls = z
  .strictObject({
    ca: z.string().optional().describe('PEM CA bundle used to verify the server certificate.'),
    cert: z.string().optional().describe('PEM client certificate, for servers that verify clients.'),
    key: z.string().optional().describe('PEM private key of the client certificate.'),
    insecureSkipVerify: z
      .boolean()
      .optional()
      .describe('Accept any server certificate. Only for tests; the connection is not authenticated.'),
  })
  .refine((t) => !t.cert === !t.key, { message: 'tls.cert and tls.key must be given together' })
  .describe('TLS towards NATS. Present (even empty) means TLS is required.');
export type BusTls = z.output<typeof BusTls>;

export const BusConfig = z
  .strictObject({
    url: z
      .string()
      .refine(
        (s) => {
          const parts = s.split(',').map((p) => p.trim());
          return parts.length > 0 && parts.every((p) => urlEntry.test(p));
        },
        {
          message: 'url must be one NATS URL or a comma-separated list such as "nats://a:4222,nats://b:4222"',
        },
      )
      .describe('NATS server URL, or several separated by commas; the client fails over between them.'),
    auth: BusAuth.optional(),
    tls: BusTls.optional(),
  })
  .describe('Connection settings of an EventBus for clients.');
export type BusConfig = z.output<typeof BusConfig>;

/** The individual server URLs of a (possibly comma-separated) `url`. */
export function busServers(url: string): string[] {
  return url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Reads one credential string as found in a Secret: the text of a .creds file, an NKey seed,
 * "user:password", or else a token.
 */
export function credentialToAuth(credential: string): BusAuth | undefined {
  const c = credential.trim();
  if (!c) return undefined;
  if (c.includes('-----BEGIN NATS USER JWT-----')) return { creds: c };
  if (/^SU[A-Z2-7]{50,}$/.test(c)) return { nkeySeed: c };
  const i = c.indexOf(':');
  if (i > 0) return { user: c.slice(0, i), password: c.slice(i + 1) };
  return { token: c };
}
