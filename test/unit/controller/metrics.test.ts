import { describe, expect, it } from 'vitest';
import { informerMetrics, leaderMetric, workQueueMetrics } from '../../../src/controller/metrics.ts';
import { WorkQueue } from '../../../src/controller/workqueue.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';

describe('control-plane metrics', () => {
  it('records work-queue activity per queue name, sharing metrics between queues', async () => {
    const reg = newRegistry();
    const q = new WorkQueue({ hooks: workQueueMetrics(reg, 'sensor') });
    const other = new WorkQueue({ hooks: workQueueMetrics(reg, 'eventbus') });
    q.add('a');
    q.add('b');
    other.add('x');
    const k = await q.get();
    q.done(k!);
    q.addRateLimited('a');
    const text = await reg.metrics();
    expect(text).toContain('workqueue_adds_total{name="sensor"} 2');
    expect(text).toContain('workqueue_adds_total{name="eventbus"} 1');
    expect(text).toContain('workqueue_depth{name="sensor"} 1');
    expect(text).toContain('workqueue_retries_total{name="sensor"} 1');
    expect(text).toContain('workqueue_queue_duration_seconds_count{name="sensor"} 1');
    expect(text).toContain('workqueue_work_duration_seconds_count{name="sensor"} 1');
    q.shutDown();
    other.shutDown();
  });

  it('counts watch restarts and relists by reason, and leader status', async () => {
    const reg = newRegistry();
    const hooks = informerMetrics(reg, 'sensors');
    hooks.relist?.('initial');
    hooks.watchRestart?.('gone');
    hooks.relist?.('gone');
    const setLeader = leaderMetric(reg, 'sluice-controller');
    setLeader(true);
    const text = await reg.metrics();
    expect(text).toContain('sluice_watch_relists_total{resource="sensors",reason="gone"} 1');
    expect(text).toContain('sluice_watch_restarts_total{resource="sensors",reason="gone"} 1');
    expect(text).toContain('leader_election_master_status{name="sluice-controller"} 1');
  });
});
