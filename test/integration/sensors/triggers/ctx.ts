// A TriggerContext for trigger tests, with the real parameter code (src/sensors/params), Secrets
// and ConfigMaps from plain maps (or the API server), and a fresh idempotency key unless given.
import { randomUUID } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { expect } from 'vitest';
import type { ConfigMapKeySelector, SecretKeySelector } from '../../../../src/api/k8s.ts';
import { envelope } from '../../../../src/eventsources/envelope.ts';
import { createLogger } from '../../../../src/observability/logger.ts';
import { applyParameters, buildPayload } from '../../../../src/sensors/params/index.ts';
import {
  type EventsByDependency,
  type TriggerContext,
  TriggerError,
  type TriggerErrorCode,
} from '../../../../src/sensors/triggers/trigger.ts';

export const log = createLogger({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });

export interface CtxOptions {
  namespace?: string;
  key?: string;
  /** Event data by dependency name. */
  data?: Record<string, unknown>;
  secrets?: Record<string, Record<string, string>>;
  configMaps?: Record<string, Record<string, string>>;
  /** Read Secrets/ConfigMaps from this cluster (in `namespace`) when not in the maps. */
  kube?: KubeConfig;
  signal?: AbortSignal;
}

export function makeCtx(o: CtxOptions = {}): TriggerContext {
  const namespace = o.namespace ?? 'default';
  const events: EventsByDependency = Object.fromEntries(
    Object.entries(o.data ?? { dep: {} }).map(([dep, data]) => [
      dep,
      envelope({ source: 'test-es', type: 'webhook', subject: 'example', data }),
    ]),
  );
  const core = o.kube ? o.kube.makeApiClient(CoreV1Api) : undefined;
  return {
    namespace,
    sensorName: 'test-sensor',
    triggerName: 'test-trigger',
    idempotencyKey: o.key ?? randomUUID(),
    attempt: 1,
    events,
    traceparent: '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01',
    signal: o.signal ?? new AbortController().signal,
    log,
    buildPayload: (params) => buildPayload(params, events),
    applyParameters: (target, params) => applyParameters(target, params, events),
    async resolveSecret(sel: SecretKeySelector) {
      const v = o.secrets?.[sel.name ?? '']?.[sel.key];
      if (v !== undefined) return v;
      if (core) {
        const s = await core.readNamespacedSecret({ name: sel.name ?? '', namespace });
        const b = s.data?.[sel.key];
        if (b !== undefined) return Buffer.from(b, 'base64').toString('utf8');
      }
      throw new Error(`secret ${sel.name} has no key ${sel.key}`);
    },
    async resolveConfigMap(sel: ConfigMapKeySelector) {
      const v = o.configMaps?.[sel.name ?? '']?.[sel.key];
      if (v !== undefined) return v;
      if (core) {
        const cm = await core.readNamespacedConfigMap({ name: sel.name ?? '', namespace });
        const d = cm.data?.[sel.key];
        if (d !== undefined) return d;
      }
      throw new Error(`configmap ${sel.name} has no key ${sel.key}`);
    },
    kubeConfig() {
      if (!o.kube) throw new Error('no Kubernetes access in this test');
      return o.kube;
    },
  };
}

/** Runs `p` and returns the TriggerError it rejects with (fails the test if it resolves). */
export async function triggerError(p: Promise<unknown>, code?: TriggerErrorCode): Promise<TriggerError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'expected the trigger to fail').toBeInstanceOf(TriggerError);
  const te = err as TriggerError;
  if (code) expect(te.code, te.message).toBe(code);
  return te;
}
