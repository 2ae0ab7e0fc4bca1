// The e2e node's container runtime: containerd with its CRI plugin and runc, every path (root,
// state, socket, pod network namespaces) in the node's own folders, the CNI bridge + host-local
// plugins from Debian's containernetworking-plugins, and the images built by scripts/images.sh
// imported into the k8s.io namespace (nothing is pulled from a registry).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeNet } from './net.ts';

export const CNI_BIN = '/usr/lib/cni';

/** One image the node needs, as scripts/images.sh listed it. */
export interface NodeImage {
  /** The name kubelet asks for, e.g. docker.io/library/sluice:0.1.0. */
  ref: string;
  archive: string;
  id: string;
}

export interface RuntimePaths {
  root: string;
  state: string;
  socket: string;
  cniConfDir: string;
  cniDataDir: string;
}

/** The images of `make node-images` (scripts/images.sh node), or why they are missing. */
export function nodeImages(imagesDir: string): { images?: NodeImage[]; missing?: string } {
  const list = join(imagesDir, 'node-images.list');
  if (!existsSync(list)) return { missing: `${list} not found (run \`make node-images\`)` };
  const images = readFileSync(list, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [ref, archive, id] = l.split(' ');
      return { ref: ref!, archive: archive!, id: id! };
    });
  const gone = images.find((i) => !existsSync(i.archive));
  return gone ? { missing: `${gone.archive} not found (run \`make node-images\`)` } : { images };
}

export function runtimePaths(dir: string, runDir: string): RuntimePaths {
  return {
    root: join(dir, 'containerd'),
    state: join(runDir, 'containerd'),
    socket: join(runDir, 'containerd.sock'),
    cniConfDir: join(dir, 'cni', 'net.d'),
    cniDataDir: join(dir, 'cni', 'ipam'),
  };
}

/** containerd's config (version 2, containerd 1.6): CRI on runc with cgroupfs, our CNI folders. */
export function containerdConfig(p: RuntimePaths, sandboxImage: string): string {
  return `version = 2
root = ${JSON.stringify(p.root)}
state = ${JSON.stringify(p.state)}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = ${JSON.stringify(p.socket)}

[ttrpc]
  address = ${JSON.stringify(`${p.socket}.ttrpc`)}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${JSON.stringify(sandboxImage)}
  # This VM refuses a negative oom_score_adj even to root; without this runc fails with
  # "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  # Pod network namespaces under the node's state folder, so cleanup finds every one.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${JSON.stringify(CNI_BIN)}
    conf_dir = ${JSON.stringify(p.cniConfDir)}
    max_conf_num = 1
`;
}

/** The pod network: one bridge in the node's namespace, addresses from host-local, no NAT. */
export function writeCniConfig(p: RuntimePaths, net: NodeNet): void {
  mkdirSync(p.cniConfDir, { recursive: true });
  mkdirSync(p.cniDataDir, { recursive: true });
  const conf = {
    cniVersion: '1.0.0',
    name: 'sluice-node',
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        // No masquerade: nothing leaves the node's namespace but to this host's veth end.
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          dataDir: p.cniDataDir,
          ranges: [[{ subnet: net.podCidr, gateway: net.podGateway }]],
          routes: [{ dst: '0.0.0.0/0' }],
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
  writeFileSync(join(p.cniConfDir, '10-sluice-node.conflist'), JSON.stringify(conf, null, 2));
}

/** `ctr` against the node's containerd, in the k8s.io namespace the CRI plugin uses. */
export function ctrArgs(p: RuntimePaths, ...args: string[]): string[] {
  return ['--address', p.socket, '--namespace', 'k8s.io', ...args];
}
