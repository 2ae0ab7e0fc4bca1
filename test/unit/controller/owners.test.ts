import { describe, expect, it } from 'vitest';
import { collectionPath, objectKey, splitKey } from '../../../src/controller/kube-http.ts';
import {
  controllerOf,
  controllerRef,
  enqueueOwner,
  groupOf,
  isControlledBy,
  ownerKey,
  withControllerRef,
} from '../../../src/controller/owners.ts';

const sensor = {
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'Sensor',
  metadata: { name: 's1', namespace: 'ns', uid: 'uid-s1' },
};
const SensorKind = { group: 'argoproj.io', kind: 'Sensor' };

describe('owner references', () => {
  it('builds a controller reference that blocks owner deletion', () => {
    expect(controllerRef(sensor)).toEqual({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Sensor',
      name: 's1',
      uid: 'uid-s1',
      controller: true,
      blockOwnerDeletion: true,
    });
  });

  it('refuses an owner that was not read from the API (no uid/kind)', () => {
    expect(() => controllerRef({ metadata: { name: 'x' } })).toThrow(/uid/);
  });

  it('maps a child back to its controlling owner key, by group and kind, ignoring version', () => {
    const deploy = { metadata: { name: 'd', namespace: 'ns', ownerReferences: [controllerRef(sensor)] } };
    expect(ownerKey(deploy, SensorKind)).toBe('ns/s1');
    const otherVersion = {
      metadata: {
        name: 'd',
        namespace: 'ns',
        ownerReferences: [{ ...controllerRef(sensor), apiVersion: 'argoproj.io/v1' }],
      },
    };
    expect(ownerKey(otherVersion, SensorKind)).toBe('ns/s1');
    expect(ownerKey(deploy, { group: 'argoproj.io', kind: 'EventSource' })).toBeUndefined();
    expect(ownerKey(deploy, { group: 'other.io', kind: 'Sensor' })).toBeUndefined();
    // A non-controller reference does not count.
    const plain = {
      metadata: {
        name: 'd',
        namespace: 'ns',
        ownerReferences: [{ ...controllerRef(sensor), controller: false }],
      },
    };
    expect(ownerKey(plain, SensorKind)).toBeUndefined();
    expect(ownerKey({ metadata: { name: 'bare', namespace: 'ns' } }, SensorKind)).toBeUndefined();
    // Cluster-scoped owner kinds map to the bare name.
    expect(ownerKey(deploy, { ...SensorKind, namespaced: false })).toBe('s1');
  });

  it('sets itself as controller, keeps other references, and refuses to steal a controlled child', () => {
    const other = { apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', uid: 'uid-cm' };
    const child = { kind: 'Deployment', metadata: { name: 'd', ownerReferences: [other] } };
    const refs = withControllerRef(child, sensor);
    expect(refs).toEqual([other, controllerRef(sensor)]);
    const owned = { kind: 'Deployment', metadata: { name: 'd', ownerReferences: refs } };
    expect(withControllerRef(owned, sensor)).toEqual(refs);
    expect(isControlledBy(owned, sensor)).toBe(true);
    expect(controllerOf(owned)?.uid).toBe('uid-s1');
    const rival = { ...sensor, metadata: { ...sensor.metadata, name: 's2', uid: 'uid-s2' } };
    expect(isControlledBy(owned, rival)).toBe(false);
    expect(() => withControllerRef(owned, rival)).toThrow(/already controlled by Sensor s1/);
  });

  it('enqueueOwner handlers enqueue the owner on add/update/delete and both owners on a hand-over', () => {
    const keys: string[] = [];
    const h = enqueueOwner(SensorKind, (k) => keys.push(k));
    const child = (owner?: typeof sensor) => ({
      metadata: { name: 'd', namespace: 'ns', ownerReferences: owner ? [controllerRef(owner)] : [] },
    });
    const s2 = { ...sensor, metadata: { ...sensor.metadata, name: 's2', uid: 'uid-s2' } };
    h.onAdd?.(child(sensor), 'watch');
    h.onUpdate?.(child(sensor), child(sensor), 'watch');
    h.onUpdate?.(child(sensor), child(s2), 'watch');
    h.onDelete?.(child(s2), 'watch');
    h.onAdd?.(child(), 'watch');
    expect(keys).toEqual(['ns/s1', 'ns/s1', 'ns/s1', 'ns/s2', 'ns/s2']);
  });

  it('groupOf splits core and named groups', () => {
    expect(groupOf('v1')).toBe('');
    expect(groupOf('apps/v1')).toBe('apps');
  });
});

describe('keys and paths', () => {
  it('keys objects like client-go and splits them back', () => {
    expect(objectKey({ metadata: { name: 'a', namespace: 'ns' } })).toBe('ns/a');
    expect(objectKey({ metadata: { name: 'node1' } })).toBe('node1');
    expect(() => objectKey({ metadata: {} })).toThrow();
    expect(splitKey('ns/a')).toEqual({ namespace: 'ns', name: 'a' });
    expect(splitKey('node1')).toEqual({ namespace: undefined, name: 'node1' });
  });

  it('builds namespaced collection paths for core and group resources', () => {
    expect(collectionPath('/api/v1/configmaps', 'ns')).toBe('/api/v1/namespaces/ns/configmaps');
    expect(collectionPath('/apis/argoproj.io/v1alpha1/sensors/', 'x')).toBe(
      '/apis/argoproj.io/v1alpha1/namespaces/x/sensors',
    );
    expect(collectionPath('/apis/apps/v1/deployments')).toBe('/apis/apps/v1/deployments');
  });
});
