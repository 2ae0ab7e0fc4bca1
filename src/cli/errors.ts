// Errors the user of the command line can act on. Every subcommand ends through `exitOnError`:
// a user mistake (bad flag, unreadable or invalid manifest, missing kubeconfig, port in use,
// unreachable bus, refused confirmation) prints ONE line `sluice <command>: <message>` on stderr
// and exits 2; anything else is a bug and keeps its stack trace (exit 1), so it can be reported.
// There is no project-wide error base class; this one follows BusError's shape (a stable `code`
// from a union, a message for people) and `toCliError` maps the other libraries' errors onto it.
import { ZodError } from 'zod';
import { BusError } from '../bus/errors.ts';
import { KubeConfigError } from '../kube/config.ts';
import { LogLevelError } from '../observability/log-levels.ts';

/** Exit status of every user error (as getopt-style tools use 2 for usage). */
export const USER_ERROR_EXIT = 2;

export type CliErrorCode =
  /** A flag, argument or subcommand that does not parse. */
  | 'Usage'
  /** A file or folder that cannot be read, or a manifest that is not valid. */
  | 'BadInput'
  /** No kubeconfig, or one that cannot be used. */
  | 'KubeConfig'
  /** The Kubernetes API server cannot be reached or refused the request. */
  | 'ClusterUnreachable'
  /** The NATS server cannot be reached or refused the connection. */
  | 'BusUnreachable'
  /** A TLS handshake failed: the server's certificate is not trusted, or ours was refused. */
  | 'Tls'
  /** A port to listen on is taken or not allowed. */
  | 'PortUnavailable'
  /** Something named on the command line does not exist (a Sensor, a dead letter). */
  | 'NotFound'
  /** A destructive command was not confirmed. */
  | 'NotConfirmed'
  /** `sluice dev --strict`: some objects did not start. */
  | 'NotStarted';

export class CliError extends Error {
  readonly code: CliErrorCode;

  constructor(code: CliErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliError';
    this.code = code;
  }
}

type Errno = NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };

const FILE_CODES = new Set(['ENOENT', 'EISDIR', 'ENOTDIR', 'EACCES', 'EPERM', 'ELOOP', 'ENAMETOOLONG']);
const FILE_WORDS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  EISDIR: 'is a folder, not a file',
  ENOTDIR: 'a part of the path is not a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'name too long',
};
const NET_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'host name lookup failed for now',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
};

/** Why a file could not be read, in words (`no such file or folder`), else its code or message. */
export function fileErrorText(err: unknown): string {
  const e = err as Errno | undefined;
  return (e?.code && FILE_WORDS[e.code]) || e?.code || (err as Error)?.message || String(err);
}

/**
 * A network error in words with the host it was about (`cannot reach db:5432: connection
 * refused`, `no such host notaurl (ENOTFOUND)`), or undefined when `e` is not one.
 */
export function networkErrorText(e: Errno): string | undefined {
  const words = e.code ? NET_WORDS[e.code] : undefined;
  if (!words) return undefined;
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN')
    return `${words} ${e.hostname ?? '(no name given)'} (${e.code})`;
  const where = e.address ? ` ${e.address}${e.port ? `:${e.port}` : ''}` : e.hostname ? ` ${e.hostname}` : '';
  return `cannot reach${where}: ${words} (${e.code})`;
}

function chain(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = err, i = 0; e && i < 6; i++) {
    out.push(e);
    e = e instanceof Error ? e.cause : undefined;
  }
  return out;
}

/** `spec.triggers[0].template: message; ...` for the first few zod issues. */
function zodText(err: ZodError): string {
  const parts = err.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? `${i.path.map(String).join('.')}: ` : ''}${i.message}`);
  return `${parts.join('; ')}${err.issues.length > 3 ? `; and ${err.issues.length - 3} more` : ''}`;
}

function fromErrno(e: Errno): CliError | undefined {
  if (!e.code) return undefined;
  if (e.code === 'EADDRINUSE' || (e.code === 'EACCES' && e.syscall === 'listen')) {
    const where = e.port !== undefined ? `port ${e.port}` : 'the port';
    const why = e.code === 'EADDRINUSE' ? 'is already in use' : 'needs privileges';
    return new CliError('PortUnavailable', `${where} ${why}; pick another one (e.g. --metrics-port)`, {
      cause: e,
    });
  }
  if (e.code === 'EADDRNOTAVAIL') {
    const where = e.address ? ` ${e.address}` : '';
    return new CliError(
      'PortUnavailable',
      `cannot listen on${where}: no such address on this machine (check --host)`,
      { cause: e },
    );
  }
  if (e.code === 'ENOENT' && e.syscall?.startsWith('spawn')) {
    return new CliError('BadInput', `cannot run ${e.path ?? 'a program'}: not found on PATH`, { cause: e });
  }
  if (FILE_CODES.has(e.code)) {
    // Node leaves the path out of some of them (EISDIR from readFileSync).
    const words = fileErrorText(e);
    const verb = /^(mkdir|rmdir|rename|unlink|symlink|copyfile|chmod|write)/.test(e.syscall ?? '')
      ? 'cannot write'
      : 'cannot read';
    const text = e.path ? `${verb} ${e.path}: ${words}` : `${words} (${e.message})`;
    return new CliError('BadInput', text, { cause: e });
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_|LEAF_SIGNATURE|^ERR_TLS|^ERR_SSL/.test(e.code)) {
    return new CliError(
      'Tls',
      `TLS: ${e.message.split(';')[0]} (${e.code}); give the server's CA (--tlsca for NATS, certificate-authority in the kubeconfig)`,
      { cause: e },
    );
  }
  const net = networkErrorText(e);
  if (net) return new CliError('ClusterUnreachable', net, { cause: e });
  return undefined;
}

