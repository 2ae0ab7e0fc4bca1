// Status truth as pure functions: the bus's readiness in its users' words, the Deployment's
// availability and the short AVAILABLE cell.
import { describe, expect, it } from 'vitest';
import {
  availableCell,
  busReadiness,
  type DeploymentLike,
  workloadAvailability,
} from '../../../src/controller/reconcile/readiness.ts';

const bus = (status?: Record<string, unknown>, generation = 1) => ({
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'EventBus',
  metadata: { name: 'default', namespace: 'ev', generation },
  ...(status ? { status } : {}),
});
const deployment = (replicas: number, status: DeploymentLike['status'], generation = 2): DeploymentLike => ({
  metadata: { name: 'sensor-s1', generation },
  spec: { replicas },
  status: { observedGeneration: generation, ...status },
});

describe('busReadiness', () => {
  it('a missing bus: one text naming the namespace and the fix', () => {
    expect(busReadiness(undefined, 'later', 'ev')).toEqual({
      type: 'EventBusReady',
      status: 'False',
      reason: 'EventBusNotFound',
      message: 'EventBus "later" does not exist in namespace ev; create it (or set spec.eventBusName)',
    });
  });

  it('an unready bus is named with its own reason and message (e.g. BusUnreachable)', () => {
    const c = busReadiness(
      bus({
        observedGeneration: 1,
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'BusUnreachable',
            message: 'cannot reach the JetStream server yet: connection refused',
          },
        ],
      }),
      'default',
      'ev',
    );
    expect(c).toMatchObject({ status: 'False', reason: 'EventBusNotReady' });
    expect(c.message).toBe(
      'EventBus "default" is not ready (BusUnreachable): cannot reach the JetStream server yet: connection refused',
    );
  });

  it('a bus without status has not been reconciled; one behind its spec is progressing', () => {
    expect(busReadiness(bus(), 'default', 'ev')).toMatchObject({
      status: 'Unknown',
      message: expect.stringContaining('has not reported its state yet'),
    });
    expect(
      busReadiness(
        bus({ observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True' }] }, 2),
        'default',
        'ev',
      ),
    ).toMatchObject({ status: 'Unknown', reason: 'EventBusProgressing' });
    expect(
      busReadiness(
        bus({ observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True' }] }),
        'd',
        'ev',
      ),
    ).toMatchObject({ status: 'True' });
  });
});

describe('availability', () => {
  it('the AVAILABLE cell is available/wanted, or - without a Deployment', () => {
    expect(availableCell(undefined)).toBe('-');
    expect(availableCell(deployment(1, { availableReplicas: 1 }))).toBe('1/1');
    expect(availableCell(deployment(2, {}))).toBe('0/2');
    expect(availableCell(deployment(0, { availableReplicas: 1, replicas: 1 }))).toBe('1/0');
    expect(availableCell({ metadata: { name: 'x' } })).toBe('0/1');
  });

  it('a Deployment scaled to 0 is available only once its pods are gone', () => {
    expect(
      workloadAvailability(deployment(0, { replicas: 1, availableReplicas: 1, updatedReplicas: 1 })),
    ).toMatchObject({
      status: 'False',
      reason: 'RolloutInProgress',
      message: 'Deployment sensor-s1: 1 pod(s) still running, 0 wanted',
    });
    expect(workloadAvailability(deployment(0, { replicas: 0 }))).toMatchObject({
      status: 'True',
      message: '0/0 pods available',
    });
  });

  it('old pods pending termination keep a rollout in progress (kubectl rollout status)', () => {
    expect(
      workloadAvailability(deployment(2, { replicas: 3, availableReplicas: 3, updatedReplicas: 2 })),
    ).toMatchObject({ status: 'False', reason: 'RolloutInProgress' });
    expect(
      workloadAvailability(deployment(2, { replicas: 2, availableReplicas: 2, updatedReplicas: 2 })),
    ).toMatchObject({ status: 'True', reason: 'Available' });
    expect(
      workloadAvailability(deployment(1, { availableReplicas: 1, updatedReplicas: 1 }, 3)),
    ).toMatchObject({
      status: 'True',
    });
    expect(
      workloadAvailability({ metadata: { name: 'n', generation: 3 }, status: { observedGeneration: 2 } }),
    ).toMatchObject({ status: 'False', reason: 'RolloutPending' });
  });
});
