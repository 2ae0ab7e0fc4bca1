// Two LeaderElectors on one Lease of the shared API server: exactly one leads at any moment
// (sampled every few ms and checked on the callback timeline), and when the leader goes away the
// other takes over within the bounds the timings promise: at the next retry after a graceful
// release, within about one lease duration when the leader just vanishes or is cut off.
// Timings are short for the test: lease 3 s, renew deadline 2 s, retry 0.5 s.
import { CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaderElector, type LeaderElectorOptions } from '../../../src/controller/leader.ts';
import { waitFor } from '../../harness/proc.ts';
import { kubeConfig, kubeMissing, skipNote, uniqueName } from '../../harness/shared.ts';
import { kubeConfigVia, startTcpProxy } from './net.ts';

const LEASE_MS = 3000;
const RENEW_DEADLINE_MS = 2000;
const RETRY_MS = 500;
/** Longest a candidate sleeps between attempts (client-go jitter: up to +120%). */
const MAX_RETRY_SLEEP_MS = RETRY_MS * 2.2;
/** Room for request latency and timer lateness on a busy 2-core machine. */
const SLACK_MS = 1000;

interface Candidate {
  id: string;
  elector: LeaderElector;
  /** [start, end] of each leadership period, from the callbacks (end undefined while leading). */
  periods: Array<[number, number | undefined]>;
  signals: AbortSignal[];
}

/** Samples isLeader() of all candidates every few ms and counts moments when two lead. */
function sampleLeaders(cands: Candidate[]) {
  let samples = 0;
  let both = 0;
  const timer = setInterval(() => {
    samples++;
    if (cands.filter((c) => c.elector.isLeader()).length > 1) both++;
  }, 3);
  return {
    stop: () => clearInterval(timer),
    get samples() {
      return samples;
    },
    get both() {
      return both;
    },
  };
}

function noOverlap(a: Candidate, b: Candidate): void {
  for (const [s1, e1] of a.periods) {
    for (const [s2, e2] of b.periods) {
      const end1 = e1 ?? Number.POSITIVE_INFINITY;
      const end2 = e2 ?? Number.POSITIVE_INFINITY;
      expect(s1 < end2 && s2 < end1, `${a.id} ${s1}-${e1} overlaps ${b.id} ${s2}-${e2}`).toBe(false);
    }
  }
}

