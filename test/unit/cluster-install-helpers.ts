// Shared checks for the cluster install tests (config/install.yaml and the Helm chart): the
// controller container's arguments against the real `sluice controller` options, and the pod's
// security and probe settings.
import { execFileSync } from 'node:child_process';
import type { V1Deployment } from '@kubernetes/client-node';
import { expect } from 'vitest';
import { parseAllDocuments } from 'yaml';

const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

/** Every non-empty document of a multi-document YAML text. */
export function parseDocs(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** `sluice controller --help`, read once: option name → whether it takes a value. */
let flags: Map<string, boolean> | undefined;
export function controllerOptions(): Map<string, boolean> {
  if (flags) return flags;
  const help = execFileSync(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', main, 'controller', '--help'],
    {
      encoding: 'utf8',
    },
  );
  flags = new Map();
  for (const m of help.matchAll(/^\s+(?:-\w, )?(--[a-z-]+)( <[^>]+>)?/gm)) flags.set(m[1]!, Boolean(m[2]));
  return flags;
}

/** Problems with a controller container's args: unknown options, missing values. */
export function argProblems(args: string[]): string[] {
  const opts = controllerOptions();
  const problems: string[] = [];
  if (args[0] !== 'controller') problems.push(`first argument is ${args[0]}, not "controller"`);
  for (let i = 1; i < args.length; i++) {
    const [name, inline] = args[i]!.split('=', 2) as [string, string | undefined];
    const takesValue = opts.get(name);
    if (takesValue === undefined) {
      problems.push(`unknown option ${name}`);
    } else if (takesValue && inline === undefined) {
      if (i + 1 >= args.length || args[i + 1]!.startsWith('--')) problems.push(`${name} has no value`);
      i++;
    }
  }
  return problems;
}

/** The settings every controller Deployment must have, whatever renders it. */
export function expectHardenedController(d: V1Deployment): void {
  const pod = d.spec!.template.spec!;
  const ctr = pod.containers[0]!;
  expect(pod.securityContext?.runAsNonRoot, 'pod runAsNonRoot').toBe(true);
  expect(pod.securityContext?.runAsUser, 'pod runAsUser').not.toBe(0);
  expect(pod.securityContext?.seccompProfile?.type, 'seccomp').toBe('RuntimeDefault');
  const sc = ctr.securityContext!;
  expect(sc.readOnlyRootFilesystem, 'readOnlyRootFilesystem').toBe(true);
  expect(sc.allowPrivilegeEscalation, 'allowPrivilegeEscalation').toBe(false);
  expect(sc.runAsNonRoot, 'container runAsNonRoot').toBe(true);
  expect(sc.capabilities?.drop, 'dropped capabilities').toEqual(['ALL']);
  expect(sc.privileged ?? false, 'privileged').toBe(false);
  expect(ctr.resources?.requests?.cpu, 'cpu request').toBeTruthy();
  expect(ctr.resources?.requests?.memory, 'memory request').toBeTruthy();
  expect(ctr.resources?.limits?.memory, 'memory limit').toBeTruthy();
  const port = ctr.ports!.find((p) => p.name === 'metrics');
  expect(port?.containerPort, 'metrics port').toBe(7777);
  expect(ctr.livenessProbe?.httpGet, 'liveness').toMatchObject({ path: '/healthz', port: 'metrics' });
  expect(ctr.readinessProbe?.httpGet, 'readiness').toMatchObject({ path: '/readyz', port: 'metrics' });
  const portArg = ctr.args!.indexOf('--metrics-port');
  expect(ctr.args![portArg + 1], '--metrics-port matches the container port').toBe('7777');
  const env = Object.fromEntries((ctr.env ?? []).map((e) => [e.name, e]));
  expect(env.POD_NAME?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
  expect(env.POD_NAMESPACE?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
  expect(env.SLUICE_IMAGE?.value, 'runtime pods use the controller image').toBe(ctr.image);
  // A read-only root needs a writable /tmp.
  const tmp = ctr.volumeMounts?.find((m) => m.mountPath === '/tmp');
  expect(pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir, '/tmp is an emptyDir').toBeTruthy();
  expect(argProblems(ctr.args ?? [])).toEqual([]);
}
