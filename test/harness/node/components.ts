// Command lines and config files of the node's Kubernetes components: kube-controller-manager,
// kube-scheduler, kubelet, kube-proxy and CoreDNS. Pure: paths and addresses in, arguments and
// file contents out.
import { stringify } from 'yaml';
import type { NodeNet } from './net.ts';

export const NODE_NAME = 'sluice-node';
export const CLUSTER_DOMAIN = 'cluster.local';
export const DNS_READY_PORT = 8181;

export interface ComponentPaths {
  kubeconfig: string;
  caCert: string;
  caKey: string;
  saKey: string;
  kubeletRoot: string;
  kubeletConfig: string;
  podLogs: string;
  resolvConf: string;
  runtimeSocket: string;
  corefile: string;
  /** The kubelet's cgroup root (cgroupfs driver, cgroups v1), e.g. /sluice-node-0. */
  cgroupRoot: string;
}

export function controllerManagerArgs(p: ComponentPaths, net: NodeNet): string[] {
  return [
    '--kubeconfig',
    p.kubeconfig,
    '--authentication-kubeconfig',
    p.kubeconfig,
    '--authorization-kubeconfig',
    p.kubeconfig,
    '--bind-address',
    '127.0.0.1',
    '--leader-elect=false',
    '--use-service-account-credentials=false',
    // ServiceAccount tokens and the kube-root-ca.crt ConfigMap their volumes mount.
    '--service-account-private-key-file',
    p.saKey,
    '--root-ca-file',
    p.caCert,
    '--cluster-signing-cert-file',
    p.caCert,
    '--cluster-signing-key-file',
    p.caKey,
    '--service-cluster-ip-range',
    net.serviceCidr,
    '--allocate-node-cidrs=false',
    // Short waits so garbage collection and rollouts in tests are prompt.
    '--concurrent-gc-syncs',
    '5',
    '--v',
    '1',
  ];
}

export function schedulerArgs(p: ComponentPaths): string[] {
  return [
    '--kubeconfig',
    p.kubeconfig,
    '--authentication-kubeconfig',
    p.kubeconfig,
    '--authorization-kubeconfig',
    p.kubeconfig,
    '--bind-address',
    '127.0.0.1',
    '--leader-elect=false',
    '--v',
    '1',
  ];
}

/** KubeletConfiguration for this VM: cgroupfs on cgroups v1, no swap check, no local storage stats. */
export function kubeletConfig(p: ComponentPaths, net: NodeNet): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: net.nodeIp,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    // Inside a namespace only this test reaches: the API server may call it for logs and exec.
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
    authorization: { mode: 'AlwaysAllow' },
    cgroupDriver: 'cgroupfs',
    cgroupRoot: p.cgroupRoot,
    failCgroupV1: false,
    failSwapOn: false,
    // Its filesystem stats cannot read this VM's root device.
    localStorageCapacityIsolation: false,
    containerRuntimeEndpoint: `unix://${p.runtimeSocket}`,
    clusterDNS: [net.nodeIp],
    clusterDomain: CLUSTER_DOMAIN,
    resolvConf: p.resolvConf,
    podLogsDir: p.podLogs,
    maxPods: 40,
    serializeImagePulls: false,
    // Images come only from the local import: never collect them.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '100Mi' },
    // Faster pod status and ConfigMap/Secret propagation for tests.
    syncFrequency: '10s',
    nodeStatusUpdateFrequency: '5s',
    fileCheckFrequency: '5s',
    staticPodPath: '',
    registerNode: true,
    shutdownGracePeriod: '0s',
  });
}

export function kubeletArgs(p: ComponentPaths, net: NodeNet): string[] {
  return [
    '--config',
    p.kubeletConfig,
    '--kubeconfig',
    p.kubeconfig,
    '--root-dir',
    p.kubeletRoot,
    '--hostname-override',
    NODE_NAME,
    '--node-ip',
    net.nodeIp,
    '--v',
    '1',
  ];
}

export function kubeProxyArgs(p: ComponentPaths, net: NodeNet): string[] {
  return [
    '--kubeconfig',
    p.kubeconfig,
    '--hostname-override',
    NODE_NAME,
    '--proxy-mode',
    'iptables',
    '--cluster-cidr',
    net.podCidr,
    '--bind-address',
    net.nodeIp,
    '--metrics-bind-address',
    '127.0.0.1:10249',
    '--healthz-bind-address',
    '127.0.0.1:10256',
    // nf_conntrack_max is not writable from a network namespace other than the host's: leave it.
    '--conntrack-max-per-core',
    '0',
    '--conntrack-min',
    '0',
    '--conntrack-tcp-timeout-established',
    '0',
    '--conntrack-tcp-timeout-close-wait',
    '0',
    '--v',
    '1',
  ];
}

/** Cluster DNS: names of Services and Pods from the API; nothing is forwarded anywhere. */
export function corefile(p: ComponentPaths, net: NodeNet): string {
  return `.:53 {
    bind ${net.nodeIp}
    errors
    ready ${net.nodeIp}:${DNS_READY_PORT}
    health ${net.nodeIp}:8080
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${p.kubeconfig}
        pods insecure
        ttl 5
    }
    cache 5
}
`;
}