describe.skipIf(kubeMissing())(`leader election on a Lease${skipNote(kubeMissing())}`, () => {
  let kc: KubeConfig;
  let coord: CoordinationV1Api;
  let core: CoreV1Api;
  const namespace = uniqueName('lease');
  const live: LeaderElector[] = [];

  beforeAll(async () => {
    kc = kubeConfig();
    coord = kc.makeApiClient(CoordinationV1Api);
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    for (const e of live) await e.stop({ release: false });
    await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  function candidate(id: string, lease: string, extra: Partial<LeaderElectorOptions> = {}): Candidate {
    const c: Candidate = { id, periods: [], signals: [], elector: undefined as unknown as LeaderElector };
    c.elector = new LeaderElector({
      kubeConfig: kc,
      namespace,
      name: lease,
      identity: id,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: RENEW_DEADLINE_MS,
      retryPeriodMs: RETRY_MS,
      onStartedLeading: (signal) => {
        c.periods.push([Date.now(), undefined]);
        c.signals.push(signal);
      },
      onStoppedLeading: () => {
        const last = c.periods.at(-1);
        if (last) last[1] = Date.now();
      },
      ...extra,
    });
    live.push(c.elector);
    return c;
  }

  async function leaderOf(cands: Candidate[]): Promise<Candidate> {
    return waitFor('a leader', () => cands.find((c) => c.elector.isLeader()), {
      timeoutMs: 15_000,
      intervalMs: 20,
    });
  }

  it('creates the Lease, keeps one stable leader, and hands over at the next retry on graceful stop', async () => {
    const lease = uniqueName('graceful');
    const a = candidate('a', lease);
    const b = candidate('b', lease);
    const sampler = sampleLeaders([a, b]);
    a.elector.start();
    b.elector.start();
    const first = await leaderOf([a, b]);
    const other = first === a ? b : a;

    // Several lease durations with both running: the leader keeps renewing, nobody else leads.
    await new Promise((r) => setTimeout(r, LEASE_MS * 1.5));
    expect(first.elector.isLeader()).toBe(true);
    expect(other.elector.isLeader()).toBe(false);
    expect(other.elector.leaderIdentity()).toBe(first.id);
    const held = await coord.readNamespacedLease({ name: lease, namespace });
    expect(held.spec?.holderIdentity).toBe(first.id);
    expect(held.spec?.leaseDurationSeconds).toBe(LEASE_MS / 1000);
    const transitions = held.spec?.leaseTransitions ?? 0;

    const stoppedAt = Date.now();
    await first.elector.stop();
    expect(first.elector.isLeader()).toBe(false);
    expect(first.signals[0]?.aborted).toBe(true);
    await waitFor('takeover', () => other.elector.isLeader(), { timeoutMs: LEASE_MS * 3, intervalMs: 5 });
    const takeoverMs = Date.now() - stoppedAt;
    sampler.stop();
    console.info(`[leader] graceful release: takeover after ${takeoverMs} ms (${sampler.samples} samples)`);

    // Released, so no waiting for expiry: the other took it at its next retry.
    expect(takeoverMs).toBeLessThan(MAX_RETRY_SLEEP_MS + SLACK_MS);
    expect(takeoverMs).toBeLessThan(LEASE_MS);
    expect(sampler.both).toBe(0);
    noOverlap(a, b);
    const after = await coord.readNamespacedLease({ name: lease, namespace });
    expect(after.spec?.holderIdentity).toBe(other.id);
    expect(after.spec?.leaseTransitions).toBe(transitions + 1);
    await other.elector.stop();
  });

  it('takes over within the lease duration when the leader vanishes without releasing', async () => {
    const lease = uniqueName('vanish');
    const a = candidate('a', lease);
    const b = candidate('b', lease);
    const sampler = sampleLeaders([a, b]);
    a.elector.start();
    await leaderOf([a]);
    b.elector.start();
    // Let b observe a renewing for a while.
    await new Promise((r) => setTimeout(r, RETRY_MS * 3));
    expect(b.elector.isLeader()).toBe(false);

    const stoppedAt = Date.now();
    await a.elector.stop({ release: false }); // renewals simply stop; the Lease still names a
    const stillHeld = await coord.readNamespacedLease({ name: lease, namespace });
    expect(stillHeld.spec?.holderIdentity).toBe('a');
    await waitFor('takeover', () => b.elector.isLeader(), { timeoutMs: LEASE_MS * 3, intervalMs: 5 });
    const takeoverMs = Date.now() - stoppedAt;
    sampler.stop();
    console.info(`[leader] leader vanished: takeover after ${takeoverMs} ms`);

    // b waits for expiry measured from the last renewal it saw (at most one retry before the stop)...
    expect(takeoverMs).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS - SLACK_MS);
    // ...and then needs at most one more retry sleep.
    expect(takeoverMs).toBeLessThan(LEASE_MS + MAX_RETRY_SLEEP_MS + SLACK_MS);
    expect(sampler.both).toBe(0);
    noOverlap(a, b);
    await b.elector.stop();
  });

  it('a leader cut off from the API server steps down before the other takes over', async () => {
    const lease = uniqueName('cut');
    const proxy = await startTcpProxy(kc.getCurrentCluster()!.server);
    try {
      const a = candidate('a', lease, { kubeConfig: kubeConfigVia(kc, proxy.server) });
      const b = candidate('b', lease);
      const sampler = sampleLeaders([a, b]);
      a.elector.start();
      await leaderOf([a]);
      b.elector.start();
      await new Promise((r) => setTimeout(r, RETRY_MS * 3));

      const cutAt = Date.now();
      proxy.cut();
      await waitFor('a to step down', () => a.periods[0]?.[1], { timeoutMs: LEASE_MS * 3, intervalMs: 5 });
      const stepDownMs = (a.periods[0]?.[1] ?? 0) - cutAt;
      expect(a.signals[0]?.aborted).toBe(true);
      await waitFor('takeover', () => b.elector.isLeader(), { timeoutMs: LEASE_MS * 3, intervalMs: 5 });
      const takeoverMs = Date.now() - cutAt;
      console.info(
        `[leader] leader cut off: it stepped down after ${stepDownMs} ms, takeover after ${takeoverMs} ms`,
      );

      // a gives up within its renew deadline (counted from its last renewal, before the cut)...
      expect(stepDownMs).toBeLessThanOrEqual(RENEW_DEADLINE_MS + SLACK_MS / 2);
      // ...b only after the lease expired in its eyes, and within the promised bound.
      expect(takeoverMs).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS - SLACK_MS);
      expect(takeoverMs).toBeLessThan(LEASE_MS + MAX_RETRY_SLEEP_MS + SLACK_MS);
      expect((b.periods[0]?.[0] ?? 0) - (a.periods[0]?.[1] ?? 0)).toBeGreaterThan(0);

      // Reconnected, a finds b holding a live Lease and stays a follower.
      proxy.heal();
      await new Promise((r) => setTimeout(r, RETRY_MS * 4));
      expect(a.elector.isLeader()).toBe(false);
      expect(a.elector.leaderIdentity()).toBe('b');
      expect(b.elector.isLeader()).toBe(true);
      sampler.stop();
      expect(sampler.both).toBe(0);
      noOverlap(a, b);
      await a.elector.stop();
      await b.elector.stop();
    } finally {
      await proxy.close();
    }
  });
});
