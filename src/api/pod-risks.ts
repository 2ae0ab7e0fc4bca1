// What in a pod template gives its author more than running sluice: one classifier per kind of
// value (an environment variable name, an envFrom prefix, a mount path, a volume type, a security
// context, a pod annotation). Pure; pod-policy.ts walks the objects and applies the admin's grants.
//
// The lines drawn follow Kubernetes' Pod Security Standards ("baseline" for privileges and host
// access, "restricted" for root, added capabilities and volume types) plus what is particular to
// the sluice image: it starts through a bash script into Node.js, so variables and files those
// read at start decide what code runs.
import { posix } from 'node:path';

/**
 * What a cluster admin can allow (`sluice controller --allow-pod-settings`), one word each:
 * - privileged: privileged containers, privilege escalation, capabilities beyond
 *   NET_BIND_SERVICE, unconfined seccomp or AppArmor, SELinux user/role/type, unsafe sysctls,
 *   Windows host processes, unmasked /proc, bidirectional mount propagation;
 * - hostPath: hostPath volumes;
 * - volumes: volume types outside the restricted Pod Security Standard's list (nfs, iscsi,
 *   flexVolume, gitRepo, cephfs, rbd, ... and any type Kubernetes adds later), hostPath aside;
 * - root: runAsUser 0;
 * - runtime: environment variables and mounts that change the program the pod runs (NODE_*,
 *   LD_*, BASH_*, PATH, SLUICE_NODE*, ..., envFrom with a prefix that spells one, mounts over the image's
 *   code and libraries). sluice's own tunables (SLUICE_WEBHOOK_*, SLUICE_STOP_GRACE_MS, ...) stay
 *   the author's; a new variable that picks code (a binary, flags, module paths) belongs here.
 */
export const POD_GRANTS = ['privileged', 'hostPath', 'volumes', 'root', 'runtime'] as const;
export type PodGrant = (typeof POD_GRANTS)[number];

/** One thing refused: where (relative to the value classified), why, and which grant allows it. */
export interface Risk {
  /** Path below the classified value ("" for the value itself), e.g. "capabilities.add[0]". */
  at: string;
  /** The grant that allows it; undefined when no grant does (sluice's own settings). */
  grant?: PodGrant;
  why: string;
}

export type Rec = Record<string, unknown>;
/** A JSON object (not an array, not null). */
export const isRec = (v: unknown): v is Rec => !!v && typeof v === 'object' && !Array.isArray(v);
/** The array `v`, or [] for anything else. */
export const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Variables the controller sets on every EventSource/Sensor container (resources/workload.ts). */
export const CONTROLLER_ENV: ReadonlySet<string> = new Set([
  'SLUICE_OBJECT',
  'SLUICE_BUS',
  'SLUICE_BUS_CREDENTIAL',
  'SLUICE_BUS_TLS_CA',
  'SLUICE_BUS_TLS_CERT',
  'SLUICE_BUS_TLS_KEY',
  'SLUICE_LOG_LEVEL',
  'POD_NAME',
  'POD_NAMESPACE',
]);

/** Of those, the ones an author may set for their own pods (the controller then leaves its value out). */
export const AUTHOR_ENV: ReadonlySet<string> = new Set(['SLUICE_LOG_LEVEL']);

const SHELL = 'the bash script that starts sluice';
const NODE_BINARY = 'which Node.js binary sluice runs';
/** Name prefixes read by what starts and runs the sluice runtime, and what they steer. */
const RUNTIME_PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['NODE_', 'Node.js options, module paths and TLS checks'],
  ['LD_', 'the dynamic loader (preloaded libraries)'],
  ['BASH_', SHELL],
  ['OPENSSL_', 'OpenSSL configuration, which can load modules'],
  ['GCONV_', "glibc's character-set modules"],
  ['KUBERNETES_', 'where the pod sends its ServiceAccount token'],
  ['SLUICE_NODE', NODE_BINARY],
];
/** Whole names with the same effect. */
const RUNTIME_NAMES: Readonly<Record<string, string>> = {
  PATH: 'where programs are looked up',
  HOME: 'where Node.js looks for global modules',
  ENV: SHELL,
  SHELLOPTS: SHELL,
  BASHOPTS: SHELL,
  PS4: SHELL,
  IFS: SHELL,
  CDPATH: SHELL,
  GLOBIGNORE: SHELL,
  KUBECONFIG: 'the Kubernetes client configuration, which can run programs',
  GLIBC_TUNABLES: 'glibc internals',
  XDG_CACHE_HOME: NODE_BINARY,
  SLUICE_CACHE: NODE_BINARY,
  SLUICE_SENSOR_NODE_FLAGS: 'the Node.js flags of sluice sensor',
  SLUICE_EVENTSOURCE_NODE_FLAGS: 'the Node.js flags of sluice eventsource',
};
/** Runtime names that only add trust anchors for outgoing TLS: left to the author. */
const RUNTIME_ALLOWED: ReadonlySet<string> = new Set(['NODE_EXTRA_CA_CERTS']);

