// A real single-node Kubernetes cluster for e2e tests: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kubelet with containerd and runc, kube-proxy (iptables)
// and CoreDNS, all inside a network namespace of the node's own (net.ts), with the images built
// by scripts/images.sh imported into containerd. `stop()` (or, after a crash, the next run)
// removes every trace from the host (cleanup.ts).
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { type ControlPlane, startControlPlane } from '../controlplane.ts';
import { ManagedProcess, waitFor } from '../proc.ts';
import { run } from '../run.ts';
import { cacheDir, findTool, type ToolName } from '../tools.ts';
import { cleanupNode, cleanupStaleNodes, type NodeState, STATE_DIR, writeState } from './cleanup.ts';
import {
  type ComponentPaths,
  controllerManagerArgs,
  corefile,
  DNS_READY_PORT,
  kubeletArgs,
  kubeletConfig,
  kubeProxyArgs,
  NODE_NAME,
  schedulerArgs,
} from './components.ts';
import { createNet, MAX_NODES, type NodeNet, netInUse, NODE_PATH as PATH } from './net.ts';
import {
  CNI_BIN,
  containerdConfig,
  ctrArgs,
  type NodeImage,
  nodeImages,
  runtimePaths,
  writeCniConfig,
} from './runtime.ts';

export const STORAGE_CLASS = 'sluice-local';
const NODE_TOOLS: ToolName[] = [
  'etcd',
  'kube-apiserver',
  'kubectl',
  'kubelet',
  'kube-controller-manager',
  'kube-scheduler',
  'kube-proxy',
  'coredns',
];
const HOST_PROGRAMS = ['containerd', 'containerd-shim-runc-v2', 'runc', 'ctr', 'nsenter', 'ip', 'iptables'];

export interface KubeNode {
  net: NodeNet;
  dir: string;
  kubeconfigPath: string;
  kubeConfig(): KubeConfig;
  controlPlane: ControlPlane;
  images: NodeImage[];
  /** `kubectl` with the node's admin kubeconfig. */
  kubectl(args: string[], input?: string): ReturnType<typeof run>;
  /**
   * Creates `count` local PersistentVolumes of `size` in the default StorageClass, each a folder
   * under the node's folder owned by root and not writable by others, as a node's disks usually
   * are: a non-root pod writes only through its fsGroup. Returns their names.
   */
  addLocalVolumes(count: number, size?: string): Promise<string[]>;
  /** Tails of every component's log, for a failing test's message. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

function onPath(name: string): boolean {
  return PATH.split(':').some((d) => existsSync(join(d, name)));
}

/** Why no node can run here, or null when everything it needs is present. */
export function nodeMissing(): string | null {
  if (process.platform !== 'linux') return 'the e2e node needs Linux';
  if (process.getuid?.() !== 0) return 'the e2e node needs root (network namespaces, mounts, cgroups)';
  for (const t of NODE_TOOLS) {
    const found = findTool(t);
    if (!found.path) return found.missing!;
  }
  const prog = HOST_PROGRAMS.find((p) => !onPath(p));
  if (prog) return `${prog} not found (Debian packages containerd, runc, iptables; .ci/run installs them)`;
  const plugin = ['bridge', 'host-local', 'portmap', 'loopback'].find((p) => !existsSync(join(CNI_BIN, p)));
  if (plugin)
    return `CNI plugin ${plugin} not found in ${CNI_BIN} (Debian package containernetworking-plugins)`;
  return nodeImages(join(cacheDir(), 'images')).missing ?? null;
}

function pickIndex(): number {
  for (let i = 0; i < MAX_NODES; i++) if (!netInUse(i)) return i;
  throw new Error(`all ${MAX_NODES} node network slots are in use`);
}

/** The kubelet's cgroup root in every v1 hierarchy; cpuset needs its cpus/mems filled in. */
function makeCgroupRoot(name: string): void {
  for (const ctl of [
    'blkio',
    'cpu',
    'cpuacct',
    'cpuset',
    'devices',
    'freezer',
    'memory',
    'pids',
    'systemd',
  ]) {
    const base = join('/sys/fs/cgroup', ctl);
    if (!existsSync(base)) continue;
    mkdirSync(join(base, name), { recursive: true });
    if (ctl === 'cpuset') {
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        writeFileSync(join(base, name, f), readFileSync(join(base, f), 'utf8'));
      }
    }
  }
}

