// The pod policy (src/api/pod-policy.ts, pod-risks.ts): what an EventSource, Sensor or EventBus
// author may put into the pods the controller makes, what a cluster admin can allow, what nothing
// allows, and that every upstream manifest of the compatibility corpus stays accepted.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type PodPolicy,
  type PodRefusal,
  parsePodGrants,
  podPolicyFromEnv,
  podSettingRefusals,
} from '../../../src/api/pod-policy.ts';
import {
  AUTHOR_ENV,
  CONTROLLER_ENV,
  envFromPrefixRisk,
  envNameRisk,
  mountPathRisk,
  RESTRICTED_VOLUME_TYPES,
  volumeKeyRisk,
} from '../../../src/api/pod-risks.ts';
import { validateText } from '../../../src/api/validate.ts';
import { lint } from '../../../src/cli/lint.ts';
import { deploymentFor } from '../../../src/controller/resources/workload.ts';
import { HOSTILE_TEMPLATE } from '../../fixtures/hostile-template.ts';

const sensor = (template: Record<string, unknown>, namespace = 'team-a') => ({
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'Sensor',
  metadata: { name: 's', namespace },
  spec: {
    template,
    dependencies: [{ name: 'd', eventSourceName: 'es', eventName: 'e' }],
    triggers: [{ template: { name: 't', log: {} } }],
  },
});
const summary = (rs: PodRefusal[]) => rs.map((r) => `${r.path} ${r.grant ?? 'never'}`);

describe('pod policy: the adversary Sensor', () => {
  it('refuses each privilege, naming the field and the grant that would allow it', () => {
    const r = podSettingRefusals(sensor(HOSTILE_TEMPLATE));
    expect(summary(r)).toEqual([
      'spec.template.securityContext.runAsUser root',
      'spec.template.volumes[0].hostPath hostPath',
      'spec.template.container.securityContext.privileged privileged',
      'spec.template.container.env[0].name runtime',
    ]);
    expect(r[3]!.message).toBe(
      'not allowed: NODE_OPTIONS changes Node.js options, module paths and TLS checks (a cluster admin can allow it: sluice controller --allow-pod-settings=runtime)',
    );
  });

  it('each grant lifts only its own refusals; all of them lift them all', () => {
    const left = (allow: PodPolicy['allow']) =>
      summary(podSettingRefusals(sensor(HOSTILE_TEMPLATE), { allow }));
    expect(left(['root'])).not.toContain('spec.template.securityContext.runAsUser root');
    expect(left(['root'])).toHaveLength(3);
    expect(left(['hostPath', 'privileged'])).toEqual([
      'spec.template.securityContext.runAsUser root',
      'spec.template.container.env[0].name runtime',
    ]);
    expect(left(['privileged', 'hostPath', 'root', 'runtime'])).toEqual([]);
    // `volumes` is not hostPath: an admin who allows nfs has not allowed the node's files.
    expect(left(['privileged', 'volumes', 'root', 'runtime'])).toEqual([
      'spec.template.volumes[0].hostPath hostPath',
    ]);
  });

  it("refuses the controller's own ServiceAccount in the controller's namespace, whatever is granted", () => {
    const policy: PodPolicy = {
      allow: ['privileged', 'hostPath', 'volumes', 'root', 'runtime'],
      controllerServiceAccount: { namespace: 'sluice-system', name: 'sluice-controller' },
    };
    const own = sensor({ serviceAccountName: 'sluice-controller' }, 'sluice-system');
    expect(summary(podSettingRefusals(own, policy))).toEqual(['spec.template.serviceAccountName never']);
    // The same name elsewhere is another account; other accounts of the namespace are the author's choice (upstream).
    expect(podSettingRefusals(sensor({ serviceAccountName: 'sluice-controller' }, 'team-a'), policy)).toEqual(
      [],
    );
    expect(podSettingRefusals(sensor({ serviceAccountName: 'builder' }, 'sluice-system'), policy)).toEqual(
      [],
    );
  });
});

