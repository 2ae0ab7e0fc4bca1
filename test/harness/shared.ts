// What a server-backed test uses: the shared servers from global setup, per-test isolation
// helpers, and the reason a server is missing (for describe.skipIf + a visible message).
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';

export function natsUrl(): string {
  const url = inject('natsUrl');
  if (!url) throw new Error(inject('natsMissing') ?? 'nats-server unavailable');
  return url;
}

/** Non-null when the shared nats-server is unavailable: the reason, for a skip message. */
export const natsMissing = (): string | null => inject('natsMissing');

export function kubeConfig(): KubeConfig {
  const path = inject('kubeconfig');
  if (!path) throw new Error(inject('kubeMissing') ?? 'control plane unavailable');
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export const kubeconfigPath = (): string | null => inject('kubeconfig');
export const kubeMissing = (): string | null => inject('kubeMissing');

/** A short random suffix so tests sharing a server never collide on names. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Test title suffix that names what is missing when the test is skipped. */
export function skipNote(reason: string | null): string {
  return reason ? ` [skipped: ${reason}]` : '';
}
