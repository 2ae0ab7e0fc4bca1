// Kubernetes API access for the controller without loading @kubernetes/client-node, which alone
// adds about 86 MiB to a process's resident memory. Reads a kubeconfig file (or the in-cluster
// service account) and fills HTTPS request options: server CA, client certificate, bearer token
// (re-read from its file on every request, since projected service-account tokens rotate) or basic
// auth, over one keep-alive agent. Exec and auth-provider plugins are not supported: the error
// says to use the default client (client-node) path, e.g. `sluice eventsource`, or a token.
// The shape matches the parts of client-node's KubeConfig the controller uses, so either works.
import { existsSync, readFileSync } from 'node:fs';
import { Agent, type AgentOptions, type RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { authPluginMessage, authPluginOf } from './auth-plugin.ts';

export interface KubeAccess {
  getCurrentCluster(): { server: string; skipTLSVerify?: boolean } | null;
  getCurrentContext(): string;
  getContextObject(name: string): { namespace?: string } | null;
  applyToHTTPSOptions(opts: RequestOptions): Promise<void>;
}

interface Named<T> {
  name: string;
  [k: string]: unknown;
  value?: T;
}
interface RawCluster {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
}
interface RawUser {
  token?: string;
  tokenFile?: string;
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  username?: string;
  password?: string;
  exec?: unknown;
  'auth-provider'?: unknown;
}
interface RawContext {
  cluster?: string;
  user?: string;
  namespace?: string;
}
interface RawConfig {
  'current-context'?: string;
  clusters?: Array<Named<RawCluster> & { cluster?: RawCluster }>;
  users?: Array<Named<RawUser> & { user?: RawUser }>;
  contexts?: Array<Named<RawContext> & { context?: RawContext }>;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A kubeconfig that is missing or cannot be used; its message names the file and what to do. */
export class KubeConfigError extends Error {
  readonly code = 'KubeConfigInvalid';
}

export class SimpleKubeConfig implements KubeAccess {
  private server = '';
  private skipTLSVerify = false;
  private context = '';
  private namespace: string | undefined;
  private ca: Buffer | undefined;
  private cert: Buffer | undefined;
  private key: Buffer | undefined;
  private token: string | undefined;
  private tokenFile: string | undefined;
  private basic: string | undefined;
  private agent: Agent | undefined;

  /** $KUBECONFIG (first file), else ~/.kube/config when present, else the in-cluster service account. */
  static loadDefault(): SimpleKubeConfig {
    const env = process.env.KUBECONFIG?.split(delimiter).find(Boolean);
    if (env) return SimpleKubeConfig.loadFile(env);
    const home = join(homedir(), '.kube', 'config');
    if (existsSync(home) || !process.env.KUBERNETES_SERVICE_HOST) return SimpleKubeConfig.loadFile(home);
    return SimpleKubeConfig.inCluster();
  }

  static inCluster(): SimpleKubeConfig {
    const c = new SimpleKubeConfig();
    const host = process.env.KUBERNETES_SERVICE_HOST ?? '';
    const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
    c.server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    c.context = 'in-cluster';
    c.ca = readFileSync(join(SA_DIR, 'ca.crt'));
    c.tokenFile = join(SA_DIR, 'token');
    try {
      c.namespace = readFileSync(join(SA_DIR, 'namespace'), 'utf8').trim();
    } catch {
      // no namespace file: callers default
    }
    return c;
  }

  static loadFile(path: string): SimpleKubeConfig {
    let raw: RawConfig;
    try {
      raw = parse(readFileSync(path, 'utf8')) as RawConfig;
    } catch (err) {
      throw new KubeConfigError(`cannot read kubeconfig ${path}: ${(err as Error).message}`);
    }
    const base = dirname(path);
    const file = (p: string) => readFileSync(isAbsolute(p) ? p : join(base, p));
    const ctxName = raw['current-context'] ?? '';
    const ctx = raw.contexts?.find((x) => x.name === ctxName)?.context;
    if (!ctx) throw new KubeConfigError(`kubeconfig ${path}: current context "${ctxName}" not found`);
    const cluster = raw.clusters?.find((x) => x.name === ctx.cluster)?.cluster;
    if (!cluster?.server)
      throw new KubeConfigError(`kubeconfig ${path}: cluster "${ctx.cluster}" has no server`);
    const user = raw.users?.find((x) => x.name === ctx.user)?.user ?? {};
    const plugin = authPluginOf(user);
    if (plugin) {
      throw new KubeConfigError(
        authPluginMessage(
          { file: path, user: ctx.user ?? '', plugin },
          'sluice controller does not run; use a token or client certificate (or run in-cluster)',
        ),
      );
    }
    const c = new SimpleKubeConfig();
    c.server = cluster.server;
    c.context = ctxName;
    c.namespace = ctx.namespace;
    c.skipTLSVerify = cluster['insecure-skip-tls-verify'] === true;
    if (cluster['certificate-authority-data'])
      c.ca = Buffer.from(cluster['certificate-authority-data'], 'base64');
    else if (cluster['certificate-authority']) c.ca = file(cluster['certificate-authority']);
    if (user['client-certificate-data']) c.cert = Buffer.from(user['client-certificate-data'], 'base64');
    else if (user['client-certificate']) c.cert = file(user['client-certificate']);
    if (user['client-key-data']) c.key = Buffer.from(user['client-key-data'], 'base64');
    else if (user['client-key']) c.key = file(user['client-key']);
    if (user.token) c.token = user.token;
    else if (user.tokenFile)
      c.tokenFile = isAbsolute(user.tokenFile) ? user.tokenFile : join(base, user.tokenFile);
    if (user.username !== undefined) {
      c.basic = Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64');
    }
    return c;
  }

  getCurrentCluster() {
    return this.server ? { server: this.server, skipTLSVerify: this.skipTLSVerify } : null;
  }

  getCurrentContext(): string {
    return this.context;
  }

  getContextObject(name: string) {
    return name === this.context ? (this.namespace ? { namespace: this.namespace } : {}) : null;
  }

  async applyToHTTPSOptions(opts: RequestOptions): Promise<void> {
    if (!this.agent) {
      const tls: AgentOptions = {
        keepAlive: true,
        maxSockets: 64,
        rejectUnauthorized: !this.skipTLSVerify,
        ...(this.ca ? { ca: this.ca } : {}),
        ...(this.cert ? { cert: this.cert } : {}),
        ...(this.key ? { key: this.key } : {}),
      };
      this.agent = new Agent(tls);
    }
    opts.agent = this.agent;
    const headers = (opts.headers ?? {}) as Record<string, string>;
    const token = this.tokenFile ? readFileSync(this.tokenFile, 'utf8').trim() : this.token;
    if (token) headers.Authorization = `Bearer ${token}`;
    else if (this.basic) headers.Authorization = `Basic ${this.basic}`;
    opts.headers = headers;
  }
}