describe('pod policy: environment', () => {
  it('refuses what steers the runtime; the variables the controller sets never', () => {
    for (const n of [
      'NODE_OPTIONS',
      'NODE_PATH',
      'NODE_TLS_REJECT_UNAUTHORIZED',
      'LD_PRELOAD',
      'LD_LIBRARY_PATH',
      'BASH_ENV',
      'BASH_FUNC_readlink%%',
      'SHELLOPTS',
      'PS4',
      'PATH',
      'HOME',
      'KUBECONFIG',
      'KUBERNETES_SERVICE_HOST',
      'OPENSSL_CONF',
      'GCONV_PATH',
      'SLUICE_NODE',
      'SLUICE_NODE_VERSION',
      'SLUICE_CACHE',
      'XDG_CACHE_HOME',
      'SLUICE_SENSOR_NODE_FLAGS',
    ])
      expect(envNameRisk(n)?.grant, n).toBe('runtime');
    for (const n of ['SLUICE_OBJECT', 'SLUICE_BUS', 'SLUICE_BUS_CREDENTIAL', 'POD_NAME', 'POD_NAMESPACE']) {
      expect(envNameRisk(n), n).toBeDefined();
      expect(envNameRisk(n)?.grant, n).toBeUndefined();
    }
    for (const n of [
      'DEBUG_LOG',
      'LOG_LEVEL',
      'AWS_REGION',
      'HTTPS_PROXY',
      'NO_PROXY',
      'TZ',
      'NODE_EXTRA_CA_CERTS',
      'MY_NODE_NAME',
      'SLUICE_LOG_LEVEL',
      'SLUICE_WEBHOOK_MAX_CONNECTIONS',
      'SLUICE_STOP_GRACE_MS',
      'SLUICE_ACK_WAIT_MS',
    ])
      expect(envNameRisk(n), n).toBeUndefined();
  });

  const runtimeEnv = (template: Record<string, unknown>) =>
    deploymentFor(
      { apiVersion: 'argoproj.io/v1alpha1', kind: 'Sensor', name: 's', namespace: 'n', uid: 'u' },
      {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Sensor',
        metadata: { name: 's', namespace: 'n', uid: 'u' },
        spec: { template },
      },
      {
        image: 'sluice:test',
        bus: { busName: 'default', namespace: 'n', url: 'nats://x:4222' },
        busCredential: { name: 'c', key: 'k' },
        busTlsSecrets: {
          ca: { name: 'a', key: 'ca' },
          cert: { name: 'a', key: 'c' },
          key: { name: 'a', key: 'k' },
        },
        logLevel: 'debug',
      },
    ).spec!.template.spec!.containers[0]!.env!;

  it('every variable the controller puts on a runtime container is one an author cannot override', () => {
    const names = runtimeEnv({}).map((e) => e.name);
    expect(names.length).toBeGreaterThan(6);
    for (const n of names) {
      expect(CONTROLLER_ENV.has(n), n).toBe(true);
      if (!AUTHOR_ENV.has(n)) expect(envNameRisk(n)?.grant, n).toBeUndefined();
      if (!AUTHOR_ENV.has(n)) expect(envNameRisk(n), n).toBeDefined();
    }
  });

  it("the template's SLUICE_LOG_LEVEL replaces the controller's, once", () => {
    const env = runtimeEnv({ container: { env: [{ name: 'SLUICE_LOG_LEVEL', value: 'trace' }] } });
    expect(env.filter((e) => e.name === 'SLUICE_LOG_LEVEL')).toEqual([
      { name: 'SLUICE_LOG_LEVEL', value: 'trace' },
    ]);
    expect(runtimeEnv({}).filter((e) => e.name === 'SLUICE_LOG_LEVEL')).toEqual([
      { name: 'SLUICE_LOG_LEVEL', value: 'debug' },
    ]);
  });

  it('every variable the launch scripts (bin/sluice, scripts/node.sh) read is a runtime one', () => {
    const root = new URL('../../../', import.meta.url).pathname;
    const text = ['bin/sluice', 'scripts/node.sh'].map((f) => readFileSync(join(root, f), 'utf8')).join('\n');
    const read = new Set([...text.matchAll(/\$\{?([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!));
    // The scripts' own variables (set before use, not from the environment).
    for (const m of text.matchAll(/^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=(.*)$/gm))
      if (!new RegExp(`\\$\\{?${m[1]}\\b`).test(m[2]!)) read.delete(m[1]!);
    // glibc malloc tuning the script defaults: no code is chosen by it.
    for (const n of ['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_ARENA_MAX']) read.delete(n);
    expect([...read]).toContain('SLUICE_SENSOR_NODE_FLAGS');
    for (const n of read) expect(envNameRisk(n)?.grant, n).toBe('runtime');
  });

  it('envFrom needs a prefix that cannot spell a runtime variable', () => {
    // Without a prefix, as upstream: the keys are the ConfigMap's or Secret's, not the author's.
    expect(envFromPrefixRisk(undefined)).toBeUndefined();
    expect(envFromPrefixRisk('')).toBeUndefined();
    for (const p of ['NODE_', 'NO', 'N', 'LD_', 'P', 'PA', 'KUBE', 'SLUICE_', 'SLUICE_N', 'BASH_FUNC_'])
      expect(envFromPrefixRisk(p)?.grant, p).toBe('runtime');
    for (const p of ['APP_', 'AWS_', 'MY_', 'CONFIG_', 'SLUICE_WEBHOOK_'])
      expect(envFromPrefixRisk(p), p).toBeUndefined();
  });
});

describe('pod policy: mounts', () => {
  it("refuses mounts over the image's code, libraries and loader config, and any module folder", () => {
    for (const p of [
      '/',
      '/app',
      '/app/',
      '/app/src/cli',
      '/usr',
      '/usr/local/bin',
      '/lib64',
      '/bin',
      '/etc',
      '/etc/ld.so.preload',
      '/proc/self',
      '/x/../usr/lib',
      'usr',
      '//app',
      '/node_modules',
      '/data/node_modules/ws',
      '/.node_modules',
      '/.node_libraries',
    ])
      expect(mountPathRisk(p)?.grant, p).toBe('runtime');
  });

  it("leaves the paths upstream's manifests use", () => {
    for (const p of [
      '/etc/ssh',
      '/secret',
      '/test-data',
      '/git/argoproj',
      '/workflows/hello_world.yaml',
      '/tmp',
      '/data',
      '/var/run/config',
      '/dev/shm',
      '/application',
      '/usrdata',
    ])
      expect(mountPathRisk(p), p).toBeUndefined();
  });

  it('bidirectional propagation is a privilege', () => {
    const r = podSettingRefusals(
      sensor({
        container: { volumeMounts: [{ name: 'v', mountPath: '/data', mountPropagation: 'Bidirectional' }] },
      }),
    );
    expect(summary(r)).toEqual(['spec.template.container.volumeMounts[0].mountPropagation privileged']);
  });
});

describe('pod policy: volume types', () => {
  /** Every in-tree volume type the restricted Pod Security Standard leaves out, hostPath aside. */
  const NODE_MOUNTED: Record<string, unknown> = {
    nfs: { server: '10.0.0.99', path: '/' },
    flexVolume: { driver: 'k8s/evil', options: { a: 'b' } },
    gitRepo: { repository: 'https://example.invalid/x.git' },
    iscsi: { targetPortal: '10.0.0.1:3260', iqn: 'iqn.2001-04.com.example:x', lun: 0 },
    cephfs: { monitors: ['10.0.0.1:6789'] },
    glusterfs: { endpoints: 'gl', path: 'vol' },
    rbd: { monitors: ['10.0.0.1:6789'], image: 'img' },
    cinder: { volumeID: 'v' },
    awsElasticBlockStore: { volumeID: 'vol-1' },
    gcePersistentDisk: { pdName: 'pd' },
    azureDisk: { diskName: 'd', diskURI: 'u' },
    azureFile: { secretName: 's', shareName: 'sh' },
    fc: { targetWWNs: ['5005'], lun: 0 },
    flocker: { datasetName: 'd' },
    portworxVolume: { volumeID: 'v' },
    quobyte: { registry: 'r:7861', volume: 'v' },
    scaleIO: { gateway: 'g', system: 's', secretRef: { name: 's' } },
    storageos: { volumeName: 'v' },
    photonPersistentDisk: { pdID: 'p' },
    vsphereVolume: { volumePath: '[ds] v.vmdk' },
  };

  for (const [type, source] of Object.entries(NODE_MOUNTED))
    it(`refuses a ${type} volume unless volumes is granted`, () => {
      const s = sensor({
        volumes: [{ name: 'v', [type]: source }],
        container: { volumeMounts: [{ name: 'v', mountPath: '/data' }] },
      });
      const r = podSettingRefusals(s);
      expect(summary(r)).toEqual([`spec.template.volumes[0].${type} volumes`]);
      expect(r[0]!.message).toContain(`not allowed: volume type ${type} has the node mount storage`);
      expect(r[0]!.message).toContain('--allow-pod-settings=volumes');
      expect(podSettingRefusals(s, { allow: ['hostPath', 'privileged', 'root', 'runtime'] })).toHaveLength(1);
      expect(podSettingRefusals(s, { allow: ['volumes'] })).toEqual([]);
    });

  it('passes every type the restricted standard allows, and a volume with only a name (emptyDir)', () => {
    const all = {
      configMap: { name: 'c' },
      csi: { driver: 'secrets-store.csi.k8s.io' },
      downwardAPI: { items: [] },
      emptyDir: { sizeLimit: '1Gi' },
      ephemeral: { volumeClaimTemplate: { spec: { accessModes: ['ReadWriteOnce'] } } },
      persistentVolumeClaim: { claimName: 'c' },
      projected: { sources: [] },
      secret: { secretName: 's' },
    };
    expect(Object.keys(all).sort()).toEqual([...RESTRICTED_VOLUME_TYPES].sort());
    const volumes = [...Object.entries(all).map(([k, v]) => ({ name: k, [k]: v })), { name: 'bare' }];
    expect(podSettingRefusals(sensor({ volumes }))).toEqual([]);
  });

  it('is an allow-list: a type Kubernetes adds later, or a misspelt one, is refused by default', () => {
    expect(volumeKeyRisk('fancyNewDisk', { id: 'x' })?.grant).toBe('volumes');
    expect(volumeKeyRisk('configmap', { name: 'x' })?.grant).toBe('volumes');
    expect(volumeKeyRisk('hostPath', { path: '/' })?.grant).toBe('hostPath');
    expect(volumeKeyRisk('name', 'x')).toBeUndefined();
    // A null member is no source (the pod's volume drops it).
    expect(volumeKeyRisk('nfs', null)).toBeUndefined();
    const r = podSettingRefusals(
      sensor({
        volumes: [
          { name: 'a', emptyDir: {}, 'x.example.com/disk': {} },
          { name: 'b', nfs: { server: 's', path: '/' } },
          { name: 'c', hostPath: { path: '/var/run' } },
        ],
      }),
    );
    expect(summary(r)).toEqual([
      'spec.template.volumes[0]["x.example.com/disk"] volumes',
      'spec.template.volumes[1].nfs volumes',
      'spec.template.volumes[2].hostPath hostPath',
    ]);
  });
});

describe('pod policy: security contexts and pod metadata', () => {
  it('container: privilege escalation, added capabilities but NET_BIND_SERVICE, unmasked /proc, unconfined profiles', () => {
    const r = podSettingRefusals(
      sensor({
        container: {
          securityContext: {
            allowPrivilegeEscalation: true,
            capabilities: { add: ['NET_BIND_SERVICE', 'CAP_SYS_ADMIN', 'net_raw'], drop: ['ALL'] },
            procMount: 'Unmasked',
            seccompProfile: { type: 'Unconfined' },
            appArmorProfile: { type: 'Unconfined' },
            runAsUser: 0,
          },
        },
      }),
    );
    expect(summary(r)).toEqual([
      'spec.template.container.securityContext.runAsUser root',
      'spec.template.container.securityContext.seccompProfile.type privileged',
      'spec.template.container.securityContext.appArmorProfile.type privileged',
      'spec.template.container.securityContext.allowPrivilegeEscalation privileged',
      'spec.template.container.securityContext.capabilities.add[1] privileged',
      'spec.template.container.securityContext.capabilities.add[2] privileged',
      'spec.template.container.securityContext.procMount privileged',
    ]);
  });

  it('pod: unsafe sysctls, SELinux user/role/type, Windows host process; ordinary settings pass', () => {
    const r = podSettingRefusals(
      sensor({
        securityContext: {
          sysctls: [
            { name: 'net.ipv4.tcp_syncookies', value: '1' },
            { name: 'kernel.msgmax', value: '1' },
          ],
          seLinuxOptions: { user: 'system_u', type: 'spc_t' },
          windowsOptions: { hostProcess: true },
        },
      }),
    );
    expect(summary(r)).toEqual([
      'spec.template.securityContext.seLinuxOptions.user privileged',
      'spec.template.securityContext.seLinuxOptions.type privileged',
      'spec.template.securityContext.windowsOptions.hostProcess privileged',
      'spec.template.securityContext.sysctls[1].name privileged',
    ]);
    const ordinary = sensor({
      securityContext: {
        runAsUser: 1000,
        runAsNonRoot: true,
        fsGroup: 2000,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      container: {
        securityContext: {
          runAsUser: 1000,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
        },
        resources: { limits: { memory: '256Mi' } },
        env: [
          { name: 'DEBUG_LOG', value: 'true' },
          { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
        ],
        envFrom: [{ prefix: 'APP_', configMapRef: { name: 'cfg' } }],
        volumeMounts: [{ name: 'cfg', mountPath: '/etc/ssh' }],
      },
      volumes: [{ name: 'cfg', configMap: { name: 'cfg' } }],
      metadata: {
        labels: { app: 'x' },
        annotations: { 'container.apparmor.security.beta.kubernetes.io/main': 'runtime/default' },
      },
    });
    expect(podSettingRefusals(ordinary)).toEqual([]);
  });

  it("pod metadata: sluice's own keys never, unconfined AppArmor/seccomp annotations as privileges", () => {
    const r = podSettingRefusals(
      sensor({
        metadata: {
          labels: { 'sluice.argoproj.io/bus-monitor': 'true' },
          annotations: {
            'container.apparmor.security.beta.kubernetes.io/main': 'unconfined',
            'seccomp.security.alpha.kubernetes.io/pod': 'unconfined',
          },
        },
      }),
    );
    expect(summary(r)).toEqual([
      'spec.template.metadata.labels["sluice.argoproj.io/bus-monitor"] never',
      'spec.template.metadata.annotations["container.apparmor.security.beta.kubernetes.io/main"] privileged',
      'spec.template.metadata.annotations["seccomp.security.alpha.kubernetes.io/pod"] privileged',
    ]);
  });
});

describe('pod policy: EventBus and EventSource', () => {
  it("a managed bus's pod and its three containers; an exotic bus has no pods", () => {
    const bus = {
      kind: 'EventBus',
      metadata: { namespace: 'sluice-system' },
      spec: {
        jetstream: {
          serviceAccountName: 'sluice-controller',
          securityContext: { runAsUser: 0 },
          containerTemplate: { securityContext: { privileged: true } },
          reloaderContainerTemplate: { securityContext: { allowPrivilegeEscalation: true } },
          metricsContainerTemplate: { securityContext: { capabilities: { add: ['SYS_PTRACE'] } } },
        },
      },
    };
    const r = podSettingRefusals(bus, {
      controllerServiceAccount: { namespace: 'sluice-system', name: 'sluice-controller' },
    });
    expect(summary(r)).toEqual([
      'spec.jetstream.serviceAccountName never',
      'spec.jetstream.securityContext.runAsUser root',
      'spec.jetstream.containerTemplate.securityContext.privileged privileged',
      'spec.jetstream.reloaderContainerTemplate.securityContext.allowPrivilegeEscalation privileged',
      'spec.jetstream.metricsContainerTemplate.securityContext.capabilities.add[0] privileged',
    ]);
    expect(podSettingRefusals({ kind: 'EventBus', spec: { jetstreamExotic: { url: 'nats://x' } } })).toEqual(
      [],
    );
  });

  it('an EventSource template is checked like a Sensor one', () => {
    const r = podSettingRefusals({
      kind: 'EventSource',
      metadata: {},
      spec: { template: HOSTILE_TEMPLATE, webhook: {} },
    });
    expect(r).toHaveLength(4);
  });
});

describe('pod policy: grants and sluice lint', () => {
  it('parses the admin list and refuses unknown words', () => {
    expect(parsePodGrants('privileged, hostPath,,root')).toEqual(['privileged', 'hostPath', 'root']);
    expect(parsePodGrants(undefined)).toEqual([]);
    expect(parsePodGrants('volumes,hostPath')).toEqual(['volumes', 'hostPath']);
    expect(() => parsePodGrants('privileged,everything')).toThrow(
      /unknown "everything"; use a comma-separated list of privileged, hostPath, volumes, root, runtime/,
    );
    const p = podPolicyFromEnv({
      SLUICE_ALLOW_POD_SETTINGS: 'root',
      POD_NAMESPACE: 'sys',
      SLUICE_SERVICE_ACCOUNT: 'ctl',
    });
    expect(p).toEqual({ allow: ['root'], controllerServiceAccount: { namespace: 'sys', name: 'ctl' } });
    expect(() => podPolicyFromEnv({ SLUICE_ALLOW_POD_SETTINGS: 'all' })).toThrow(
      /^SLUICE_ALLOW_POD_SETTINGS: unknown "all"/,
    );
    // The flag wins over the environment.
    expect(podPolicyFromEnv({ SLUICE_ALLOW_POD_SETTINGS: 'root' }, 'hostPath').allow).toEqual(['hostPath']);
  });

  it('lint prints the same refusals, and passes them when granted', () => {
    const text = JSON.stringify(sensor(HOSTILE_TEMPLATE));
    const out: string[] = [];
    const s = lint(
      ['-'],
      (l) => out.push(l),
      () => text,
    );
    expect(s.problems).toBe(4);
    expect(out[0]).toBe(
      '<stdin>: Sensor/s: spec.template.securityContext.runAsUser: not allowed: runs as root (user 0) (a cluster admin can allow it: sluice controller --allow-pod-settings=root)',
    );
    const granted = lint(
      ['-'],
      () => undefined,
      () => text,
      { allow: ['privileged', 'hostPath', 'root', 'runtime'] },
    );
    expect(granted.problems).toBe(0);
  });
});

const corpus = new URL('../../../../shared/reference/argo-events/', import.meta.url).pathname;
function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((e) => {
      const p = join(dir, e);
      return statSync(p).isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(e) ? [p] : [];
    });
}

describe.skipIf(!existsSync(corpus))('pod policy: the upstream corpus', () => {
  it('refuses nothing in any upstream example, documentation, e2e or stress manifest', () => {
    const refused: string[] = [];
    let templates = 0;
    for (const file of yamlFiles(corpus)) {
      for (const o of validateText(readFileSync(file, 'utf8')).objects) {
        const v = o.value as { kind: string; spec?: { template?: unknown; jetstream?: unknown } };
        if (v.spec?.template || v.spec?.jetstream) templates++;
        for (const r of podSettingRefusals(v))
          refused.push(`${file.slice(corpus.length)}: ${r.path}: ${r.message}`);
      }
    }
    expect(refused.join('\n')).toBe('');
    expect(templates).toBeGreaterThan(20);
  });
});