/** Why the variable `name` is refused, or undefined when the author may set it. */
export function envNameRisk(name: string): Risk | undefined {
  if (CONTROLLER_ENV.has(name) && !AUTHOR_ENV.has(name))
    return { at: '', why: `${name} is set by the controller for the runtime and cannot be overridden` };
  if (RUNTIME_ALLOWED.has(name)) return undefined;
  const what = RUNTIME_NAMES[name] ?? RUNTIME_PREFIXES.find(([p]) => name.startsWith(p))?.[1];
  return what ? { at: '', grant: 'runtime', why: `${name} changes ${what}` } : undefined;
}

/**
 * Why an envFrom entry with this `prefix` is refused: a prefix that can spell a runtime name
 * (e.g. "NODE_" + "OPTIONS"). Without a prefix the keys of the ConfigMap or Secret choose the
 * names, as upstream allows: those objects are not the Sensor author's to write unless they may
 * write the namespace's ConfigMaps or Secrets, and then they may usually run pods anyway (the
 * README says so). Variables the controller sets win over envFrom.
 */
export function envFromPrefixRisk(prefix: unknown): Risk | undefined {
  const p = typeof prefix === 'string' ? prefix : '';
  if (!p) return undefined;
  const spells =
    RUNTIME_PREFIXES.some(([r]) => p.startsWith(r) || r.startsWith(p)) ||
    Object.keys(RUNTIME_NAMES).some((n) => n.startsWith(p));
  return spells
    ? {
        at: 'prefix',
        grant: 'runtime',
        why: `prefix ${JSON.stringify(p)} can spell a variable that changes the runtime (NODE_*, LD_*, PATH, ...)`,
      }
    : undefined;
}

/** Folders of the sluice image (its code, Node.js, the shell, system libraries, loader config). */
const CODE_PATHS = [
  '/app',
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/etc/ld.so.preload',
  '/etc/ld.so.conf',
  '/etc/ld.so.conf.d',
  '/etc/ld.so.cache',
  '/proc',
  '/sys',
];
/** Folder names Node.js resolves modules from, in any parent of the code and under HOME. */
const MODULE_DIRS: ReadonlySet<string> = new Set(['node_modules', '.node_modules', '.node_libraries']);

/** `p` is `dir` or below it (every path is below "/"). */
const within = (p: string, dir: string) => p === dir || dir === '/' || p.startsWith(`${dir}/`);

/** Why mounting a volume at `mountPath` is refused (it would replace code the pod runs). */
export function mountPathRisk(mountPath: unknown): Risk | undefined {
  if (typeof mountPath !== 'string') return undefined;
  const p = posix.normalize(`/${mountPath}`).replace(/(.)\/+$/, '$1');
  const hit = CODE_PATHS.find((dir) => within(p, dir) || within(dir, p));
  const moduleDir = p.split('/').find((s) => MODULE_DIRS.has(s));
  if (!hit && !moduleDir) return undefined;
  const what = moduleDir
    ? `a "${moduleDir}" folder, where Node.js loads modules from`
    : within(p, hit!)
      ? `${hit}, part of the image the runtime is started from`
      : `a parent of ${hit}, part of the image the runtime is started from`;
  return { at: 'mountPath', grant: 'runtime', why: `${JSON.stringify(mountPath)} mounts over ${what}` };
}

/**
 * Volume types the restricted Pod Security Standard allows: storage the cluster already governs
 * (its ConfigMaps, Secrets and claims, the pod's own data, its CSI drivers and StorageClasses).
 */
export const RESTRICTED_VOLUME_TYPES: readonly string[] = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
];
const VOLUME_KEYS: ReadonlySet<string> = new Set(['name', ...RESTRICTED_VOLUME_TYPES]);

/**
 * Why the key `key` (with `value`) of one `volumes[]` entry is refused. An allow-list: `name` and
 * the restricted types pass, hostPath needs the `hostPath` grant, and every other key (nfs, iscsi,
 * flexVolume, gitRepo, cephfs, rbd, a type Kubernetes adds later, a misspelling) needs `volumes`:
 * the node mounts storage the author names, its kernel parsing a remote filesystem or a driver
 * acting for the pod. An absent (null) value is no volume source.
 */
export function volumeKeyRisk(key: string, value: unknown): Risk | undefined {
  if (VOLUME_KEYS.has(key) || value === undefined || value === null) return undefined;
  if (key === 'hostPath')
    return { at: '', grant: 'hostPath', why: "a hostPath volume gives the pod the node's files" };
  return {
    at: '',
    grant: 'volumes',
    why: `volume type ${key} has the node mount storage the author names (the restricted Pod Security Standard allows only ${RESTRICTED_VOLUME_TYPES.join(', ')})`,
  };
}

