// The managed bus's secrets, kept by the controller: its own admin NKey and the route password
// (generated once), the TLS material (generated, re-issued before it expires, or the user's own
// Secret; a generated CA key lives in its own Secret no pod mounts), and one NKey credential per
// EventSource and Sensor using the bus, in a Secret owned by that object, which also records the
// role's account slot on the bus (src/bus/accounts.ts). Seeds and passwords are read and written
// here only; nothing of them is logged.
import { randomBytes } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { createUser, fromSeed } from '@nats-io/nkeys';
import type { EventBusSpec } from '../../api/eventbus.ts';
import { assignSlots, slotAccount, slotIndex } from '../../bus/accounts.ts';
import { eventSourcePermissions, type Permissions, sensorPermissions } from '../../bus/permissions.ts';
import { type BusPki, certificateNames, issueBusPki } from '../../bus/pki.ts';
import { eventSourceBuckets } from '../../bus/source-state.ts';
import { childMeta } from '../resources/common.ts';
import {
  ACCOUNT_SLOTS_KEY,
  ADMIN_KEY,
  type BusSecrets,
  busNames,
  managedBusDnsNames,
  ROUTE_PASSWORD_KEY,
  TLS_KEYS,
} from '../resources/eventbus.ts';
import { workloadName } from '../resources/workload.ts';
import { busNameOf, ownerOf, type ReconcileContext, type SluiceObject } from './context.ts';

