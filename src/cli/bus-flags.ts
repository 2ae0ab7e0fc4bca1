// How a command-line tool (`sluice dlq`) finds and authenticates to a bus, by the conventions of
// the NATS tools: flags first, then NATS_URL / NATS_CREDS / NATS_NKEY / NATS_USER / NATS_PASSWORD /
// NATS_TOKEN / NATS_CA / NATS_CERT / NATS_KEY, then a `nats` CLI context (--context NAME, else
// NATS_CONTEXT, else the selected one in ~/.config/nats/context.txt). Credentials in the URL
// (nats://TOKEN@host, nats://USER:PASS@host) work too. Secrets are read, never printed.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { BusAuth } from '../api/bus-config.ts';
import type { BusConnectOptions } from '../bus/connection.ts';
import { CliError } from './errors.ts';

export interface BusFlags {
  natsUrl?: string;
  context?: string;
  creds?: string;
  nkey?: string;
  user?: string;
  password?: string;
  token?: string;
  tlsca?: string;
  tlscert?: string;
  tlskey?: string;
}

interface NatsContext {
  url?: string;
  token?: string;
  user?: string;
  password?: string;
  creds?: string;
  nkey?: string;
  cert?: string;
  key?: string;
  ca?: string;
  inbox_prefix?: string;
}

const DEFAULT_URL = 'nats://127.0.0.1:4222';

function configHome(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'nats');
}

/** The `nats` CLI context to use, or {} when none is selected. */
export function loadContext(name: string | undefined, env: NodeJS.ProcessEnv = process.env): NatsContext {
  const home = configHome(env);
  let chosen = name ?? env.NATS_CONTEXT;
  if (!chosen) {
    const sel = join(home, 'context.txt');
    if (existsSync(sel)) chosen = readFileSync(sel, 'utf8').trim();
  }
  if (!chosen) return {};
  const file = chosen.endsWith('.json') ? chosen : join(home, 'context', `${chosen}.json`);
  if (!existsSync(file)) throw new CliError('BadInput', `NATS context "${chosen}" not found (${file})`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as NatsContext;
  } catch (err) {
    throw new CliError('BadInput', `NATS context ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

const read = (what: string, path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(
      'BadInput',
      `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
};

/** Splits credentials out of a URL ("nats://TOKEN@h:4222", "nats://u:p@h:4222"). */
export function urlCredentials(url: string): { url: string; auth?: BusAuth } {
  const parts = url.split(',').map((u) => u.trim());
  let auth: BusAuth | undefined;
  const clean = parts.map((u) => {
    const m = /^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@(.*)$/i.exec(u);
    if (!m) return u;
    const info = m[2]!;
    const i = info.indexOf(':');
    auth ??=
      i >= 0
        ? { user: decodeURIComponent(info.slice(0, i)), password: decodeURIComponent(info.slice(i + 1)) }
        : { token: decodeURIComponent(info) };
    return `${m[1]}${m[3]}`;
  });
  return { url: clean.join(','), ...(auth ? { auth } : {}) };
}

/** Connection options from flags, the NATS_* environment and a context (in that order). */
export function busOptionsFrom(f: BusFlags, env: NodeJS.ProcessEnv = process.env): BusConnectOptions {
  const ctx = loadContext(f.context, env);
  const pick = (flag: string | undefined, envName: string, fromCtx: string | undefined) =>
    flag ?? env[envName] ?? fromCtx;
  const { url, auth: urlAuth } = urlCredentials(
    pick(f.natsUrl, 'NATS_URL', undefined) ?? env.SLUICE_NATS_URL ?? ctx.url ?? DEFAULT_URL,
  );
  const creds = pick(f.creds, 'NATS_CREDS', ctx.creds);
  const nkey = pick(f.nkey, 'NATS_NKEY', ctx.nkey);
  const user = pick(f.user, 'NATS_USER', ctx.user);
  const token = pick(f.token, 'NATS_TOKEN', ctx.token);
  let auth: BusAuth | undefined;
  if (creds) auth = { creds: read('credentials file', creds) };
  else if (nkey) auth = { nkeySeed: read('NKey seed file', nkey).trim() };
  else if (user) {
    // --user NAME:PASS is accepted as the nats tool does; --password (or NATS_PASSWORD) otherwise.
    const i = user.indexOf(':');
    auth =
      i >= 0 && !f.password && !env.NATS_PASSWORD
        ? { user: user.slice(0, i), password: user.slice(i + 1) }
        : { user, password: pick(f.password, 'NATS_PASSWORD', ctx.password) ?? '' };
  } else if (token) auth = { token };
  else auth = urlAuth;
  const ca = pick(f.tlsca, 'NATS_CA', ctx.ca);
  const cert = pick(f.tlscert, 'NATS_CERT', ctx.cert);
  const key = pick(f.tlskey, 'NATS_KEY', ctx.key);
  if (!!cert !== !!key) throw new CliError('Usage', 'a client certificate needs both --tlscert and --tlskey');
  const tls =
    ca || cert
      ? {
          ...(ca ? { ca: read('CA file', ca) } : {}),
          ...(cert && key ? { cert: read('certificate', cert), key: read('key', key) } : {}),
        }
      : undefined;
  return {
    url,
    ...(auth ? { auth } : {}),
    ...(tls ? { tls } : {}),
    ...(ctx.inbox_prefix ? { inboxPrefix: ctx.inbox_prefix } : {}),
    connectTimeoutMs: 10_000,
  };
}
