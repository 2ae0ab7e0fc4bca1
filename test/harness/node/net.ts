// The e2e node's network: a network namespace of its own, joined to this host by one veth pair.
// Every node process (etcd, API server, containerd, kubelet, kube-proxy, CoreDNS) runs inside it
// through `nsenter --net`, so its bridge, pod veths and kube-proxy's iptables rules live and die
// with the namespace; the host only gains one veth and a route to the node's /16. The namespace
// has no route anywhere else, so pods can reach each other, the node and this host, and nothing
// beyond it.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Addresses of one node, all inside 10.<180+index>.0.0/16. */
export interface NodeNet {
  index: number;
  /** Network namespace name; its file is `/run/netns/<netns>`. */
  netns: string;
  netnsPath: string;
  /** Host end of the veth (the node reaches sinks this test process serves here). */
  hostIp: string;
  /** Node end of the veth: API server, kubelet and cluster DNS listen here. */
  nodeIp: string;
  hostIf: string;
  nodeIf: string;
  podCidr: string;
  /** The CNI bridge's address, the pods' gateway. */
  podGateway: string;
  serviceCidr: string;
  /** ClusterIP of the `kubernetes` Service (first address of the service range). */
  kubernetesServiceIp: string;
  /** Command prefix that runs a program inside the namespace. */
  wrap: string[];
}

export const MAX_NODES = 10;

export function nodeNet(index: number): NodeNet {
  const b = `10.${180 + index}`;
  const netns = `sluice-node-${index}`;
  const netnsPath = `/run/netns/${netns}`;
  return {
    index,
    netns,
    netnsPath,
    hostIp: `${b}.255.1`,
    nodeIp: `${b}.255.2`,
    hostIf: `slnode${index}h`,
    nodeIf: `slnode${index}n`,
    podCidr: `${b}.0.0/24`,
    podGateway: `${b}.0.1`,
    serviceCidr: `${b}.128.0/24`,
    kubernetesServiceIp: `${b}.128.1`,
    wrap: ['nsenter', `--net=${netnsPath}`, '--'],
  };
}

/** PATH for the node's programs and the host tools it calls (ip, sysctl, umount live in sbin). */
export const NODE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const env = { ...process.env, PATH: NODE_PATH };

/** Runs a command to completion; throws with its stderr on failure. */
export function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

/** Like sh, but a failure is ignored (cleanup of what may already be gone). */
export function shQuiet(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', env });
  } catch {
    // already gone
  }
}

/** True when index's namespace or host veth exists (another node, or one left by a crash). */
export function netInUse(index: number): boolean {
  const n = nodeNet(index);
  return existsSync(n.netnsPath) || existsSync(`/sys/class/net/${n.hostIf}`);
}

/** Creates the namespace, the veth pair, addresses, the host route, and the node's sysctls. */
export function createNet(index: number): NodeNet {
  const n = nodeNet(index);
  sh('ip', ['netns', 'add', n.netns]);
  try {
    sh('ip', ['link', 'add', n.hostIf, 'type', 'veth', 'peer', 'name', n.nodeIf]);
    sh('ip', ['link', 'set', n.nodeIf, 'netns', n.netns]);
    sh('ip', ['addr', 'add', `${n.hostIp}/30`, 'dev', n.hostIf]);
    sh('ip', ['link', 'set', n.hostIf, 'up']);
    sh('ip', ['-n', n.netns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', n.netns, 'addr', 'add', `${n.nodeIp}/30`, 'dev', n.nodeIf]);
    sh('ip', ['-n', n.netns, 'link', 'set', n.nodeIf, 'up']);
    // Pods and Services are reached through the node end of the veth.
    sh('ip', ['route', 'add', `10.${180 + index}.0.0/16`, 'via', n.nodeIp, 'dev', n.hostIf]);
    // Inside the namespace only: routing between the bridge and the veth, and bridged traffic
    // through iptables so kube-proxy's rules see pod-to-Service traffic on the same bridge.
    sh('nsenter', [
      `--net=${n.netnsPath}`,
      '--',
      'sysctl',
      '-q',
      '-w',
      'net.ipv4.ip_forward=1',
      'net.bridge.bridge-nf-call-iptables=1',
      'net.ipv4.conf.all.route_localnet=1',
    ]);
  } catch (err) {
    destroyNet(index);
    throw err;
  }
  return n;
}

/** Deletes the namespace (its bridge, pod veths and iptables rules go with it) and the host veth. */
export function destroyNet(index: number): void {
  const n = nodeNet(index);
  shQuiet('ip', ['netns', 'delete', n.netns]);
  shQuiet('ip', ['link', 'delete', n.hostIf]);
}
