// What `sluice dlq replay` runs the triggers with: the Sensor's spec and the Secrets and
// ConfigMaps it names, from the -f manifests (a file or a folder, as `sluice dev` reads them:
// Secrets and ConfigMaps may live beside the Sensor) or else from the cluster of the kubeconfig.
// A value the manifests lack is read from the cluster when there is a kubeconfig; when there is
// none, the record fails with a reason that says so (printed per record by the replay).
import { statSync } from 'node:fs';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { ConfigMapKeySelector, SecretKeySelector } from '../api/k8s.ts';
import { SensorSpec } from '../api/sensor.ts';
import { type DevManifests, loadManifests } from '../dev/manifests.ts';
import { kubeConfigSource, loadClientKubeConfig } from '../kube/client-config.ts';
import { CliError } from './errors.ts';
import { readStdin, STDIN, STDIN_NAME } from './stdin.ts';

export interface ReplaySources {
  spec: SensorSpec;
  resolveSecret(sel: SecretKeySelector): Promise<string>;
  resolveConfigMap(sel: ConfigMapKeySelector): Promise<string>;
  /** The cluster's kubeconfig; throws KubeConfigError when there is none. */
  kubeConfig(): KubeConfig;
}

export interface SourceFlags {
  namespace: string;
  sensor?: string;
  file?: string;
  kubeconfig?: string;
}

const sourceName = (file: string) => (file === STDIN ? STDIN_NAME : file);

/** The Sensor `name` of `namespace` in the -f manifests; a CliError naming what is wrong otherwise. */
function sensorFromFiles(m: DevManifests, f: SourceFlags & { file: string; sensor: string }): SensorSpec {
  const o = m.objects.find((x) => x.kind === 'Sensor' && x.name === f.sensor && x.namespace === f.namespace);
  if (o) return SensorSpec.parse(o.spec);
  const invalid = m.problems.find((p) => p.includes(`Sensor/${f.sensor}`));
  if (invalid) throw new CliError('BadInput', `the Sensor ${f.sensor} is not valid: ${invalid}`);
  const where =
    m.files.length === 0
      ? `${f.file} holds no .yaml, .yml or .json file`
      : `${sourceName(f.file)} has no Sensor ${f.namespace}/${f.sensor}`;
  const unreadable = m.problems.length ? ` (${m.problems.length} problem(s), first: ${m.problems[0]})` : '';
  throw new CliError('NotFound', `${where}${unreadable}`);
}

async function sensorFromCluster(kc: KubeConfig, f: SourceFlags & { sensor: string }): Promise<SensorSpec> {
  try {
    const o = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: 'argoproj.io',
      version: 'v1alpha1',
      namespace: f.namespace,
      plural: 'sensors',
      name: f.sensor,
    })) as { spec?: unknown };
    return SensorSpec.parse(o.spec);
  } catch (err) {
    if ((err as { code?: unknown }).code === 404)
      throw new CliError(
        'NotFound',
        `no Sensor ${f.namespace}/${f.sensor} in the cluster of context ${kc.getCurrentContext()} (give its manifest with -f)`,
      );
    throw err;
  }
}

/** Loads the replay's inputs (see the file comment). Throws CliError / KubeConfigError on bad input. */
export async function replaySources(f: SourceFlags): Promise<ReplaySources> {
  const sensor = f.sensor;
  if (!sensor) throw new CliError('Usage', 'replay needs --sensor NAME');
  let kc: KubeConfig | undefined;
  const kubeConfig = () => {
    kc ??= loadClientKubeConfig(f.kubeconfig);
    return kc;
  };
  let manifests: DevManifests | undefined;
  let spec: SensorSpec;
  if (f.file) {
    // A missing path is a one-line error, not an empty folder; "-" is standard input.
    let stdin: string | undefined;
    if (f.file === STDIN) stdin = await readStdin();
    else statSync(f.file);
    manifests = loadManifests([f.file], f.namespace, stdin);
    spec = sensorFromFiles(manifests, { ...f, file: f.file, sensor });
  } else {
    kc = loadClientKubeConfig(f.kubeconfig, 'or give the Sensor manifest with -f FILE|DIR');
    spec = await sensorFromCluster(kc, { ...f, sensor });
  }
  const local = (kind: 'Secret' | 'ConfigMap', name: string | undefined, key: string) => {
    const values = (kind === 'Secret' ? manifests?.secrets : manifests?.configMaps)?.get(
      `${f.namespace}/${name}`,
    );
    if (values && key in values) return values[key];
    if (!manifests || kubeConfigSource(f.kubeconfig)) return undefined;
    const has = values ? `has no key ${key}` : `is not in ${sourceName(f.file ?? '')}`;
    throw new Error(
      `${kind} ${f.namespace}/${name} ${has}, and there is no kubeconfig to read it from the cluster`,
    );
  };
  const core = () => kubeConfig().makeApiClient(CoreV1Api);
  return {
    spec,
    kubeConfig,
    async resolveSecret(sel) {
      const v = local('Secret', sel.name, sel.key);
      if (v !== undefined) return v;
      const s = await core().readNamespacedSecret({ name: sel.name ?? '', namespace: f.namespace });
      const data = s.data?.[sel.key];
      if (data === undefined) throw new Error(`Secret ${f.namespace}/${sel.name} has no key ${sel.key}`);
      return Buffer.from(data, 'base64').toString('utf8');
    },
    async resolveConfigMap(sel) {
      const v = local('ConfigMap', sel.name, sel.key);
      if (v !== undefined) return v;
      const c = await core().readNamespacedConfigMap({ name: sel.name ?? '', namespace: f.namespace });
      const data = c.data?.[sel.key];
      if (data === undefined) throw new Error(`ConfigMap ${f.namespace}/${sel.name} has no key ${sel.key}`);
      return data;
    },
  };
}
