import { describe, expect, it } from 'vitest';
import { EventBusSpec } from '../../../src/api/eventbus.ts';
import { ANNOTATION_SPEC_HASH, type Owner, specHash } from '../../../src/controller/resources/common.ts';
import { busNames, managedBusChildren, managedBusUrl } from '../../../src/controller/resources/eventbus.ts';
import {
  deploymentFor,
  ENV_BUS,
  ENV_OBJECT,
  eventSourceService,
} from '../../../src/controller/resources/workload.ts';

const busOwner: Owner = {
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'EventBus',
  name: 'default',
  namespace: 'ns1',
  uid: 'u-1',
};

describe('managed EventBus children', () => {
  const spec = EventBusSpec.parse({
    jetstream: {
      version: '2.12',
      replicas: 3,
      persistence: { volumeSize: '5Gi', storageClassName: 'fast' },
      maxPayload: '2MB',
      settings: 'max_connections: 100',
      startArgs: ['-D'],
    },
  });
  const c = managedBusChildren(busOwner, spec, { defaultImage: 'nats:2.12-alpine', token: 'tok' });
  const n = busNames('default');

  it('owns every child with a controller reference', () => {
    for (const obj of Object.values(c)) {
      expect(obj.metadata?.ownerReferences).toEqual([
        {
          apiVersion: 'argoproj.io/v1alpha1',
          kind: 'EventBus',
          name: 'default',
          uid: 'u-1',
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      expect(obj.metadata?.namespace).toBe('ns1');
    }
  });

  it('writes a clustered nats-server config with the payload limit, auth and the user settings', () => {
    const conf = c.configMap.data!['nats-js.conf']!;
    expect(conf).toContain('max_payload: 2MB');
    expect(conf).toContain('token: $JS_TOKEN');
    expect(conf).toContain(`nats://${n.statefulSet}-2.${n.headless}.ns1.svc:6222`);
    expect(conf).toContain('max_connections: 100');
    expect(c.secret.stringData).toEqual({ token: 'tok' });
  });

  it('builds the StatefulSet from the spec: replicas, image, args, PVC template, probes', () => {
    const sts = c.statefulSet.spec!;
    expect(sts.replicas).toBe(3);
    expect(sts.serviceName).toBe(n.headless);
    const ctr = sts.template.spec!.containers[0]!;
    expect(ctr.image).toBe('nats:2.12-alpine');
    expect(ctr.args).toEqual(['--config', '/etc/nats/nats-js.conf', '-D']);
    expect(ctr.readinessProbe?.httpGet?.path).toBe('/healthz?js-enabled-only=true');
    expect(sts.volumeClaimTemplates?.[0]?.spec).toEqual({
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'fast',
      resources: { requests: { storage: '5Gi' } },
    });
    expect(sts.template.spec!.volumes?.map((v) => v.name)).toEqual(['config']);
    expect(c.headlessService.spec?.clusterIP).toBe('None');
    expect(c.pdb.spec?.maxUnavailable).toBe(1);
    expect(managedBusUrl(busOwner)).toBe(`nats://${n.service}.ns1.svc:4222`);
  });

  it('uses an emptyDir without persistence and no cluster block for one replica', () => {
    const one = managedBusChildren(busOwner, EventBusSpec.parse({ jetstream: { replicas: 1 } }), {
      defaultImage: 'nats:x',
      token: 't',
    });
    expect(one.statefulSet.spec!.volumeClaimTemplates).toBeUndefined();
    expect(one.statefulSet.spec!.template.spec!.volumes?.map((v) => v.name)).toEqual(['config', 'data']);
    expect(one.configMap.data!['nats-js.conf']).not.toContain('cluster {');
    expect(one.statefulSet.spec!.template.spec!.containers[0]!.image).toBe('nats:x');
  });

  it('changes the pod hash when the config changes, not when only streamConfig does', () => {
    const hashOf = (js: Record<string, unknown>) =>
      managedBusChildren(busOwner, EventBusSpec.parse({ jetstream: js }), { defaultImage: 'i', token: 't' })
        .statefulSet.spec!.template.metadata!.annotations![ANNOTATION_SPEC_HASH];
    expect(hashOf({ replicas: 3 })).toBe(hashOf({ replicas: 3, streamConfig: 'maxMsgs: 5' }));
    expect(hashOf({ replicas: 3 })).not.toBe(hashOf({ replicas: 3, maxPayload: '4MB' }));
  });
});

describe('EventSource / Sensor workloads', () => {
  const owner: Owner = {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Sensor',
    name: 's1',
    namespace: 'ns1',
    uid: 'u-2',
  };
  const sensor = {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Sensor' as const,
    metadata: { name: 's1', namespace: 'ns1', uid: 'u-2', generation: 4 },
    spec: {
      replicas: 2,
      template: {
        serviceAccountName: 'runner',
        nodeSelector: { disk: 'ssd' },
        container: { env: [{ name: 'EXTRA', value: '1' }], resources: { limits: { memory: '128Mi' } } },
        metadata: { labels: { team: 'a' } },
      },
    },
  };
  const opts = {
    image: 'sluice:dev',
    bus: { busName: 'default', namespace: 'ns1', url: 'nats://bus:4222' },
    busCredential: { name: 'bus-secret', key: 'token' },
  };

  it('runs `sluice sensor` with the object and bus handed over, honouring the pod template', () => {
    const d = deploymentFor(owner, sensor, opts);
    expect(d.metadata?.name).toBe('sensor-s1');
    expect(d.spec?.replicas).toBe(2);
    const pod = d.spec!.template.spec!;
    expect(pod.serviceAccountName).toBe('runner');
    expect(pod.nodeSelector).toEqual({ disk: 'ssd' });
    const ctr = pod.containers[0]!;
    expect(ctr.args?.[0]).toBe('sensor');
    expect(ctr.resources).toEqual({ limits: { memory: '128Mi' } });
    const env = Object.fromEntries(ctr.env!.map((e) => [e.name, e]));
    const handed = JSON.parse(Buffer.from(env[ENV_OBJECT]!.value!, 'base64').toString());
    expect(handed).toMatchObject({
      kind: 'Sensor',
      metadata: { name: 's1', namespace: 'ns1' },
      spec: sensor.spec,
    });
    expect(JSON.parse(Buffer.from(env[ENV_BUS]!.value!, 'base64').toString())).toEqual(opts.bus);
    expect(env.SLUICE_BUS_CREDENTIAL?.valueFrom?.secretKeyRef).toEqual({ name: 'bus-secret', key: 'token' });
    expect(env.EXTRA?.value).toBe('1');
    expect(d.spec!.template.metadata!.labels).toMatchObject({ team: 'a' });
    expect(ctr.securityContext).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true });
  });

  it('rolls (new pod hash) on a spec change but not on a generation-only change', () => {
    const h = (o: typeof sensor) =>
      deploymentFor(owner, o, opts).spec!.template.metadata!.annotations![ANNOTATION_SPEC_HASH];
    expect(h(sensor)).toBe(h({ ...sensor, metadata: { ...sensor.metadata, generation: 9 } }));
    expect(h(sensor)).not.toBe(h({ ...sensor, spec: { ...sensor.spec, replicas: 3 } }));
  });

  it('creates a Service only when the EventSource asks for one', () => {
    const es = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'EventSource' as const,
      metadata: { name: 'hooks', namespace: 'ns1', uid: 'u-3' },
      spec: { service: { ports: [{ port: 12000, targetPort: 12000 }] } },
    };
    const esOwner: Owner = { ...owner, kind: 'EventSource', name: 'hooks', uid: 'u-3' };
    const svc = eventSourceService(esOwner, es)!;
    expect(svc.metadata?.name).toBe('hooks-eventsource-svc');
    expect(svc.spec?.ports).toEqual([{ port: 12000, targetPort: 12000 }]);
    expect(svc.spec?.selector).toEqual(deploymentFor(esOwner, es, opts).spec!.selector.matchLabels);
    expect(eventSourceService(esOwner, { ...es, spec: {} })).toBeUndefined();
    expect(specHash({ a: 1, b: 2 })).toBe(specHash({ b: 2, a: 1 }));
  });
});
