// A list+watch cache of one resource (optionally one namespace / label selector), the way
// client-go's reflector + informer keep one:
//  - LIST (paged, consistent read), then WATCH from the list's resourceVersion with bookmarks;
//  - a dropped or ended watch resumes from the last resourceVersion seen (event or bookmark),
//    with capped exponential backoff when it keeps failing;
//  - 410 Gone (as an HTTP answer or as a watch ERROR event) means that version is no longer
//    available: LIST again and diff against the store, reporting what changed meanwhile as
//    add/update/delete events so handlers never miss a change.
// Handlers run synchronously in event order; they should only enqueue work, never block.
//
// client-node's ListWatch (2.0.1) was not used: any list or watch failure other than 410 or its
// own client timeout (e.g. connection refused while the API server restarts) ends it for good
// until someone calls start() again; it never asks for bookmarks, so on a quiet resource its resume
// version ages into a 410 and a needless full relist after every compaction; and its Watch drops
// a silent stream after a fixed, private 30 s.
import type { KubeAccess } from '../kube/config.ts';
import type { Logger } from '../observability/logger.ts';
import {
  collectionPath,
  isGone,
  KubeApiError,
  KubeHttp,
  type KubeList,
  type KubeObject,
  type KubeStatus,
  objectKey,
  type WatchEvent,
} from './kube-http.ts';

/** Why a handler is called: from the watch, from the first LIST, from a LIST after a 410, ... */
export type EventOrigin = 'watch' | 'initial-list' | 'relist' | 'replay' | 'resync';

/** Handlers get the cached objects themselves: treat them as read-only. */
export interface InformerHandlers<T extends KubeObject = KubeObject> {
  onAdd?(obj: T, origin: EventOrigin): void;
  onUpdate?(oldObj: T, newObj: T, origin: EventOrigin): void;
  /** For a delete found by a relist, `obj` is the last state the cache knew. */
  onDelete?(obj: T, origin: EventOrigin): void;
}

export type WatchRestartReason = 'closed' | 'error' | 'gone';
export type RelistReason = 'initial' | 'gone' | 'unserved';

/** Observation points for metrics; all optional. */
export interface InformerHooks {
  watchRestart?(reason: WatchRestartReason): void;
  relist?(reason: RelistReason): void;
  error?(err: unknown, phase: 'list' | 'watch' | 'handler'): void;
}

export interface InformerOptions {
  kubeConfig: KubeAccess;
  /** Collection path without namespace, e.g. `/apis/apps/v1/deployments` or `/api/v1/configmaps`. */
  path: string;
  /** Only this namespace; all namespaces when omitted. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** LIST page size (default 500). */
  pageSize?: number;
  /** Server-side watch timeout; default a random 300–600 s so many informers do not reconnect together. */
  watchTimeoutSeconds?: number;
  /** A watch with no bytes for this long is treated as dead (default watch timeout + 60 s). */
  idleTimeoutMs?: number;
  /** Reconnect backoff after failures: first delay and cap (default 500 ms, 30 s). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Timeout of each LIST page request (default 60 s). */
  listTimeoutMs?: number;
  /**
   * Turns each object as received (plain JSON) into what the cache holds, e.g. client-node's
   * `ObjectSerializer.deserialize(o, 'V1Deployment')` for real Date fields. Identity by default.
   */
  transform?: (raw: KubeObject) => KubeObject;
  /** When set, every cached object is handed to onUpdate(obj, obj, 'resync') at this interval. */
  resyncMs?: number;
  hooks?: InformerHooks;
  logger?: Logger;
}

/** Resolves after `ms`, at once when `signal` aborts, or when `wake` is called meanwhile. */
function sleep(ms: number, signal: AbortSignal, onWake?: (wake: () => void) => void): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    onWake?.(done);
  });
}

/**
 * A watch answered 404 (the resource is no longer served: its CRD was deleted) or 401/403 (the
 * rights are gone): resuming it cannot work, so LIST again (as client-go's reflector does), which
 * keeps failing with the reason listProblem() reports until the resource or rights come back.
 */
function needsRelist(err: unknown): boolean {
  return err instanceof KubeApiError && (err.code === 404 || err.code === 401 || err.code === 403);
}

export class Informer<T extends KubeObject = KubeObject> {
  private readonly http: KubeHttp;
  private readonly opts: InformerOptions;
  private readonly path: string;
  private readonly hooks: InformerHooks;
  private readonly log: Logger | undefined;
  private store = new Map<string, T>();
  private handlers: InformerHandlers<T>[] = [];
  private resourceVersion = '';
  private synced = false;
  private syncWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  /** The list's kind and apiVersion, stamped on items (LIST items come without them). */
  private itemKind: { apiVersion?: string; kind?: string } = {};
  private listFailure: { text: string; count: number; loggedAt: number } | undefined;
  /** Ends the backoff wait after a failed LIST (see retryNow). */
  private wake: (() => void) | undefined;

  constructor(opts: InformerOptions) {
    this.opts = opts;
    this.http = new KubeHttp(opts.kubeConfig);
    this.path = collectionPath(opts.path, opts.namespace);
    this.hooks = opts.hooks ?? {};
    this.log = opts.logger?.child({ component: 'informer', resource: this.path });
  }