/** A NATS client error (connection refused, authorization, TLS, timeout) as a user error. */
function fromNats(e: Error): CliError | undefined {
  const names = [
    'ConnectionError',
    'TimeoutError',
    'AuthorizationError',
    'UserAuthenticationExpiredError',
    'InvalidArgumentError',
  ];
  if (!names.includes(e.name) && !/CONNECTION_REFUSED|Authorization Violation/i.test(e.message))
    return undefined;
  const sock = e.cause as Errno | undefined;
  const at = sock?.address ? ` (${sock.address}:${sock.port})` : '';
  return new CliError('BusUnreachable', `cannot use the NATS server: ${e.message}${at}`, { cause: e });
}

/** The `message` of a Kubernetes Status body (a string or an object). */
function statusMessage(body: unknown): string | undefined {
  try {
    const o = typeof body === 'string' ? (JSON.parse(body) as unknown) : body;
    const m = (o as { message?: unknown } | null)?.message;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return typeof body === 'string' && body ? body.slice(0, 200) : undefined;
  }
}

/**
 * The user error `err` stands for, or undefined when it is a bug. Looks through `cause` chains
 * (client libraries wrap the socket error).
 */
export function toCliError(err: unknown): CliError | undefined {
  for (const e of chain(err)) {
    if (e instanceof CliError) return e;
    if (e instanceof KubeConfigError) return new CliError('KubeConfig', e.message, { cause: e });
    if (e instanceof ZodError) return new CliError('BadInput', zodText(e), { cause: e });
    if (e instanceof LogLevelError) return new CliError('Usage', e.message, { cause: e });
    if (e instanceof BusError && e.code === 'BusUnavailable')
      return new CliError('BusUnreachable', e.message, { cause: e });
    if (!(e instanceof Error)) continue;
    const fromCode = fromErrno(e as Errno);
    if (fromCode) return fromCode;
    const nats = fromNats(e);
    if (nats) return nats;
    // @kubernetes/client-node answers with an ApiException carrying the HTTP status.
    const status = (e as { code?: unknown }).code;
    if (typeof status === 'number' && /^HTTP-Code: /.test(e.message)) {
      const body = (e as { body?: unknown }).body;
      const why = statusMessage(body) ?? 'no details';
      const code: CliErrorCode = status === 404 ? 'NotFound' : 'ClusterUnreachable';
      return new CliError(code, `the Kubernetes API answered ${status}: ${why}`, { cause: e });
    }
  }
  return undefined;
}

/**
 * A failed first connection to the NATS server(s) `servers` (the URL list tried) as a user error
 * that names them: a URL that does not parse, a host name that does not resolve. Other errors
 * are returned as they are (toCliError maps them later).
 */
export function natsConnectError(servers: string, err: unknown): unknown {
  if ((err as Errno | undefined)?.code === 'ERR_INVALID_URL')
    return new CliError(
      'Usage',
      `"${servers}" is not a valid NATS server URL (nats://HOST:PORT, several separated by commas)`,
      { cause: err },
    );
  const user = toCliError(err);
  if (user?.code !== 'ClusterUnreachable') return err;
  return new CliError('BusUnreachable', `cannot use the NATS server ${servers}: ${user.message}`, {
    cause: err,
  });
}

/** Writes one line for a user error and returns its exit status; a bug gets its stack (status 1). */
export function reportError(
  command: string,
  err: unknown,
  write: (s: string) => unknown = (s) => process.stderr.write(s),
): number {
  const user = toCliError(err);
  if (user) {
    write(`sluice ${command}: ${user.message.replace(/\s*\n\s*/g, ' ')}\n`);
    return USER_ERROR_EXIT;
  }
  const e = err as Error;
  write(`sluice ${command}: unexpected error (please report it): ${e?.stack ?? String(err)}\n`);
  return 1;
}

/** Runs a subcommand's body; on failure reports it (see reportError) and exits with its status. */
export async function exitOnError(command: string, body: () => Promise<unknown>): Promise<void> {
  try {
    await body();
  } catch (err) {
    process.exitCode = reportError(command, err);
    // Let stderr drain, then leave even if sockets or timers are still open.
    process.stderr.write('', () => process.exit(process.exitCode));
  }
}
