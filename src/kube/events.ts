// Kubernetes Events (events.k8s.io/v1) the way client-go's recorders keep them readable and cheap:
//  - deduplication: an event identical to one sent in the last `seriesWindowMs` (same regarding
//    object, type, reason, action and note) is not created again; it becomes a series whose
//    `series.count` and `series.lastObservedTime` are PATCHed at most every `seriesFlushMs`
//    (client-go tools/events: isomorphic events within 6 min, heartbeat every 30 min; ours is shorter
//    so `kubectl describe` shows a current count);
//  - spam filter: a token bucket per regarding object (burst 25, one token per 5 min, as
//    client-go's EventSourceObjectSpamFilter), so a hot loop cannot flood the API server; what the
//    filter drops is counted in `dropped`;
//  - fire and forget: recording never throws and never blocks a reconcile; failures are logged once
//    per reason at debug level.
import { randomBytes } from 'node:crypto';

/** The object an event is about (events.k8s.io/v1 `regarding`). */
export interface EventRegarding {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
}

export type EventType = 'Normal' | 'Warning';

/** One event to record; `note` is cut to 1 KiB (the API server's limit). */
export interface EventInput {
  regarding: EventRegarding;
  type: EventType;
  /** UpperCamelCase, e.g. `ChildCreated`, `BusUnreachable`. */
  reason: string;
  /** What the controller did or failed to do, e.g. `Apply`, `Reconcile`, `Delete`. */
  action: string;
  note: string;
}

/** Where events go: POST and merge-PATCH in `namespace`. Errors are caught by the recorder. */
export interface EventSink {
  create(namespace: string, body: Record<string, unknown>): Promise<unknown>;
  patch(namespace: string, name: string, body: Record<string, unknown>): Promise<unknown>;
}

export interface EventRecorderOptions {
  sink: EventSink;
  /** `reportingController`, e.g. `sluice.argoproj.io/controller`. */
  controller: string;
  /** `reportingInstance`, e.g. the pod name. */
  instance: string;
  now?: () => number;
  /** Identical events within this window form a series (default 6 min, as client-go). */
  seriesWindowMs?: number;
  /** Series counts are written at most this often per event (default 30 s). */
  seriesFlushMs?: number;
  /** Spam filter per regarding object: bucket size and refill period per token (25, 5 min). */
  burst?: number;
  refillMs?: number;
  /** Bound on remembered events and buckets (oldest forgotten first; default 4096). */
  maxTracked?: number;
  onError?: (err: unknown, what: 'create' | 'patch') => void;
}

interface Tracked {
  name: string;
  namespace: string;
  count: number;
  /** Count the API server has (what the last create/patch said). */
  written: number;
  firstMs: number;
  lastMs: number;
  timer?: NodeJS.Timeout;
  /** The create is still in flight: a patch must wait for it. */
  creating?: Promise<unknown>;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

/** MicroTime as the API server wants it: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

const MAX_NOTE = 1024;

/** A Kubernetes event recorder with series deduplication and a per-object spam filter. */
export class EventRecorder {
  private readonly o: Required<Omit<EventRecorderOptions, 'onError'>> & Pick<EventRecorderOptions, 'onError'>;
  private readonly tracked = new Map<string, Tracked>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly pending = new Set<Promise<unknown>>();
  /** Events the spam filter refused (not sent at all). */
  dropped = 0;

  constructor(opts: EventRecorderOptions) {
    this.o = {
      now: Date.now,
      seriesWindowMs: 6 * 60_000,
      seriesFlushMs: 30_000,
      burst: 25,
      refillMs: 5 * 60_000,
      maxTracked: 4096,
      ...opts,
    };
  }

  /** Records `e`: a new Event, a series increment of an identical recent one, or nothing (spam). */
  record(e: EventInput): void {
    const now = this.o.now();
    const note = e.note.length > MAX_NOTE ? `${e.note.slice(0, MAX_NOTE - 3)}...` : e.note;
    const r = e.regarding;
    const key = [r.namespace, r.kind, r.name, r.uid ?? '', e.type, e.reason, e.action, note].join('\u0000');
    const known = this.tracked.get(key);
    if (known && now - known.lastMs <= this.o.seriesWindowMs) {
      known.count++;
      known.lastMs = now;
      this.scheduleFlush(known);
      return;
    }
    if (known) this.forget(key);
    if (!this.allow(`${r.namespace}/${r.kind}/${r.name}/${r.uid ?? ''}`, now)) {
      this.dropped++;
      return;
    }
    const name = `${r.name}.${now.toString(16)}${randomBytes(3).toString('hex')}`.slice(-253);
    const t: Tracked = { name, namespace: r.namespace, count: 1, written: 1, firstMs: now, lastMs: now };
    this.remember(key, t);
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace: r.namespace },
      eventTime: microTime(now),
      reportingController: this.o.controller,
      reportingInstance: this.o.instance,
      action: e.action,
      reason: e.reason,
      type: e.type,
      note,
      regarding: {
        apiVersion: r.apiVersion,
        kind: r.kind,
        name: r.name,
        namespace: r.namespace,
        ...(r.uid ? { uid: r.uid } : {}),
      },
    };
    t.creating = this.track(
      this.o.sink.create(r.namespace, body).catch((err) => {
        this.o.onError?.(err, 'create');
        // Not stored: the next identical event creates it afresh.
        if (this.tracked.get(key) === t) this.forget(key);
      }),
    );
  }

  /** Writes pending series counts now and waits for every request in flight (for shutdown, tests). */
  async flush(): Promise<void> {
    for (const t of this.tracked.values()) {
      if (t.timer) {
        clearTimeout(t.timer);
        t.timer = undefined;
        this.writeSeries(t);
      }
    }
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  private allow(key: string, now: number): boolean {
    const b = this.buckets.get(key) ?? { tokens: this.o.burst, atMs: now };
    const refill = Math.floor((now - b.atMs) / this.o.refillMs);
    if (refill > 0) {
      b.tokens = Math.min(this.o.burst, b.tokens + refill);
      b.atMs += refill * this.o.refillMs;
    }
    if (b.tokens >= this.o.burst) b.atMs = now;
    this.buckets.delete(key);
    this.buckets.set(key, b);
    if (this.buckets.size > this.o.maxTracked) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }

  private remember(key: string, t: Tracked): void {
    this.tracked.set(key, t);
    if (this.tracked.size > this.o.maxTracked) this.forget(this.tracked.keys().next().value!);
  }

  private forget(key: string): void {
    const t = this.tracked.get(key);
    if (t?.timer) clearTimeout(t.timer);
    this.tracked.delete(key);
  }

  private scheduleFlush(t: Tracked): void {
    if (t.timer) return;
    t.timer = setTimeout(() => {
      t.timer = undefined;
      this.writeSeries(t);
    }, this.o.seriesFlushMs);
    t.timer.unref();
  }

  private writeSeries(t: Tracked): void {
    if (t.count === t.written) return;
    const count = t.count;
    const body = { series: { count, lastObservedTime: microTime(t.lastMs) } };
    this.track(
      (async () => {
        await t.creating;
        await this.o.sink.patch(t.namespace, t.name, body);
        t.written = Math.max(t.written, count);
      })().catch((err) => this.o.onError?.(err, 'patch')),
    );
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    return p;
  }
}
