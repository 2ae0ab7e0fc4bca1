// Which pod settings of an EventSource, Sensor or EventBus the controller copies into the pods it
// makes. Anyone who may write these objects gets a pod without needing rights on pods: what such
// a pod may do beyond running sluice is for a cluster admin to grant, not for the object's author.
//
// Upstream Argo Events closed the worst of it in v1.9.6 (GHSA-hmp7-x699-cvhq, CVE-2025-32445) by
// narrowing `template.container` from a whole Kubernetes Container to resources, imagePullPolicy,
// securityContext, volumeMounts, env and envFrom (pkg/apis/events/v1alpha1 `Container`); sluice's
// schema has the same six fields. Upstream still copies privileged security contexts, hostPath
// and other node-mounted volumes and any environment into the pod; sluice refuses those (pod-risks.ts) unless a cluster
// admin allows them with `sluice controller --allow-pod-settings` (or SLUICE_ALLOW_POD_SETTINGS).
// One function serves the controller (a Deployed=False condition, nothing applied) and
// `sluice lint`, so both refuse the same things with the same words.
import { formatPath } from './format.ts';
import {
  containerSecurityRisks,
  envFromPrefixRisk,
  envNameRisk,
  isRec,
  list,
  mountPathRisk,
  POD_GRANTS,
  type PodGrant,
  podMetaRisk,
  podSecurityRisks,
  type Rec,
  type Risk,
  volumeKeyRisk,
} from './pod-risks.ts';

export { POD_GRANTS, type PodGrant };

/** The controller flag, and the environment variable it defaults from. */
export const ALLOW_FLAG = '--allow-pod-settings';
export const ALLOW_ENV = 'SLUICE_ALLOW_POD_SETTINGS';

export interface PodPolicy {
  /** What the cluster admin allowed (none by default). */
  allow?: Iterable<PodGrant>;
  /** The controller's own ServiceAccount: no pod the controller makes may run as it. */
  controllerServiceAccount?: { namespace: string; name: string } | undefined;
}

/** One setting refused. */
export interface PodRefusal {
  /** Field path from the object's root, e.g. "spec.template.container.env[0].name". */
  path: string;
  /** Why, and what allows it. */
  message: string;
  /** The grant that would allow it; undefined when nothing does. */
  grant?: PodGrant;
}

/**
 * "privileged,hostPath,volumes" (commas or spaces; "" or undefined: none) → the grants. Throws an Error
 * naming `source` (the flag or the variable it came from) and the accepted words on an unknown one.
 */
export function parsePodGrants(text: string | undefined, source: string = ALLOW_FLAG): PodGrant[] {
  const words = (text ?? '').split(/[\s,]+/).filter(Boolean);
  const bad = words.filter((w) => !(POD_GRANTS as readonly string[]).includes(w));
  if (bad.length)
    throw new Error(
      `${source}: unknown ${bad.map((b) => JSON.stringify(b)).join(', ')}; use a comma-separated list of ${POD_GRANTS.join(', ')}`,
    );
  return [...new Set(words as PodGrant[])];
}

/**
 * The policy a controller started with `env` applies: grants from SLUICE_ALLOW_POD_SETTINGS
 * (unless `allow` is given, from the flag), its ServiceAccount from POD_NAMESPACE and
 * SLUICE_SERVICE_ACCOUNT (as the manifests set them). Throws on an unknown grant.
 */
export function podPolicyFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  allow?: string,
): PodPolicy {
  const ns = env.POD_NAMESPACE;
  const sa = env.SLUICE_SERVICE_ACCOUNT;
  return {
    allow: allow !== undefined ? parsePodGrants(allow) : parsePodGrants(env[ALLOW_ENV], ALLOW_ENV),
    ...(ns && sa ? { controllerServiceAccount: { namespace: ns, name: sa } } : {}),
  };
}

type Add = (base: string, risks: ReadonlyArray<Risk | undefined>) => void;

/** `base` and a map key, as messages name fields: a.b, or a["k8s.io/x"] for other keys. */
function keyPath(base: string, key: string): string {
  const f = formatPath([key]);
  return f.startsWith('[') ? `${base}${f}` : `${base}.${f}`;
}

/** Labels and annotations of the pods. */
function metaRisks(meta: unknown, base: string, add: Add): void {
  if (!isRec(meta)) return;
  for (const [field, annotation] of [
    ['labels', false],
    ['annotations', true],
  ] as const) {
    const m = meta[field];
    if (!isRec(m)) continue;
    for (const [k, v] of Object.entries(m))
      add(keyPath(`${base}.${field}`, k), [podMetaRisk(k, v, annotation)]);
  }
}

