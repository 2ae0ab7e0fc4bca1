// Locates the external programs the tests run for real (built by `make tools` into the cache).
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

const repoRoot = new URL('../..', import.meta.url).pathname;

/** Tool versions from tools/versions.env, the single source shared with scripts/tools.sh. */
export function toolVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(repoRoot, 'tools/versions.env'), 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(\S+)/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

export function cacheDir(): string {
  return process.env.SLUICE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'sluice');
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export type ToolName =
  | 'nats-server'
  | 'kube-apiserver'
  | 'etcd'
  | 'kubectl'
  | 'helm'
  | 'prometheus'
  | 'promtool'
  | NodeToolName;

/** The e2e node's own programs (`make tools` builds them beside the API server). */
export type NodeToolName =
  | 'kubelet'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'kube-proxy'
  | 'coredns'
  | 'pause';

export interface ToolLookup {
  path?: string;
  /** Why the tool is unavailable, phrased for a skipped-test message. */
  missing?: string;
}

/** Where `make tools` puts each tool, in preference order, before falling back to PATH. */
function candidates(name: ToolName): string[] {
  const v = toolVersions();
  const tools = join(cacheDir(), 'tools');
  const k8s = join(tools, `${'k8s-'}${v.KUBERNETES_VERSION}-etcd-${v.ETCD_VERSION}`);
  const assets = process.env.KUBEBUILDER_ASSETS;
  switch (name) {
    case 'nats-server':
      return [join(tools, `nats-server-${v.NATS_SERVER_VERSION}`, name)];
    case 'kube-apiserver':
    case 'etcd':
      return [...(assets ? [join(assets, name)] : []), join(k8s, name)];
    case 'kubectl':
      return [...(assets ? [join(assets, name)] : []), join(k8s, name)];
    case 'helm':
      return [join(tools, `helm-${v.HELM_VERSION}`, name)];
    case 'prometheus':
    case 'promtool':
      return [];
    case 'kubelet':
    case 'kube-controller-manager':
    case 'kube-scheduler':
    case 'kube-proxy':
      return [join(tools, `k8s-node-${v.KUBERNETES_VERSION}`, name)];
    case 'coredns':
      return [join(tools, `coredns-${v.COREDNS_VERSION}`, name)];
    case 'pause':
      return [join(tools, `pause-${v.PAUSE_VERSION}`, name)];
  }
}

const nodeTools = new Set<ToolName>([
  'kubelet',
  'kube-controller-manager',
  'kube-scheduler',
  'kube-proxy',
  'coredns',
  'pause',
]);

/** Finds a tool: explicit env override (e.g. SLUICE_NATS_SERVER), the tool cache, then PATH. */
export function findTool(name: ToolName): ToolLookup {
  const envKey = `SLUICE_${name.replaceAll('-', '_').toUpperCase()}`;
  const override = process.env[envKey];
  if (override) {
    return executable(override) ? { path: override } : { missing: `${envKey}=${override} is not executable` };
  }
  for (const c of candidates(name)) if (executable(c)) return { path: c };
  // nats-server from PATH may be Debian's 2.9, which lacks features we rely on; only the cache
  // build is trusted for it.
  if (name !== 'nats-server' && !nodeTools.has(name)) {
    const p = onPath(name);
    if (p) return { path: p };
  }
  return { missing: `${name} not found (run \`make tools\`, or set ${envKey})` };
}

export function requireTool(name: ToolName): string {
  const t = findTool(name);
  if (!t.path) throw new Error(t.missing);
  return t.path;
}
