// Prometheus's Kubernetes pod discovery, played by the test: Debian's Prometheus is built without
// kubernetes_sd_configs, so the pods are read from the API server and written as file_sd targets
// with the labels the `pod` role gives (one target per container port), and a scrape job written
// for pod discovery (config/prometheus/scrape-configs.yaml) runs with file discovery instead, its
// relabeling unchanged.
import { writeFileSync } from 'node:fs';
import type { V1Pod } from '@kubernetes/client-node';

const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, '_');

/** The `pod` role's targets for `pods`: address podIP:containerPort and the __meta_kubernetes_* labels. */
export function podRoleTargets(pods: V1Pod[]): Array<{ targets: string[]; labels: Record<string, string> }> {
  const groups: Array<{ targets: string[]; labels: Record<string, string> }> = [];
  for (const pod of pods) {
    const ip = pod.status?.podIP;
    if (!ip) continue;
    const podLabels: Record<string, string> = {
      __meta_kubernetes_namespace: pod.metadata!.namespace!,
      __meta_kubernetes_pod_name: pod.metadata!.name!,
      __meta_kubernetes_pod_ip: ip,
      __meta_kubernetes_pod_phase: pod.status?.phase ?? '',
      __meta_kubernetes_pod_ready: String(
        pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      ),
      __meta_kubernetes_pod_uid: pod.metadata!.uid ?? '',
    };
    for (const [k, v] of Object.entries(pod.metadata!.labels ?? {})) {
      podLabels[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
      podLabels[`__meta_kubernetes_pod_labelpresent_${sanitize(k)}`] = 'true';
    }
    for (const [k, v] of Object.entries(pod.metadata!.annotations ?? {})) {
      podLabels[`__meta_kubernetes_pod_annotation_${sanitize(k)}`] = v;
      podLabels[`__meta_kubernetes_pod_annotationpresent_${sanitize(k)}`] = 'true';
    }
    for (const c of pod.spec!.containers) {
      for (const port of c.ports ?? []) {
        groups.push({
          targets: [`${ip}:${port.containerPort}`],
          labels: {
            ...podLabels,
            __meta_kubernetes_pod_container_name: c.name,
            __meta_kubernetes_pod_container_port_name: port.name ?? '',
            __meta_kubernetes_pod_container_port_number: String(port.containerPort),
            __meta_kubernetes_pod_container_port_protocol: port.protocol ?? 'TCP',
          },
        });
      }
    }
  }
  return groups;
}

/** `job` (written for kubernetes_sd_configs role pod) reading `targetsFile` instead; the file gets `pods`' targets. */
export function withPodTargets(
  job: Record<string, unknown>,
  pods: V1Pod[],
  targetsFile: string,
): Record<string, unknown> {
  const { kubernetes_sd_configs: sd, ...rest } = job;
  if (!Array.isArray(sd) || (sd[0] as { role?: string }).role !== 'pod')
    throw new Error(`job ${String(job.job_name)} does not discover pods`);
  writeFileSync(targetsFile, JSON.stringify(podRoleTargets(pods)));
  return {
    ...rest,
    scrape_interval: '1s',
    file_sd_configs: [{ files: [targetsFile], refresh_interval: '1s' }],
  };
}