export async function startNode(opts: { dir: string }): Promise<KubeNode> {
  mkdirSync(STATE_DIR, { recursive: true });
  cleanupStaleNodes();
  const index = pickIndex();
  const dir = opts.dir;
  rmSync(dir, { recursive: true, force: true });
  const logs = join(dir, 'logs');
  const runDir = join('/run/sluice-node', `n${index}`);
  for (const d of [dir, logs, runDir]) mkdirSync(d, { recursive: true });
  const rt = runtimePaths(dir, runDir);
  const cgroupRoot = `/sluice-node-${index}`;
  const state: NodeState = {
    index,
    pid: process.pid,
    dir,
    runDir,
    cgroupRoot,
    containerdSocket: rt.socket,
    scratch: [rt.root, join(dir, 'kubelet'), join(dir, 'volumes'), join(dir, 'cp', 'etcd')],
  };
  writeState(state);
  const onExit = () => cleanupNode(state);
  process.once('exit', onExit);

  const procs: ManagedProcess[] = [];
  let cp: ControlPlane | undefined;
  const tails = (lines = 20) =>
    [...(cp ? [cp.logTail(lines)] : []), ...procs.map((p) => `--- ${p.name} log ---\n${p.tail(lines)}`)].join(
      '\n',
    );

  try {
    const net = createNet(index);
    const imagesDir = join(cacheDir(), 'images');
    const { images, missing } = nodeImages(imagesDir);
    if (!images) throw new Error(missing);
    const tool = (t: ToolName) => findTool(t).path!;
    const env = { ...process.env, PATH };
    const spawn = (name: string, bin: string, args: string[]) => {
      const p = new ManagedProcess(
        name,
        net.wrap[0]!,
        [...net.wrap.slice(1), bin, ...args],
        join(logs, `${name}.log`),
        env,
      );
      procs.push(p);
      p.start();
      return p;
    };

    // containerd first: importing images takes a while and needs no API server.
    mkdirSync(rt.root, { recursive: true });
    const sandbox = images.find((i) => i.ref.includes('/pause:'));
    if (!sandbox) throw new Error('no pause image in node-images.list');
    writeFileSync(join(dir, 'containerd.toml'), containerdConfig(rt, sandbox.ref));
    writeCniConfig(rt, net);
    const containerd = spawn('containerd', 'containerd', ['--config', join(dir, 'containerd.toml')]);
    const runtimeReady = waitFor(
      'containerd',
      async () => {
        if (!containerd.running) throw new Error('containerd exited');
        return (await run('ctr', ctrArgs(rt, 'version'))).code === 0;
      },
      { timeoutMs: 30_000, intervalMs: 200, onTimeout: () => containerd.tail() },
    ).then(async () => {
      for (const img of images) {
        const r = await run('ctr', ctrArgs(rt, 'images', 'import', img.archive));
        if (r.code !== 0) throw new Error(`ctr images import ${img.archive}: ${r.stderr}`);
      }
    });

    cp = await startControlPlane({
      dir: join(dir, 'cp'),
      host: net.nodeIp,
      wrap: net.wrap,
      ports: { etcd: 2379, etcdPeer: 2380, api: 6443 },
      serviceCidr: net.serviceCidr,
      extraSans: [`IP:${net.nodeIp}`, `IP:${net.kubernetesServiceIp}`],
      serviceAccountAdmission: true,
    });
    const paths: ComponentPaths = {
      kubeconfig: cp.kubeconfigPath,
      caCert: cp.pki.caCert,
      caKey: cp.pki.caKey,
      saKey: cp.pki.saKey,
      kubeletRoot: join(dir, 'kubelet'),
      kubeletConfig: join(dir, 'kubelet.yaml'),
      podLogs: join(dir, 'pod-logs'),
      resolvConf: join(dir, 'resolv.conf'),
      runtimeSocket: rt.socket,
      corefile: join(dir, 'Corefile'),
      cgroupRoot,
    };
    writeFileSync(paths.kubeletConfig, kubeletConfig(paths, net));
    writeFileSync(paths.resolvConf, `nameserver ${net.nodeIp}\n`);
    writeFileSync(paths.corefile, corefile(paths, net));
    makeCgroupRoot(cgroupRoot);

    spawn('kube-controller-manager', tool('kube-controller-manager'), controllerManagerArgs(paths, net));
    spawn('kube-scheduler', tool('kube-scheduler'), schedulerArgs(paths));
    spawn('kube-proxy', tool('kube-proxy'), kubeProxyArgs(paths, net));
    spawn('coredns', tool('coredns'), ['-conf', paths.corefile]);
    await runtimeReady;
    const kubelet = spawn('kubelet', tool('kubelet'), kubeletArgs(paths, net));

    const kubeConfig = () => cp!.kubeConfig();
    const core = kubeConfig().makeApiClient(CoreV1Api);
    await waitFor(
      `node ${NODE_NAME} Ready`,
      async () => {
        if (!kubelet.running) throw new Error('kubelet exited');
        const n = await core.readNode({ name: NODE_NAME });
        return n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      },
      { timeoutMs: 120_000, intervalMs: 500, onTimeout: () => tails(40) },
    );
    await waitFor(
      'CoreDNS ready',
      async () => (await fetch(`http://${net.nodeIp}:${DNS_READY_PORT}/ready`)).ok,
      { timeoutMs: 60_000, intervalMs: 300, onTimeout: () => tails(40) },
    );

    const kubectl = (args: string[], input?: string) =>
      run(
        tool('kubectl'),
        ['--kubeconfig', cp!.kubeconfigPath, ...args],
        input === undefined ? {} : { input },
      );
    const sc = await kubectl(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'storage.k8s.io/v1',
        kind: 'StorageClass',
        metadata: {
          name: STORAGE_CLASS,
          annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
        },
        provisioner: 'kubernetes.io/no-provisioner',
        volumeBindingMode: 'WaitForFirstConsumer',
        reclaimPolicy: 'Retain',
      }),
    );
    if (sc.code !== 0) throw new Error(`StorageClass: ${sc.stderr}`);

    let volumes = 0;
    const node: KubeNode = {
      net,
      dir,
      kubeconfigPath: cp.kubeconfigPath,
      kubeConfig,
      controlPlane: cp,
      images,
      kubectl,
      async addLocalVolumes(count, size = '1Gi') {
        const names: string[] = [];
        const docs: string[] = [];
        for (let i = 0; i < count; i++) {
          const name = `local-pv-${++volumes}`;
          const path = join(dir, 'volumes', name);
          mkdirSync(path, { recursive: true });
          chmodSync(path, 0o755);
          names.push(name);
          docs.push(
            stringify({
              apiVersion: 'v1',
              kind: 'PersistentVolume',
              metadata: { name },
              spec: {
                capacity: { storage: size },
                accessModes: ['ReadWriteOnce'],
                persistentVolumeReclaimPolicy: 'Retain',
                storageClassName: STORAGE_CLASS,
                local: { path },
                nodeAffinity: {
                  required: {
                    nodeSelectorTerms: [
                      {
                        matchExpressions: [
                          { key: 'kubernetes.io/hostname', operator: 'In', values: [NODE_NAME] },
                        ],
                      },
                    ],
                  },
                },
              },
            }),
          );
        }
        const r = await kubectl(['apply', '-f', '-'], docs.join('---\n'));
        if (r.code !== 0) throw new Error(`PersistentVolumes: ${r.stderr}`);
        return names;
      },
      logTail: tails,
      async stop() {
        const byName = (n: string) => procs.find((p) => p.name === n);
        try {
          // No controller may replace the pods removed next.
          await byName('kube-controller-manager')?.stop();
          await byName('kube-scheduler')?.stop();
          // Pods go through the kubelet, so their sandboxes are torn down (CNI DEL, netns).
          await kubectl([
            'delete',
            'pods',
            '--all',
            '--all-namespaces',
            '--grace-period=0',
            '--force',
            '--wait=false',
          ]);
          await waitFor(
            'no containers left on the node',
            async () => (await run('ctr', ctrArgs(rt, 'tasks', 'ls', '-q'))).stdout.trim() === '',
            { timeoutMs: 60_000, intervalMs: 500 },
          ).catch((err: Error) => console.warn(`[sluice node] ${err.message}; killing what is left`));
          for (const n of ['kube-proxy', 'coredns', 'kubelet', 'containerd']) await byName(n)?.stop();
          await cp?.stop();
        } finally {
          cleanupNode(state);
          process.removeListener('exit', onExit);
        }
      },
    };
    return node;
  } catch (err) {
    for (const p of procs.reverse()) await p.kill();
    await cp?.stop().catch(() => undefined);
    const detail = tails(30);
    cleanupNode(state);
    process.removeListener('exit', onExit);
    throw new Error(`${(err as Error).message}\n${detail}`);
  }
}