/** Label on a role's credential Secret naming its EventBus, so a change reaches the bus. */
export const LABEL_EVENTBUS = 'sluice.argoproj.io/eventbus';
/** Key of a role's NKey seed in its credential Secret. */
export const CREDENTIAL_KEY = 'nkey';
/** Key of a role's account slot (e.g. "W3") in its credential Secret. */
export const ACCOUNT_KEY = 'account';
/** Re-issue a generated server certificate this long before it expires. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

/** Reads a Secret's data as text (undefined when the Secret does not exist). */
export async function readSecret(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
): Promise<Record<string, string> | undefined> {
  const s = await ctx.applier.get<{ data?: Record<string, string>; metadata?: Record<string, never> }>({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
  });
  if (!s) return undefined;
  return Object.fromEntries(
    Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

const seedText = (kp: ReturnType<typeof createUser>) => new TextDecoder().decode(kp.getSeed());

/** The public key of an NKey user seed, or undefined when it is not one. */
export function publicKeyOf(seed: string | undefined): string | undefined {
  if (!seed || !/^SU[A-Z2-7]{50,}$/.test(seed.trim())) return undefined;
  try {
    return fromSeed(new TextEncoder().encode(seed.trim())).getPublicKey();
  } catch {
    return undefined;
  }
}

/** The bus's admin seed and route password: the stored ones, or new ones the first time. */
export async function busSecrets(
  ctx: ReconcileContext,
  namespace: string,
  busName: string,
): Promise<BusSecrets> {
  const have = (await readSecret(ctx, namespace, busNames(busName).secret)) ?? {};
  let adminSeed = have[ADMIN_KEY];
  let adminPublicKey = publicKeyOf(adminSeed);
  if (!adminSeed || !adminPublicKey) {
    adminSeed = seedText(createUser());
    adminPublicKey = publicKeyOf(adminSeed)!;
  }
  const routePassword = have[ROUTE_PASSWORD_KEY] || randomBytes(24).toString('hex');
  const slots = Number(have[ACCOUNT_SLOTS_KEY]);
  return {
    adminSeed,
    adminPublicKey,
    routePassword,
    ...(Number.isSafeInteger(slots) && slots > 0 ? { accountSlots: slots } : {}),
  };
}

export type BusTlsState =
  | { enabled: false }
  | { enabled: true; secretName: string; ca: string; generated?: BusPki }
  | { enabled: true; problem: string };

/** TLS of a managed bus: off, the user's Secret, or generated material (kept, renewed). */
export async function busTls(
  ctx: ReconcileContext,
  bus: SluiceObject,
  spec: EventBusSpec,
): Promise<BusTlsState> {
  const t = spec.jetstream?.tls;
  if (t?.disabled) return { enabled: false };
  const namespace = bus.metadata.namespace ?? 'default';
  if (t?.secretName) {
    const s = await readSecret(ctx, namespace, t.secretName);
    const ca = s?.[TLS_KEYS.ca];
    if (!s?.[TLS_KEYS.cert] || !s[TLS_KEYS.key] || !ca)
      return {
        enabled: true,
        problem: `Secret ${t.secretName} must exist with keys ${TLS_KEYS.cert}, ${TLS_KEYS.key} and ${TLS_KEYS.ca}`,
      };
    return { enabled: true, secretName: t.secretName, ca };
  }
  const name = busNames(bus.metadata.name ?? '').tls;
  const have = await readSecret(ctx, namespace, name);
  // The CA key lives in its own Secret; older versions kept it in the TLS Secret.
  const caSecret = await readSecret(ctx, namespace, busNames(bus.metadata.name ?? '').ca);
  const names = managedBusDnsNames(ownerOf(bus));
  const [cert, key] = [TLS_KEYS.cert, TLS_KEYS.key].map((k) => have?.[k]);
  const ca = caSecret?.[TLS_KEYS.ca] ?? have?.[TLS_KEYS.ca];
  const caKey = caSecret?.[TLS_KEYS.caKey] ?? have?.[TLS_KEYS.caKey];
  if (cert && key && ca && caKey) {
    const cur = await certificateNames(cert).catch(() => undefined);
    const fresh = cur && cur.notAfter.getTime() - ctx.now().getTime() > RENEW_BEFORE_MS;
    const covers = cur && names.every((n) => cur.names.includes(n));
    const keep: BusPki = { ca, caKey, cert, key };
    if (fresh && covers) return { enabled: true, secretName: name, ca: keep.ca, generated: keep };
    const renewed = await issueBusPki(names, keep);
    ctx.log.info({ bus: `${namespace}/${bus.metadata.name}` }, 'server certificate re-issued');
    return { enabled: true, secretName: name, ca: renewed.ca, generated: renewed };
  }
  const pki = await issueBusPki(names);
  return { enabled: true, secretName: name, ca: pki.ca, generated: pki };
}

/** Name of the Secret holding an EventSource's or Sensor's bus credential. */
export function credentialSecretName(obj: { kind: string; metadata: { name?: string } }): string {
  return `${workloadName({ kind: obj.kind, metadata: { name: obj.metadata.name ?? '' } })}-bus-credential`;
}

/** What an EventSource or Sensor may do on its bus (pure). */
export function rolePermissions(obj: SluiceObject): Permissions {
  const namespace = obj.metadata.namespace ?? 'default';
  const bus = { namespace, busName: busNameOf(obj) };
  const name = obj.metadata.name ?? '';
  if (obj.kind === 'Sensor') {
    const deps = ((obj.spec as { dependencies?: unknown[] } | undefined)?.dependencies ?? []).filter(
      (d): d is { name: string; eventSourceName: string; eventName: string } =>
        !!d && typeof d === 'object' && typeof (d as { name?: unknown }).name === 'string',
    );
    return sensorPermissions(bus, name, deps);
  }
  return eventSourcePermissions(bus, name, eventSourceBuckets(namespace, name, obj.spec));
}

export interface RoleUser {
  publicKey: string;
  permissions: Permissions;
  /** Its account slot on the bus. */
  slot: number;
}

/**
 * The credential and account slot of every EventSource and Sensor on the bus: its Secret is
 * read, or made with a new NKey (owned by the object, labelled with the bus); a role without a
 * slot (or sharing one) gets the lowest free one, recorded in the Secret. Returns the users and
 * the account pool size they need (never below `currentSlots`).
 */
export async function roleUsers(
  ctx: ReconcileContext,
  namespace: string,
  busName: string,
  currentSlots = 0,
): Promise<{ users: RoleUser[]; accountSlots: number }> {
  const found: Array<{ obj: SluiceObject; secret: string; seed?: string; slot?: number }> = [];
  for (const cache of [ctx.caches.sources, ctx.caches.sensors]) {
    for (const obj of cache.list()) {
      if (
        obj.metadata.namespace !== namespace ||
        busNameOf(obj) !== busName ||
        obj.metadata.deletionTimestamp
      )
        continue;
      const secret = credentialSecretName(obj);
      const have = await readSecret(ctx, namespace, secret);
      const seed = publicKeyOf(have?.[CREDENTIAL_KEY]) ? have![CREDENTIAL_KEY] : undefined;
      const slot = slotIndex(have?.[ACCOUNT_KEY]);
      found.push({ obj, secret, ...(seed ? { seed } : {}), ...(slot !== undefined ? { slot } : {}) });
    }
  }
  const { slots, pool } = assignSlots(
    new Map(found.map((f) => [`${f.obj.kind}/${f.secret}`, f.slot])),
    currentSlots,
  );
  const users: RoleUser[] = [];
  for (const f of found) {
    const slot = slots.get(`${f.obj.kind}/${f.secret}`)!;
    const seed = f.seed ?? seedText(createUser());
    if (seed !== f.seed || slot !== f.slot) {
      const secret: V1Secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: childMeta(ownerOf(f.obj), f.secret, f.obj.kind === 'Sensor' ? 'sensor' : 'eventsource', {
          labels: { [LABEL_EVENTBUS]: busName },
        }),
        type: 'Opaque',
        stringData: { [CREDENTIAL_KEY]: seed, [ACCOUNT_KEY]: slotAccount(slot) },
      };
      await ctx.applier.apply(secret);
    }
    users.push({ publicKey: publicKeyOf(seed)!, permissions: rolePermissions(f.obj), slot });
  }
  return { users, accountSlots: pool };
}
