// Vitest global setup for the integration and e2e projects: one nats-server and one control
// plane for the whole run, shared by every test (tests isolate themselves with their own
// namespaces and subjects). When a tool is missing, the reason is handed to the tests, which then
// report themselves as skipped naming it.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type ControlPlane, startControlPlane } from './controlplane.ts';
import { type NatsServer, startNats } from './nats.ts';
import { findTool } from './tools.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    natsUrl: string | null;
    natsMissing: string | null;
    natsLog: string | null;
    kubeconfig: string | null;
    kubeMissing: string | null;
    kubeLogs: string[];
  }
}

interface Shared {
  users: number;
  nats?: NatsServer;
  natsMissing?: string;
  kube?: ControlPlane;
  kubeMissing?: string;
  ready: Promise<void>;
}

// Both projects run this file in the same main process: start the servers once, stop them when
// the last project is done.
const KEY = Symbol.for('sluice.test.shared-servers');
const g = globalThis as unknown as Record<symbol, Shared | undefined>;

async function startAll(shared: Shared): Promise<void> {
  const root = join(process.cwd(), 'test-results', 'servers');
  mkdirSync(root, { recursive: true });
  const startNatsShared = async (): Promise<void> => {
    const tool = findTool('nats-server');
    if (!tool.path) {
      shared.natsMissing = tool.missing;
      return;
    }
    try {
      // A fresh store each run: streams and buckets reserve their max_bytes, and those of earlier
      // runs would pile up until the server refuses new ones.
      rmSync(join(root, 'nats', 'store'), { recursive: true, force: true });
      shared.nats = await startNats({ dir: join(root, 'nats') });
    } catch (err) {
      shared.natsMissing = `nats-server failed to start: ${(err as Error).message}`;
    }
  };
  const startKubeShared = async (): Promise<void> => {
    const missing = [findTool('kube-apiserver'), findTool('etcd')].find((t) => !t.path);
    if (missing) {
      shared.kubeMissing = missing.missing;
      return;
    }
    try {
      shared.kube = await startControlPlane({ dir: join(root, 'kube') });
    } catch (err) {
      shared.kubeMissing = `control plane failed to start: ${(err as Error).message}`;
    }
  };
  await Promise.all([startNatsShared(), startKubeShared()]);
  for (const why of [shared.natsMissing, shared.kubeMissing]) {
    if (why) console.warn(`[sluice test harness] ${why}; tests that need it are skipped`);
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let shared = g[KEY];
  if (!shared) {
    const fresh: Shared = { users: 0, ready: Promise.resolve() };
    fresh.ready = startAll(fresh);
    g[KEY] = fresh;
    shared = fresh;
  }
  shared.users++;
  await shared.ready;
  project.provide('natsUrl', shared.nats?.url ?? null);
  project.provide('natsMissing', shared.natsMissing ?? null);
  project.provide('natsLog', shared.nats?.logFile ?? null);
  project.provide('kubeconfig', shared.kube?.kubeconfigPath ?? null);
  project.provide('kubeMissing', shared.kubeMissing ?? null);
  project.provide('kubeLogs', shared.kube ? [shared.kube.etcdLog, shared.kube.apiServerLog] : []);
  return async () => {
    const s = g[KEY];
    if (!s || --s.users > 0) return;
    g[KEY] = undefined;
    await Promise.all([s.nats?.stop(), s.kube?.stop()]);
  };
}