/** `spec.template` of an EventSource or Sensor: pod, volumes and the main container. */
function templateRisks(t: Rec, base: string, add: Add): void {
  metaRisks(t.metadata, `${base}.metadata`, add);
  add(`${base}.securityContext`, podSecurityRisks(t.securityContext));
  list(t.volumes).forEach((v, i) => {
    if (!isRec(v)) return;
    for (const [k, val] of Object.entries(v))
      add(keyPath(`${base}.volumes[${i}]`, k), [volumeKeyRisk(k, val)]);
  });
  const c = isRec(t.container) ? t.container : {};
  const cb = `${base}.container`;
  add(`${cb}.securityContext`, containerSecurityRisks(c.securityContext));
  list(c.env).forEach((e, i) => {
    if (isRec(e) && typeof e.name === 'string') add(`${cb}.env[${i}].name`, [envNameRisk(e.name)]);
  });
  list(c.envFrom).forEach((e, i) => {
    add(`${cb}.envFrom[${i}]`, [envFromPrefixRisk(isRec(e) ? e.prefix : '')]);
  });
  list(c.volumeMounts).forEach((m, i) => {
    if (!isRec(m)) return;
    add(`${cb}.volumeMounts[${i}]`, [
      mountPathRisk(m.mountPath),
      m.mountPropagation === 'Bidirectional'
        ? {
            at: 'mountPropagation',
            grant: 'privileged',
            why: 'Bidirectional propagation needs a privileged container',
          }
        : undefined,
    ]);
  });
}

const BUS_CONTAINERS = ['containerTemplate', 'reloaderContainerTemplate', 'metricsContainerTemplate'];

/** `spec.jetstream` of a managed EventBus: the server pods and their containers. */
function busRisks(js: Rec, base: string, add: Add): void {
  metaRisks(js.metadata, `${base}.metadata`, add);
  add(`${base}.securityContext`, podSecurityRisks(js.securityContext));
  for (const f of BUS_CONTAINERS) {
    const ct = js[f];
    if (isRec(ct)) add(`${base}.${f}.securityContext`, containerSecurityRisks(ct.securityContext));
  }
}

/** The pod settings of an object and the path they sit at ({} when it makes no pods). */
function podSpecOf(kind: string, spec: Rec): { pod?: Rec; base?: string } {
  if (kind === 'EventBus')
    return isRec(spec.jetstream) ? { pod: spec.jetstream, base: 'spec.jetstream' } : {};
  if (kind === 'EventSource' || kind === 'Sensor')
    return isRec(spec.template) ? { pod: spec.template, base: 'spec.template' } : {};
  return {};
}

function message(r: Risk): string {
  return r.grant
    ? `not allowed: ${r.why} (a cluster admin can allow it: sluice controller ${ALLOW_FLAG}=${r.grant})`
    : `not allowed: ${r.why}`;
}

/**
 * The pod settings of `obj` (an EventBus, EventSource or Sensor as stored or parsed) that
 * `policy` refuses, in field order; [] when its pods may be made as asked. Pure.
 */
export function podSettingRefusals(
  obj: { kind: string; metadata?: { namespace?: string | undefined }; spec?: unknown },
  policy: PodPolicy = {},
): PodRefusal[] {
  const { pod, base } = podSpecOf(obj.kind, isRec(obj.spec) ? obj.spec : {});
  if (!pod || !base) return [];
  const allowed = new Set(policy.allow ?? []);
  const out: PodRefusal[] = [];
  const add: Add = (at, risks) => {
    for (const r of risks) {
      if (!r || (r.grant && allowed.has(r.grant))) continue;
      out.push({
        path: r.at ? `${at}.${r.at}` : at,
        message: message(r),
        ...(r.grant ? { grant: r.grant } : {}),
      });
    }
  };
  const own = policy.controllerServiceAccount;
  if (own && pod.serviceAccountName === own.name && obj.metadata?.namespace === own.namespace)
    add(`${base}.serviceAccountName`, [
      {
        at: '',
        why: `"${own.name}" is the sluice controller's own ServiceAccount; its pods may not run as it`,
      },
    ]);
  if (obj.kind === 'EventBus') busRisks(pod, base, add);
  else templateRisks(pod, base, add);
  return out;
}

/** The refusals as one line for a condition or an event: "path: message; path: message". */
export function refusalsText(refusals: readonly PodRefusal[]): string {
  return refusals.map((r) => `${r.path}: ${r.message}`).join('; ');
}
