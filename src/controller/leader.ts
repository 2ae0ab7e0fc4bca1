// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules:
//  - every write carries the resourceVersion that was read, so of two candidates racing for the
//    same Lease only one write succeeds;
//  - a candidate measures expiry on its own clock, from the moment it last saw the Lease change,
//    never from timestamps written by another machine (clock skew cannot make two leaders);
//  - a leader that has not renewed for `renewDeadline` steps down on its own, and since
//    renewDeadline < leaseDuration it has done so before anybody else may take the Lease over.
// A leader that stops gracefully empties holderIdentity so a candidate can take over at its next
// retry instead of waiting for expiry.
import type { KubeAccess } from '../kube/config.ts';
import type { Logger } from '../observability/logger.ts';
import { isConflict, isNotFound, KubeHttp } from './kube-http.ts';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name?: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  kubeConfig: KubeAccess;
  namespace: string;
  /** Name of the Lease. */
  name: string;
  /** Unique per candidate (e.g. pod name + random suffix). */
  identity: string;
  /** How long a Lease stays valid after its last renewal, as seen by the others (default 15 s). */
  leaseDurationMs?: number;
  /** The leader steps down when it could not renew for this long (default 10 s). */
  renewDeadlineMs?: number;
  /** Time between attempts to acquire or renew (default 2 s). */
  retryPeriodMs?: number;
  /** Empty the Lease on stop() so another candidate takes over at once (default true). */
  releaseOnStop?: boolean;
  /** Called on becoming leader; `signal` aborts when leadership ends. */
  onStartedLeading?: (signal: AbortSignal) => void | Promise<void>;
  /** Called after leadership ended (lost, or stop()). */
  onStoppedLeading?: () => void;
  /** Called whenever the observed holder changes (including to ourselves). */
  onNewLeader?: (identity: string) => void;
  logger?: Logger;
}

export interface StopOptions {
  /** Override releaseOnStop for this stop (false simulates a leader that simply vanishes). */
  release?: boolean;
}

