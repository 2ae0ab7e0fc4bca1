import { describe, expect, it } from 'vitest';
import { type BreakerState, CircuitBreaker } from '../../../src/resilience/breaker.ts';

function setup(halfOpenProbes = 1) {
  let t = 0;
  const states: BreakerState[] = [];
  const b = new CircuitBreaker({
    consecutiveFailures: 3,
    openDurationMs: 1000,
    halfOpenProbes,
    now: () => t,
    onStateChange: (s) => states.push(s),
  });
  const call = (ok: boolean) => {
    const p = b.tryAcquire();
    if (!p.allowed) return p.retryInMs;
    p.release(ok);
    return 0;
  };
  return { b, states, call, advance: (ms: number) => (t += ms) };
}

describe('circuit breaker', () => {
  it('opens after consecutive failures and tells callers how long to wait', () => {
    const { b, call, advance } = setup();
    call(false);
    call(true);
    call(false);
    call(false);
    expect(b.state).toBe('closed');
    call(false);
    expect(b.state).toBe('open');
    advance(400);
    expect(call(true)).toBe(600);
  });
  it('half-opens after the open duration, lets one probe through, closes on success', () => {
    const { b, call, advance, states } = setup();
    for (let i = 0; i < 3; i++) call(false);
    advance(1000);
    const probe = b.tryAcquire();
    expect(probe.allowed).toBe(true);
    expect(b.tryAcquire().allowed).toBe(false);
    if (probe.allowed) probe.release(true);
    expect(b.state).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'closed']);
  });
  it('a failed probe opens it again; several probes may be required', () => {
    const { b, call, advance } = setup(2);
    for (let i = 0; i < 3; i++) call(false);
    advance(1000);
    call(false);
    expect(b.state).toBe('open');
    advance(1000);
    call(true);
    expect(b.state).toBe('half-open');
    call(true);
    expect(b.state).toBe('closed');
  });
});
