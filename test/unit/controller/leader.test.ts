import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { LeaderElector } from '../../../src/controller/leader.ts';

function kc(): KubeConfig {
  const k = new KubeConfig();
  k.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: false }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return k;
}

describe('LeaderElector options', () => {
  const base = { kubeConfig: kc(), namespace: 'ns', name: 'lease', identity: 'me' };

  it('accepts client-go defaults and short test timings', () => {
    expect(() => new LeaderElector(base)).not.toThrow();
    expect(
      () => new LeaderElector({ ...base, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 }),
    ).not.toThrow();
  });

  it('rejects timings that could let two candidates lead or a leader flap', () => {
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 2000, renewDeadlineMs: 2000 })).toThrow(
      /leaseDurationMs must be greater/,
    );
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 2000, retryPeriodMs: 2000 })).toThrow(
      /renewDeadlineMs must be greater/,
    );
    expect(
      () => new LeaderElector({ ...base, leaseDurationMs: 900, renewDeadlineMs: 800, retryPeriodMs: 100 }),
    ).toThrow(/at least 1 s/);
    expect(() => new LeaderElector({ ...base, identity: '' })).toThrow(/identity/);
  });

  it('is not leader before start and stop() without start is a no-op', async () => {
    const e = new LeaderElector(base);
    expect(e.isLeader()).toBe(false);
    expect(e.leaderIdentity()).toBe('');
    await e.stop();
  });
});
