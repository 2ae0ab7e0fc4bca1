import { describe, expect, it } from 'vitest';
import { EventBusSpec } from '../../../src/api/eventbus.ts';
import { reloaderOptions } from '../../../src/controller/reconcile/eventbus.ts';
import {
  ANNOTATION_SPEC_HASH,
  type Owner,
  specHash,
  withSecurityDefaults,
} from '../../../src/controller/resources/common.ts';
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
  const secrets = { adminSeed: 'SUADMINSEED', adminPublicKey: 'UADMIN', routePassword: 'route-pw' };
  const pki = { ca: 'CA', caKey: 'CAKEY', cert: 'CERT', key: 'KEY' };
  const users = [
    {
      publicKey: 'USENSOR',
      permissions: { publish: ['$JS.API.CONSUMER.MSG.NEXT.s.c'], subscribe: ['_INBOX_s1.>'] },
      slot: 2,
    },
  ];
  const base = { defaultImage: 'nats:2.12-alpine', reloaderImage: 'reloader:1', secrets, users };
  const c = managedBusChildren(busOwner, spec, {
    ...base,
    tls: { secretName: busNames('default').tls, generated: pki },
  });
  const n = busNames('default');
  const conf = c.configSecret.stringData!['nats-js.conf']!;

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

  it('writes a secured clustered config: NKey users with permissions, route password and mutual TLS, client TLS', () => {
    expect(conf).toContain('max_payload: 2MB');
    expect(conf).toContain('{ nkey: "UADMIN" }');
    expect(conf).toContain(
      '{ nkey: "USENSOR", permissions: { publish: { allow: ["$JS.API.INFO", "$JS.API.CONSUMER.MSG.NEXT.s.c"] }, subscribe: { allow: ["_INBOX_s1.>"] } } }',
    );
    expect(conf).toContain(`"nats://route:route-pw@${n.statefulSet}-2.${n.headless}.ns1.svc:6222"`);
    expect(conf).toMatch(/cluster \{[\s\S]*authorization \{\n {4}user: "route"\n {4}password: "route-pw"/);
    expect(conf).toMatch(/cluster \{[\s\S]*tls \{[\s\S]*verify: true/);
    expect(conf).toMatch(/^tls \{\n {2}cert_file: "\/etc\/nats-tls\/tls.crt"/m);
    expect(conf).not.toContain('token');
    expect(conf).toContain('max_connections: 100');
    // Secrets live in Secrets: the credentials, the config (route password) and the TLS material.
    expect(c.secret.stringData).toEqual({ 'admin.nkey': 'SUADMINSEED', 'route.password': 'route-pw' });
    expect(c.configSecret.kind).toBe('Secret');
    expect(c.tlsSecret?.stringData).toEqual({ 'tls.crt': 'CERT', 'tls.key': 'KEY', 'ca.crt': 'CA' });
  });

  it('puts JetStream in the bus account and each role in its own account slot, importing only its subjects', () => {
    const block = (name: string) =>
      new RegExp(`\n  ${name.replace('$', '\\$')}: \\{[\\s\\S]*?\\n  \\}`).exec(conf)?.[0] ?? '';
    const bus = block('SLUICE');
    expect(bus).toContain('{ nkey: "UADMIN" }');
    expect(bus).not.toContain('USENSOR');
    expect(bus).toMatch(/jetstream: \{ max_file: \d+, max_mem: \d+ \}/);
    expect(bus).toContain(
      '{ service: "$JS.API.CONSUMER.MSG.NEXT.s.c", response_type: "stream", accounts: ["W2"] }',
    );
    expect(bus).toMatch(/\{ service: "\$JS\.API\.INFO", accounts: \["W0", "W1", "W2", [^\]]*"W31"\] \}/);
    const role = block('W2');
    expect(role).toContain('USENSOR');
    expect(role).toContain('{ service: { account: SLUICE, subject: "$JS.API.CONSUMER.MSG.NEXT.s.c" } }');
    expect(role).not.toContain('jetstream');
    // Free slots exist from the start (a reload cannot add accounts) and import only $JS.API.INFO.
    expect(block('W31')).toBe(
      '\n  W31: {\n    imports: [{ service: { account: SLUICE, subject: "$JS.API.INFO" } }]\n  }',
    );
    expect(conf).not.toContain('authorization {\n  users');
  });

  it('keeps the CA key out of every pod: its own Secret, and only the certificate files are mounted', () => {
    expect(c.caSecret?.metadata?.name).toBe(n.ca);
    expect(c.caSecret?.stringData).toEqual({ 'ca.crt': 'CA', 'ca.key': 'CAKEY' });
    const pod = c.statefulSet.spec!.template.spec!;
    const tls = pod.volumes?.find((v) => v.name === 'tls');
    expect(tls?.secret?.items?.map((i) => i.key)).toEqual(['tls.crt', 'tls.key', 'ca.crt']);
    expect(pod.volumes?.some((v) => v.secret?.secretName === n.ca)).toBe(false);
    for (const ctr of pod.containers) expect(JSON.stringify(ctr)).not.toContain('ca.key');
  });

  it('gives JetStream explicit limits from the volume, and admits routes and the monitor port only from whom it names', () => {
    // 75% of the 5Gi claim.
    expect(conf).toContain(`max_file_store: ${Math.floor(5 * 1024 ** 3 * 0.75)}`);
    expect(conf).toMatch(/max_memory_store: \d+/);
    const np = c.networkPolicy;
    expect(np.apiVersion).toBe('networking.k8s.io/v1');
    const rules = np.spec!.ingress as unknown as Array<{ from?: unknown[]; ports: Array<{ port: number }> }>;
    const byPort = new Map(rules.map((r) => [r.ports[0]!.port, r.from]));
    expect(byPort.get(4222)).toBeUndefined();
    expect(byPort.get(6222)).toEqual([{ podSelector: { matchLabels: np.spec!.podSelector!.matchLabels } }]);
    expect(byPort.get(8222)).toEqual([
      { namespaceSelector: {}, podSelector: { matchLabels: { 'sluice.argoproj.io/bus-monitor': 'true' } } },
    ]);
    expect(np.spec!.podSelector!.matchLabels).toEqual(c.statefulSet.spec!.selector.matchLabels);
  });

  it('keeps the server pods non-root when the spec sets a securityContext of its own (fields laid over)', () => {
    const own = EventBusSpec.parse({
      jetstream: {
        version: '2.12',
        securityContext: { fsGroup: 2000 },
        containerTemplate: { securityContext: { runAsUser: 2000 } },
      },
    });
    const pod = managedBusChildren(busOwner, own, base).statefulSet.spec!.template.spec!;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, fsGroup: 2000 });
    expect(pod.containers[0]!.securityContext).toMatchObject({
      runAsUser: 2000,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('builds a hardened StatefulSet: restricted security context, limits, reloader, no secrets in env', () => {
    const sts = c.statefulSet.spec!;
    expect(sts.replicas).toBe(3);
    expect(sts.serviceName).toBe(n.headless);
    const pod = sts.template.spec!;
    const [ctr, reloader] = pod.containers;
    expect(ctr!.image).toBe('nats:2.12-alpine');
    expect(ctr!.args).toEqual(['--config', '/etc/nats-config/nats-js.conf', '-D']);
    expect(ctr!.readinessProbe?.httpGet?.path).toBe('/healthz?js-enabled-only=true');
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    for (const k of [ctr!, reloader!]) {
      expect(k.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(k.resources?.limits?.memory).toBeTruthy();
      expect(k.resources?.requests?.cpu).toBeTruthy();
    }
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.shareProcessNamespace).toBe(true);
    expect(reloader!.image).toBe('reloader:1');
    expect(reloader!.command).toBeUndefined();
    expect(reloader!.args).toEqual([
      '-pid',
      '/var/run/nats/nats.pid',
      '-config',
      '/etc/nats-config/nats-js.conf',
      '-config',
      '/etc/nats-tls/tls.crt',
      '-config',
      '/etc/nats-tls/ca.crt',
    ]);
    for (const p of [ctr!.readinessProbe, ctr!.livenessProbe, ctr!.startupProbe])
      expect(p?.timeoutSeconds).toBeGreaterThanOrEqual(5);
    expect(ctr!.env?.every((e) => !e.valueFrom?.secretKeyRef)).toBe(true);
    expect(sts.volumeClaimTemplates?.[0]?.spec).toEqual({
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'fast',
      resources: { requests: { storage: '5Gi' } },
    });
    expect(pod.volumes?.map((v) => v.name)).toEqual(['config', 'pid', 'tls']);
    expect(pod.volumes?.[0]?.secret?.secretName).toBe(n.config);
    expect(c.pdb.spec?.maxUnavailable).toBe(1);
    expect(managedBusUrl(busOwner)).toBe(`nats://${n.service}.ns1.svc:4222`);
  });

  it('runs the reloader from the sluice image by default (`sluice nats-reloader`), an explicit image as is', () => {
    const ctl = { image: 'sluice:9', natsImage: 'nats:x', imagePullPolicy: 'Never' as const };
    const reloaderOf = (o: typeof ctl & { natsReloaderImage?: string }) =>
      managedBusChildren(busOwner, spec, { ...base, ...reloaderOptions(o) }).statefulSet.spec!.template.spec!
        .containers[1]!;
    expect(reloaderOf(ctl)).toMatchObject({
      image: 'sluice:9',
      command: ['sluice', 'nats-reloader'],
      imagePullPolicy: 'Never',
    });
    const upstream = reloaderOf({ ...ctl, natsReloaderImage: 'natsio/nats-server-config-reloader:0.18.2' });
    expect(upstream.image).toBe('natsio/nats-server-config-reloader:0.18.2');
    expect(upstream.command).toBeUndefined();
    expect(upstream.imagePullPolicy).toBeUndefined();
  });

  it('puts the monitor port only on the headless Service', () => {
    expect(c.service.spec?.ports?.map((p) => p.port)).toEqual([4222]);
    expect(c.headlessService.spec?.clusterIP).toBe('None');
    expect(c.headlessService.spec?.ports?.map((p) => p.port).sort()).toEqual([4222, 6222, 8222]);
  });

  it('uses an emptyDir without persistence, no cluster block for one replica, no TLS when disabled', () => {
    const one = managedBusChildren(busOwner, EventBusSpec.parse({ jetstream: { replicas: 1 } }), {
      ...base,
      defaultImage: 'nats:x',
    });
    expect(one.statefulSet.spec!.volumeClaimTemplates).toBeUndefined();
    expect(one.statefulSet.spec!.template.spec!.volumes?.map((v) => v.name)).toEqual([
      'config',
      'pid',
      'data',
    ]);
    // The emptyDir is bounded, and JetStream is told to stay well inside it.
    expect(one.statefulSet.spec!.template.spec!.volumes?.[2]?.emptyDir).toEqual({ sizeLimit: '4Gi' });
    expect(one.configSecret.stringData!['nats-js.conf']).toContain(
      `max_file_store: ${Math.floor(4 * 1024 ** 3 * 0.75)}`,
    );
    const text = one.configSecret.stringData!['nats-js.conf']!;
    expect(text).not.toContain('cluster {');
    expect(text).not.toContain('tls {');
    expect(one.tlsSecret).toBeUndefined();
    expect(one.statefulSet.spec!.template.spec!.containers[0]!.image).toBe('nats:x');
  });

  it('changes the pod hash when the pod must change, not for users, certificates or streamConfig', () => {
    const hashOf = (js: Record<string, unknown>, u = users) =>
      managedBusChildren(busOwner, EventBusSpec.parse({ jetstream: js }), { ...base, users: u }).statefulSet
        .spec!.template.metadata!.annotations![ANNOTATION_SPEC_HASH];
    expect(hashOf({ replicas: 3 })).toBe(hashOf({ replicas: 3, streamConfig: 'maxMsgs: 5' }));
    expect(hashOf({ replicas: 3 })).toBe(hashOf({ replicas: 3 }, []));
    expect(hashOf({ replicas: 3 })).not.toBe(hashOf({ replicas: 3, version: '2.11' }));
    // More account slots need a restart (a reload cannot add accounts).
    const slots = (accountSlots: number) =>
      managedBusChildren(busOwner, EventBusSpec.parse({ jetstream: { replicas: 3 } }), {
        ...base,
        accountSlots,
      }).statefulSet.spec!.template.metadata!.annotations![ANNOTATION_SPEC_HASH];
    expect(slots(32)).not.toBe(slots(64));
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
    // replicas > 1 elect a leader: pods may overlap in a rollout; one replica must not (rateLimit,
    // orderingKey): the old pod stops before the new one starts
    expect(d.spec?.strategy).toEqual({ type: 'RollingUpdate' });
    expect(
      deploymentFor(owner, { ...sensor, spec: { ...sensor.spec, replicas: 1 } }, opts).spec?.strategy,
    ).toEqual({ type: 'Recreate' });
    expect(
      deploymentFor(owner, { ...sensor, spec: { ...sensor.spec, replicas: undefined } }, opts).spec?.strategy,
    ).toEqual({ type: 'Recreate' });
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

  it('gives the read-only pod a bounded writable /tmp and probes that tolerate a busy process', () => {
    const pod = deploymentFor(owner, sensor, opts).spec!.template.spec!;
    const ctr = pod.containers[0]!;
    expect(ctr.volumeMounts).toEqual([{ name: 'sluice-tmp', mountPath: '/tmp' }]);
    expect(pod.volumes).toEqual([{ name: 'sluice-tmp', emptyDir: { sizeLimit: '256Mi' } }]);
    expect(ctr.readinessProbe?.timeoutSeconds).toBeGreaterThanOrEqual(5);
    expect(ctr.livenessProbe?.timeoutSeconds).toBeGreaterThanOrEqual(5);
    // The template's own volumes stay; its own /tmp replaces ours.
    const withVolumes = (mountPath: string) =>
      deploymentFor(
        owner,
        {
          ...sensor,
          spec: {
            ...sensor.spec,
            template: {
              ...sensor.spec.template,
              container: { ...sensor.spec.template.container, volumeMounts: [{ name: 'v', mountPath }] },
              volumes: [{ name: 'v', emptyDir: {} }],
            },
          },
        },
        opts,
      ).spec!.template.spec!;
    expect(withVolumes('/cache').volumes?.map((v) => v.name)).toEqual(['v', 'sluice-tmp']);
    expect(withVolumes('/cache').containers[0]!.volumeMounts?.map((m) => m.mountPath)).toEqual([
      '/cache',
      '/tmp',
    ]);
    expect(withVolumes('/tmp').volumes?.map((v) => v.name)).toEqual(['v']);
    expect(withVolumes('/tmp').containers[0]!.volumeMounts?.map((m) => m.mountPath)).toEqual(['/tmp']);
  });

  it("lays a template's securityContext over the restricted defaults instead of dropping them", () => {
    const ctr = (securityContext?: Record<string, unknown>) =>
      deploymentFor(owner, { ...sensor, spec: { template: { container: { securityContext } } } }, opts).spec!
        .template.spec!.containers[0]!.securityContext;
    const restricted = {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    };
    expect(ctr()).toEqual(restricted);
    // An upstream-style context that sets one field keeps the rest (it used to lose every default).
    expect(ctr({ runAsUser: 1000 })).toEqual({ ...restricted, runAsUser: 1000 });
    expect(ctr({ readOnlyRootFilesystem: false, capabilities: { add: ['NET_BIND_SERVICE'] } })).toEqual({
      ...restricted,
      readOnlyRootFilesystem: false,
      capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
    });
  });

  it('leaves out defaults that contradict a granted privilege (pairs the API server or kubelet refuse)', () => {
    const d = { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } };
    expect(withSecurityDefaults(d, { privileged: true })).toEqual({
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      privileged: true,
    });
    expect(withSecurityDefaults(d, { capabilities: { add: ['CAP_SYS_ADMIN'] } })).toEqual({
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'], add: ['CAP_SYS_ADMIN'] },
    });
    expect(withSecurityDefaults(d, { runAsUser: 0 })).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      runAsUser: 0,
    });
    // What the template says explicitly always wins.
    expect(withSecurityDefaults(d, { runAsUser: 0, runAsNonRoot: true }).runAsNonRoot).toBe(true);
    expect(withSecurityDefaults(d, undefined)).toBe(d);
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
