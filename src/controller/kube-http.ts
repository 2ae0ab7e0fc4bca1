// A small HTTP layer for the control plane's own API calls (LIST pages, WATCH streams, Lease reads
// and writes). It takes credentials and TLS from a KubeAccess (src/kube/config.ts, or client-node's KubeConfig) but owns the request
// itself, so every call can carry a real timeout/abort and a watch stream is read line by line
// with its HTTP status visible (the generated clients hide both).
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import type { KubeAccess } from '../kube/config.ts';

/**
 * The metadata fields the control plane relies on. client-node models (V1ConfigMap, V1Deployment,
 * ...) fit this shape, but note that objects read through this module are the JSON the server
 * sent: their timestamps are strings even where a client-node type says Date.
 */
export interface KubeMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }>;
  finalizers?: string[];
  deletionTimestamp?: string | Date;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: KubeMeta;
}

export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

/** A metav1.Status as the API server sends it with errors and watch ERROR events. */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}

export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** An answer from the API server other than 2xx (or a watch ERROR event): `code` is the HTTP code. */
export class KubeApiError extends Error {
  readonly code: number;
  readonly reason: string | undefined;
  readonly status: KubeStatus | undefined;

  constructor(code: number, status: KubeStatus | undefined, context: string) {
    super(
      `${context}: ${code}${status?.reason ? ` ${status.reason}` : ''}${status?.message ? `: ${status.message}` : ''}`,
    );
    this.name = 'KubeApiError';
    this.code = code;
    this.reason = status?.reason;
    this.status = status;
  }
}

/** True for 410 Gone: the resourceVersion (or continue token) asked for is no longer available. */
export function isGone(err: unknown): boolean {
  return err instanceof KubeApiError && err.code === 410;
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.code === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.code === 409;
}

/** `namespace/name`, or `name` for cluster-scoped objects (the client-go key format). */
export function objectKey(obj: KubeObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new Error('object has no metadata.name');
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${name}` : name;
}

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const slash = key.indexOf('/');
  if (slash < 0) return { namespace: undefined, name: key };
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/**
 * The path of a resource collection, optionally inside one namespace:
 * `('/api/v1/configmaps', 'ns')` → `/api/v1/namespaces/ns/configmaps`.
 */
export function collectionPath(path: string, namespace?: string): string {
  const clean = path.replace(/\/+$/, '');
  if (!namespace) return clean;
  const cut = clean.lastIndexOf('/');
  return `${clean.slice(0, cut)}/namespaces/${encodeURIComponent(namespace)}${clean.slice(cut)}`;
}

export interface RequestOpts {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Aborts the request after this long; the error then says it timed out. */
  timeoutMs?: number;
  signal?: AbortSignal;
  contentType?: string;
  /** Accept header (default application/json), e.g. the server-side Table of `kubectl get`. */
  accept?: string;
}

export interface WatchOpts {
  signal?: AbortSignal;
  /** The stream is abandoned (and the promise rejects) when no byte arrives for this long. */
  idleTimeoutMs?: number;
  /** Called once the server answered 200 and the stream is open. */
  onOpen?: () => void;
}

function parseStatus(text: string): KubeStatus | undefined {
  try {
    const parsed = JSON.parse(text) as KubeStatus;
    return parsed && typeof parsed === 'object' ? parsed : undefined;
  } catch {
    return text ? { message: text.slice(0, 300) } : undefined;
  }
}

export class KubeHttp {
  private readonly kc: KubeAccess;
  private readonly server: URL;

  constructor(kc: KubeAccess) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.kc = kc;
    this.server = new URL(cluster.server);
  }

  private url(path: string, query?: RequestOpts['query']): URL {
    const base = this.server.pathname.replace(/\/+$/, '');
    const url = new URL(this.server.origin + base + path);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    return url;
  }

  private async open(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<IncomingMessage> {
    const opts: RequestOptions = { method, headers: { ...headers } };
    // Fills in client certificate/key, CA, bearer token (refreshed by auth providers) and agent.
    await this.kc.applyToHTTPSOptions(opts);
    signal?.throwIfAborted();
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(url, { ...opts, signal }, resolve);
      req.on('error', reject);
      req.end(body);
    });
  }

  /** One JSON request; resolves with the parsed body of a 2xx answer, rejects with KubeApiError otherwise. */
  async request<T>(method: string, path: string, opts: RequestOpts = {}): Promise<T> {
    const url = this.url(path, opts.query);
    const signals = [opts.signal, opts.timeoutMs ? AbortSignal.timeout(opts.timeoutMs) : undefined].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = { Accept: opts.accept ?? 'application/json' };
    if (body !== undefined) {
      headers['Content-Type'] = opts.contentType ?? 'application/json';
      // Always framed: Node neither chunks nor sizes the body of a DELETE (or GET) on its own, so
      // the server would read it as the start of the next request on this keep-alive connection
      // and answer that one "400 Bad Request".
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const res = await this.open(method, url, headers, body, signal);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const code = res.statusCode ?? 0;
    if (code < 200 || code > 299) {
      throw new KubeApiError(code, parseStatus(text), `${method} ${url.pathname}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * Opens a watch (`?watch=true` is added) and calls `onEvent` for each event, in order. Resolves
   * when the server ends the stream; rejects on a non-200 answer (KubeApiError), a broken
   * connection, the idle timeout, or abort.
   */
  async watch<T extends KubeObject>(
    path: string,
    query: RequestOpts['query'],
    onEvent: (ev: WatchEvent<T>) => void,
    opts: WatchOpts = {},
  ): Promise<void> {
    const url = this.url(path, { ...query, watch: true });
    const local = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, local.signal]) : local.signal;
    let idle: NodeJS.Timeout | undefined;
    let idleFired = false;
    const arm = () => {
      if (!opts.idleTimeoutMs) return;
      clearTimeout(idle);
      idle = setTimeout(() => {
        idleFired = true;
        local.abort(new Error(`watch ${url.pathname}: no data for ${opts.idleTimeoutMs}ms`));
      }, opts.idleTimeoutMs);
    };
    arm();
    try {
      const res = await this.open('GET', url, { Accept: 'application/json' }, undefined, signal);
      const code = res.statusCode ?? 0;
      if (code !== 200) {
        const chunks: Buffer[] = [];
        for await (const chunk of res) chunks.push(chunk as Buffer);
        throw new KubeApiError(
          code,
          parseStatus(Buffer.concat(chunks).toString('utf8')),
          `WATCH ${url.pathname}`,
        );
      }
      opts.onOpen?.();
      const decoder = new StringDecoder('utf8');
      let pending = '';
      for await (const chunk of res) {
        arm();
        pending += decoder.write(chunk as Buffer);
        let nl = pending.indexOf('\n');
        while (nl >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (line) onEvent(JSON.parse(line) as WatchEvent<T>);
          nl = pending.indexOf('\n');
        }
      }
      const last = (pending + decoder.end()).trim();
      if (last) onEvent(JSON.parse(last) as WatchEvent<T>);
    } catch (err) {
      if (idleFired) throw local.signal.reason;
      throw err;
    } finally {
      clearTimeout(idle);
    }
  }
}