/** RFC 3339 with microseconds, the format of metav1.MicroTime. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export class LeaderElector {
  private readonly http: KubeHttp;
  private readonly opts: LeaderElectorOptions;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly path: string;
  private readonly log: Logger | undefined;
  /** Local time at which the last successful renew attempt *started* (conservative for the leader). */
  private lastRenew = 0;
  private leading = false;
  private leadership: AbortController | undefined;
  /** What we last saw in the Lease and when (local clock, after the read returned). */
  private observedSpec = '';
  private observedAt = 0;
  private observedHolder = '';
  private stopper: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private releaseOnStop: boolean;

  constructor(opts: LeaderElectorOptions) {
    this.opts = opts;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.releaseOnStop = opts.releaseOnStop ?? true;
    if (!(this.leaseDurationMs > this.renewDeadlineMs)) {
      throw new Error('leaseDurationMs must be greater than renewDeadlineMs');
    }
    if (!(this.renewDeadlineMs > this.retryPeriodMs * 1.2)) {
      throw new Error('renewDeadlineMs must be greater than 1.2 × retryPeriodMs');
    }
    if (this.leaseDurationMs < 1000) throw new Error('leaseDurationMs must be at least 1 s');
    if (!opts.identity) throw new Error('identity must not be empty');
    this.http = new KubeHttp(opts.kubeConfig);
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(opts.namespace)}/leases`;
    this.log = opts.logger?.child({
      component: 'leader-election',
      lease: `${opts.namespace}/${opts.name}`,
      identity: opts.identity,
    });
  }

  /**
   * True while this candidate holds the Lease. Turns false on its own once renewDeadline has passed
   * since the last successful renewal, even if the renew loop has not noticed yet.
   */
  isLeader(): boolean {
    return this.leading && Date.now() - this.lastRenew < this.renewDeadlineMs;
  }

  /** The holder seen in the Lease at the last read ('' when none). */
  leaderIdentity(): string {
    return this.observedHolder;
  }

  /** Starts campaigning in the background (no-op when already running). */
  start(): void {
    if (this.loop) return;
    const stopper = new AbortController();
    this.stopper = stopper;
    this.loop = this.run(stopper.signal).catch((err: unknown) => {
      this.log?.error({ err }, 'leader election loop failed');
    });
  }

  /** Stops campaigning; a leader steps down and (unless told not to) releases the Lease. */
  async stop(opts: StopOptions = {}): Promise<void> {
    if (!this.stopper) return;
    this.releaseOnStop = opts.release ?? this.opts.releaseOnStop ?? true;
    this.stopper.abort();
    await this.loop;
    this.loop = undefined;
    this.stopper = undefined;
  }

  private async run(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      // Candidate: try until we hold the Lease.
      const attemptStart = Date.now();
      if (!(await this.tryAcquireOrRenew(stop, this.retryPeriodMs))) {
        // Jittered like client-go (up to +120%) so candidates do not retry in lockstep.
        await sleep(this.retryPeriodMs * (1 + Math.random() * 1.2), stop);
        continue;
      }
      this.becomeLeader(attemptStart);

      // Leader: renew every retryPeriod; give up once renewDeadline passed without success. The
      // wait never runs past the deadline, so stepping down (and aborting the leadership signal)
      // happens when isLeader() turns false, not up to a retry period later.
      while (!stop.aborted) {
        const deadline = this.lastRenew + this.renewDeadlineMs;
        await sleep(Math.min(this.retryPeriodMs, Math.max(0, deadline - Date.now())), stop);
        if (stop.aborted) break;
        const start = Date.now();
        if (start >= deadline) {
          this.log?.warn({ sinceRenewMs: start - this.lastRenew }, 'could not renew the Lease in time');
          break;
        }
        if (await this.tryAcquireOrRenew(stop, deadline - start)) this.lastRenew = start;
      }

      if (stop.aborted) {
        // Stepping down first means we never lead while the Lease is free for others.
        const wasLeading = this.stepDown();
        if (wasLeading && this.releaseOnStop) await this.release();
        if (wasLeading) this.notifyStopped();
        return;
      }
      if (this.stepDown()) this.notifyStopped();
    }
  }

  private becomeLeader(attemptStart: number): void {
    this.lastRenew = attemptStart;
    this.leading = true;
    const ac = new AbortController();
    this.leadership = ac;
    this.log?.info('became leader');
    const cb = this.opts.onStartedLeading;
    if (cb) {
      Promise.resolve()
        .then(() => cb(ac.signal))
        .catch((err: unknown) => this.log?.error({ err }, 'onStartedLeading failed'));
    }
  }

  /** Ends leadership locally; returns whether we were leading. */
  private stepDown(): boolean {
    const was = this.leading;
    this.leading = false;
    this.leadership?.abort();
    this.leadership = undefined;
    if (was) this.log?.info('stopped leading');
    return was;
  }

  private notifyStopped(): void {
    try {
      this.opts.onStoppedLeading?.();
    } catch (err) {
      this.log?.error({ err }, 'onStoppedLeading failed');
    }
  }

  private observe(spec: LeaseSpec | undefined, at: number): void {
    const snapshot = JSON.stringify([
      spec?.holderIdentity ?? '',
      spec?.leaseDurationSeconds ?? 0,
      spec?.acquireTime ?? '',
      spec?.renewTime ?? '',
      spec?.leaseTransitions ?? 0,
    ]);
    if (snapshot !== this.observedSpec) {
      this.observedSpec = snapshot;
      this.observedAt = at;
    }
    const holder = spec?.holderIdentity ?? '';
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      if (holder) {
        this.log?.info({ holder }, 'new leader observed');
        try {
          this.opts.onNewLeader?.(holder);
        } catch (err) {
          this.log?.error({ err }, 'onNewLeader failed');
        }
      }
    }
  }

  /** One read-then-write round; true when we hold the Lease afterwards. Never throws. */
  private async tryAcquireOrRenew(stop: AbortSignal, timeoutMs: number): Promise<boolean> {
    const signal = AbortSignal.any([stop, AbortSignal.timeout(Math.max(1, timeoutMs))]);
    const me = this.opts.identity;
    const durationSeconds = Math.ceil(this.leaseDurationMs / 1000);
    try {
      let lease: Lease;
      try {
        lease = await this.http.request<Lease>('GET', `${this.path}/${encodeURIComponent(this.opts.name)}`, {
          signal,
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        const now = Date.now();
        const spec: LeaseSpec = {
          holderIdentity: me,
          leaseDurationSeconds: durationSeconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        };
        const created = await this.http.request<Lease>('POST', this.path, {
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.opts.name, namespace: this.opts.namespace },
            spec,
          },
          signal,
        });
        this.observe(created.spec, Date.now());
        return true;
      }

      const readAt = Date.now();
      const old = lease.spec ?? {};
      this.observe(old, readAt);
      const holder = old.holderIdentity ?? '';
      const validForMs = (old.leaseDurationSeconds ?? durationSeconds) * 1000;
      if (holder && holder !== me && this.observedAt + validForMs > readAt) return false;

      const now = Date.now();
      const mine = holder === me;
      const spec: LeaseSpec = {
        holderIdentity: me,
        leaseDurationSeconds: durationSeconds,
        acquireTime: mine && old.acquireTime ? old.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: mine ? (old.leaseTransitions ?? 0) : (old.leaseTransitions ?? 0) + 1,
      };
      const updated = await this.http.request<Lease>(
        'PUT',
        `${this.path}/${encodeURIComponent(this.opts.name)}`,
        { body: { ...lease, spec }, signal },
      );
      this.observe(updated.spec, Date.now());
      return true;
    } catch (err) {
      if (isConflict(err)) {
        this.log?.debug('lost a race on the Lease (409)');
      } else if (!stop.aborted) {
        this.log?.warn({ err }, 'Lease read/write failed');
      }
      return false;
    }
  }

  /** Hands the Lease back: empty holder, 1 s duration, so any candidate may take it at once. */
  private async release(): Promise<void> {
    try {
      const signal = AbortSignal.timeout(this.renewDeadlineMs);
      const url = `${this.path}/${encodeURIComponent(this.opts.name)}`;
      const lease = await this.http.request<Lease>('GET', url, { signal });
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      const now = microTime(Date.now());
      await this.http.request<Lease>('PUT', url, {
        body: {
          ...lease,
          spec: {
            holderIdentity: '',
            leaseDurationSeconds: 1,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: lease.spec?.leaseTransitions ?? 0,
          },
        },
        signal,
      });
      this.observedHolder = '';
      this.log?.info('released the Lease');
    } catch (err) {
      this.log?.warn({ err }, 'could not release the Lease; others take over when it expires');
    }
  }
}