/** Sysctls the Pod Security Standards call safe (namespaced, no effect beyond the pod). */
const SAFE_SYSCTLS: ReadonlySet<string> = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]);
/** SELinux types a container may take (Pod Security Standards, baseline). */
const SELINUX_TYPES: ReadonlySet<string> = new Set([
  '',
  'container_t',
  'container_init_t',
  'container_kvm_t',
  'container_engine_t',
]);
/** Capabilities a non-root container may add (Pod Security Standards, restricted). */
const ADDABLE_CAPS: ReadonlySet<string> = new Set(['NET_BIND_SERVICE']);

/** Settings pod and container security contexts share. */
function commonSecurityRisks(sc: Rec): Risk[] {
  const out: Risk[] = [];
  if (sc.runAsUser === 0) out.push({ at: 'runAsUser', grant: 'root', why: 'runs as root (user 0)' });
  for (const f of ['seccompProfile', 'appArmorProfile'] as const) {
    const prof = sc[f];
    if (isRec(prof) && prof.type === 'Unconfined')
      out.push({ at: `${f}.type`, grant: 'privileged', why: `an Unconfined ${f} lifts the kernel's limits` });
  }
  const se = sc.seLinuxOptions;
  if (isRec(se)) {
    for (const f of ['user', 'role'] as const)
      if (se[f]) out.push({ at: `seLinuxOptions.${f}`, grant: 'privileged', why: `sets the SELinux ${f}` });
    if (typeof se.type === 'string' && !SELINUX_TYPES.has(se.type))
      out.push({ at: 'seLinuxOptions.type', grant: 'privileged', why: `SELinux type ${se.type}` });
  }
  const win = sc.windowsOptions;
  if (isRec(win) && win.hostProcess === true)
    out.push({ at: 'windowsOptions.hostProcess', grant: 'privileged', why: 'a Windows host process' });
  return out;
}

/** What a pod-level securityContext grants beyond an ordinary pod. */
export function podSecurityRisks(sc: unknown): Risk[] {
  if (!isRec(sc)) return [];
  const out = commonSecurityRisks(sc);
  list(sc.sysctls).forEach((s, i) => {
    const name = isRec(s) ? String(s.name ?? '') : '';
    if (!SAFE_SYSCTLS.has(name))
      out.push({ at: `sysctls[${i}].name`, grant: 'privileged', why: `sysctl ${name} is not a safe one` });
  });
  return out;
}

/** What a container securityContext grants beyond an ordinary container. */
export function containerSecurityRisks(sc: unknown): Risk[] {
  if (!isRec(sc)) return [];
  const out = commonSecurityRisks(sc);
  if (sc.privileged === true)
    out.push({
      at: 'privileged',
      grant: 'privileged',
      why: 'a privileged container has every device and capability of the node',
    });
  if (sc.allowPrivilegeEscalation === true)
    out.push({
      at: 'allowPrivilegeEscalation',
      grant: 'privileged',
      why: 'lets processes gain privileges (setuid)',
    });
  const caps = isRec(sc.capabilities) ? sc.capabilities : {};
  list(caps.add).forEach((c, i) => {
    const cap = String(c).toUpperCase().replace(/^CAP_/, '');
    if (!ADDABLE_CAPS.has(cap))
      out.push({
        at: `capabilities.add[${i}]`,
        grant: 'privileged',
        why: `adds capability ${cap} (only NET_BIND_SERVICE may be added)`,
      });
  });
  if (sc.procMount !== undefined && sc.procMount !== 'Default')
    out.push({ at: 'procMount', grant: 'privileged', why: 'an unmasked /proc' });
  return out;
}

const APPARMOR_ANNOTATION = 'container.apparmor.security.beta.kubernetes.io/';
const SECCOMP_ANNOTATIONS = [
  'seccomp.security.alpha.kubernetes.io/pod',
  'container.seccomp.security.alpha.kubernetes.io/',
];
/** sluice's own label and annotation keys: they mark what it manages and who may reach a bus. */
const SLUICE_KEYS = 'sluice.argoproj.io/';

/** Why a pod label or annotation is refused (`annotation`: the older AppArmor/seccomp forms count). */
export function podMetaRisk(key: string, value: unknown, annotation: boolean): Risk | undefined {
  if (key.startsWith(SLUICE_KEYS))
    return { at: '', why: `${key} is sluice's own key (managed objects, access to the bus monitor port)` };
  if (!annotation) return undefined;
  const v = String(value ?? '');
  const unconfinedAppArmor =
    key.startsWith(APPARMOR_ANNOTATION) && v !== '' && v !== 'runtime/default' && !v.startsWith('localhost/');
  const unconfinedSeccomp =
    SECCOMP_ANNOTATIONS.some((a) => key === a || (a.endsWith('/') && key.startsWith(a))) &&
    v === 'unconfined';
  return unconfinedAppArmor || unconfinedSeccomp
    ? { at: '', grant: 'privileged', why: `${key}: ${v} lifts the kernel's limits` }
    : undefined;
}