  /** Starts listing and watching in the background (no-op when already running). */
  start(): void {
    if (this.loop) return;
    const abort = new AbortController();
    this.abort = abort;
    this.loop = this.run(abort.signal).catch((err: unknown) => {
      this.log?.error({ err }, 'informer loop failed');
    });
    if (this.opts.resyncMs && this.opts.resyncMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), this.opts.resyncMs);
      this.resyncTimer.unref();
    }
  }

  /** Stops the watch; the store keeps its last contents. */
  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    this.resyncTimer = undefined;
    this.abort?.abort();
    await this.loop;
    this.loop = undefined;
    this.abort = undefined;
    for (const w of this.syncWaiters.splice(0))
      w.reject(new Error(`informer ${this.path} stopped before sync`));
  }

  /** Registers handlers; objects already cached are replayed to `onAdd` at once. Returns an unsubscribe. */
  addEventHandler(h: InformerHandlers<T>): () => void {
    this.handlers = [...this.handlers, h];
    for (const obj of this.store.values()) this.call(() => h.onAdd?.(obj, 'replay'));
    return () => {
      this.handlers = this.handlers.filter((x) => x !== h);
    };
  }

  /** True once the first LIST has been stored (and its onAdd events delivered). */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once synced; rejects on timeout or when stopped first. */
  waitForSync(timeoutMs?: number): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      this.syncWaiters.push(waiter);
      if (timeoutMs !== undefined) {
        const t = setTimeout(() => {
          this.syncWaiters = this.syncWaiters.filter((w) => w !== waiter);
          reject(new Error(`informer ${this.path} not synced after ${timeoutMs}ms`));
        }, timeoutMs);
        const settle = waiter.resolve;
        waiter.resolve = () => {
          clearTimeout(t);
          settle();
        };
      }
    });
  }

  /** The cached object under `namespace/name` (or `name` when cluster-scoped). */
  get(key: string): T | undefined {
    return this.store.get(key);
  }

  getByName(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(namespace ? `${namespace}/${name}` : name);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  get size(): number {
    return this.store.size;
  }

  /**
   * Why the last LIST failed (until one succeeds), in words for /readyz and logs: a 404 on a
   * custom resource means its CRD is not installed (or being deleted), a 401/403 missing rights.
   */
  listProblem(): string | undefined {
    return this.listFailure?.text;
  }

  /** Logs a LIST failure at warn the first time and when it changes, then once every 5 minutes. */
  private reportListFailure(err: unknown): void {
    const code = err instanceof KubeApiError ? err.code : undefined;
    const hint =
      code === 404
        ? ' (not served: is its CustomResourceDefinition installed, or being deleted?)'
        : code === 401 || code === 403
          ? ' (the controller lacks the right to list it: check its RBAC)'
          : '';
    const text = `list ${this.path} failed: ${(err as Error).message}${hint}`;
    const now = Date.now();
    const prev = this.listFailure;
    const same = prev?.text === text;
    const count = same ? prev.count + 1 : 1;
    if (!same || now - prev.loggedAt >= 5 * 60_000) {
      this.log?.warn({ err, path: this.path, failures: count }, `list failed; retrying with backoff${hint}`);
      this.listFailure = { text, count, loggedAt: now };
    } else {
      this.log?.debug({ path: this.path, failures: count }, 'list failed again; retrying with backoff');
      this.listFailure = { ...prev, count };
    }
  }

  /**
   * Ends the backoff before the next LIST when one is failing (e.g. its CRD was just installed
   * again); a no-op otherwise.
   */
  retryNow(): void {
    if (this.listFailure) this.wake?.();
  }

  /** The resourceVersion the next watch would resume from. */
  lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  private async run(signal: AbortSignal): Promise<void> {
    const initialMs = this.opts.backoff?.initialMs ?? 500;
    const maxMs = this.opts.backoff?.maxMs ?? 30_000;
    let failures = 0;
    const backoff = () => {
      const base = Math.min(maxMs, initialMs * 2 ** failures);
      failures++;
      // Half fixed, half random, so informers that failed together do not retry together.
      return base / 2 + (Math.random() * base) / 2;
    };
    let listReason: RelistReason | undefined = 'initial';

    while (!signal.aborted) {
      if (listReason) {
        try {
          await this.relist(listReason, signal);
          listReason = undefined;
          failures = 0;
          if (this.listFailure) this.log?.info({ path: this.path }, 'list works again');
          this.listFailure = undefined;
        } catch (err) {
          if (signal.aborted) break;
          this.hooks.error?.(err, 'list');
          this.reportListFailure(err);
          await sleep(backoff(), signal, (wake) => {
            this.wake = wake;
          });
          this.wake = undefined;
          continue;
        }
      }

      const started = Date.now();
      let events = 0;
      try {
        const timeoutSeconds = this.opts.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300);
        await this.http.watch<T>(
          this.path,
          {
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds,
            labelSelector: this.opts.labelSelector,
            fieldSelector: this.opts.fieldSelector,
          },
          (ev) => {
            events++;
            this.onWatchEvent(ev);
          },
          { signal, idleTimeoutMs: this.opts.idleTimeoutMs ?? timeoutSeconds * 1000 + 60_000 },
        );
        if (signal.aborted) break;
        // The server ended the watch (its timeout, or it is shutting down): resume from where we are.
        this.hooks.watchRestart?.('closed');
        this.log?.debug({ resourceVersion: this.resourceVersion, events }, 'watch closed; resuming');
        // A watch that ends at once again and again must not spin.
        if (events === 0 && Date.now() - started < 1000) await sleep(backoff(), signal);
        else failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        if (isGone(err)) {
          this.hooks.watchRestart?.('gone');
          this.log?.info({ resourceVersion: this.resourceVersion }, 'resourceVersion gone (410); relisting');
          listReason = 'gone';
          continue;
        }
        this.hooks.watchRestart?.('error');
        this.hooks.error?.(err, 'watch');
        if (needsRelist(err)) {
          this.log?.info({ err: (err as Error).message }, 'watch refused (404/401/403); listing again');
          listReason = 'unserved';
          await sleep(backoff(), signal);
          continue;
        }
        this.log?.warn(
          { err, resourceVersion: this.resourceVersion },
          'watch failed; resuming after backoff',
        );
        if (events > 0 || Date.now() - started > 10_000) failures = 0;
        await sleep(backoff(), signal);
      }
    }
  }

  /** LISTs everything (paged) and replaces the store, emitting the differences. */
  private async relist(reason: RelistReason, signal: AbortSignal): Promise<void> {
    this.hooks.relist?.(reason);
    const list = await this.listAll(signal);
    if (signal.aborted) return;
    this.itemKind = {
      apiVersion: list.apiVersion,
      kind: list.kind?.endsWith('List') ? list.kind.slice(0, -4) : undefined,
    };
    const next = new Map<string, T>();
    for (const item of list.items) next.set(objectKey(item), this.stamp(item));
    const prev = this.store;
    this.store = next;
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    const origin: EventOrigin = reason === 'initial' && !this.synced ? 'initial-list' : 'relist';
    for (const [key, old] of prev) {
      if (!next.has(key)) this.emit((h) => h.onDelete?.(old, origin));
    }
    for (const [key, obj] of next) {
      const old = prev.get(key);
      if (!old) this.emit((h) => h.onAdd?.(obj, origin));
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) {
        this.emit((h) => h.onUpdate?.(old, obj, origin));
      }
    }
    this.log?.debug({ reason, items: next.size, resourceVersion: this.resourceVersion }, 'listed');
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w.resolve();
    }
  }

  private async listAll(signal: AbortSignal): Promise<KubeList<T>> {
    const limit = this.opts.pageSize ?? 500;
    const timeoutMs = this.opts.listTimeoutMs ?? 60_000;
    const page = (cont: string | undefined, paged: boolean) =>
      this.http.request<KubeList<T>>('GET', this.path, {
        query: {
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
          limit: paged ? limit : undefined,
          continue: cont,
        },
        signal,
        timeoutMs,
      });
    let list = await page(undefined, true);
    const items = [...(list.items ?? [])];
    while (list.metadata?.continue) {
      try {
        list = await page(list.metadata.continue, true);
      } catch (err) {
        // The snapshot behind a continue token can be compacted away: read everything in one go.
        if (isGone(err)) return page(undefined, false);
        throw err;
      }
      items.push(...(list.items ?? []));
    }
    return { ...list, items };
  }

  private onWatchEvent(ev: WatchEvent<T>): void {
    if (ev.type === 'ERROR') {
      const status = ev.object as unknown as KubeStatus;
      throw new KubeApiError(status.code ?? 500, status, `watch ${this.path}`);
    }
    const rv = ev.object?.metadata?.resourceVersion;
    if (ev.type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    const obj = this.stamp(ev.object);
    const key = objectKey(obj);
    const old = this.store.get(key);
    if (ev.type === 'DELETED') {
      this.store.delete(key);
      this.emit((h) => h.onDelete?.(old ?? obj, 'watch'));
      // The deleted object carries the version of its deletion.
    } else {
      this.store.set(key, obj);
      if (old) this.emit((h) => h.onUpdate?.(old, obj, 'watch'));
      else this.emit((h) => h.onAdd?.(obj, 'watch'));
    }
    if (rv) this.resourceVersion = rv;
  }

  private stamp(raw: T): T {
    const obj =
      raw.kind && raw.apiVersion
        ? raw
        : { apiVersion: this.itemKind.apiVersion, kind: this.itemKind.kind, ...raw };
    return this.opts.transform ? (this.opts.transform(obj) as T) : obj;
  }

  private resync(): void {
    if (!this.synced) return;
    for (const obj of this.store.values()) this.emit((h) => h.onUpdate?.(obj, obj, 'resync'));
  }

  private emit(fn: (h: InformerHandlers<T>) => void): void {
    for (const h of this.handlers) this.call(() => fn(h));
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.hooks.error?.(err, 'handler');
      this.log?.error({ err }, 'informer handler threw');
    }
  }
}
