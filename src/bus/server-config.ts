// The nats-server configuration of a managed bus, as text (pure). One generator for the
// StatefulSet the controller runs and for the 3-server cluster of the test harness, so what the
// tests attack is what users run: the bus account that owns JetStream (with explicit storage
// limits) and the admin user, one account slot per role with its NKey user, subject permissions
// and service imports (see accounts.ts), routes that authenticate (user/password) and encrypt
// (mutual TLS), client TLS.
import {
  accountPoolSize,
  BUS_ACCOUNT,
  JS_INFO,
  type ServiceGrant,
  serviceGrants,
  slotAccount,
} from './accounts.ts';
import type { Permissions } from './permissions.ts';

export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

export interface NatsUser {
  /** Public NKey (starts with "U"); the client holds the seed. */
  nkey: string;
  /** Omitted: the admin (the controller), in the bus account with every right. */
  permissions?: Permissions;
  /** Account slot of a role user (required with `permissions`). */
  slot?: number;
}

/** JetStream storage limits of each server, in bytes (the bus account gets them times the servers). */
export interface StorageLimits {
  fileBytes: number;
  memoryBytes: number;
}

export interface ServerConfigModel {
  /** A literal, or "$POD_NAME" to take it from the environment. */
  serverName: string;
  /** Client listen address, e.g. "0.0.0.0:4222". */
  listen: string;
  /** Monitoring listen address, e.g. "0.0.0.0:8222". */
  monitor: string;
  storeDir: string;
  maxPayload: string;
  pidFile?: string;
  lameDuck?: string;
  clientTls?: TlsFiles;
  users: NatsUser[];
  /** Account slots declared (default: enough for the users' slots, at least MIN_ACCOUNT_SLOTS). */
  accountSlots?: number;
  /** Explicit JetStream limits (default: the server's own, 75% of the disk and memory it sees). */
  storage?: StorageLimits;
  cluster?: {
    name: string;
    listen: string;
    /** Peers as host:port; the route credential is put into each URL. */
    peers: string[];
    user: string;
    password: string;
    tls?: TlsFiles;
  };
  /** Extra configuration appended as-is (spec.jetstream.settings). */
  extra?: string;
}

/** A double-quoted config string. */
export function q(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

const list = (xs: readonly string[]) => `[${xs.map(q).join(', ')}]`;

function tlsBlock(t: TlsFiles, verify: boolean, indent: string): string[] {
  return [
    `${indent}tls {`,
    `${indent}  cert_file: ${q(t.cert)}`,
    `${indent}  key_file: ${q(t.key)}`,
    `${indent}  ca_file: ${q(t.ca)}`,
    ...(verify ? [`${indent}  verify: true`] : []),
    `${indent}  timeout: 5`,
    `${indent}}`,
  ];
}

function userEntry(u: NatsUser, indent: string): string {
  if (!u.permissions) return `${indent}{ nkey: ${q(u.nkey)} }`;
  const p = u.permissions;
  const allow = [...new Set([JS_INFO, ...p.publish])];
  return `${indent}{ nkey: ${q(u.nkey)}, permissions: { publish: { allow: ${list(allow)} }, subscribe: { allow: ${list(p.subscribe)} } } }`;
}

/** The `accounts {}` block: the bus account with its exports, then every slot (pure). */
function accountsBlock(m: ServerConfigModel): string[] {
  const admins = m.users.filter((u) => !u.permissions);
  const roles = m.users.filter((u) => u.permissions);
  const highest = Math.max(-1, ...roles.map((u) => u.slot ?? -1));
  const slots = Math.max(m.accountSlots ?? 0, accountPoolSize(highest + 1));
  const bySlot = new Map<number, { user: NatsUser; grants: ServiceGrant[] }>();
  for (const u of roles) {
    if (u.slot === undefined || u.slot < 0 || u.slot >= slots || bySlot.has(u.slot))
      throw new Error(`role user ${u.nkey} needs its own account slot below ${slots} (has ${u.slot})`);
    bySlot.set(u.slot, { user: u, grants: serviceGrants(u.permissions!) });
  }
  // One export per subject, to every slot importing it.
  const exports = new Map<string, { response: ServiceGrant['response']; accounts: string[] }>();
  const allSlots = Array.from({ length: slots }, (_, i) => slotAccount(i));
  exports.set(JS_INFO, { response: 'singleton', accounts: allSlots });
  for (const [i, { grants }] of [...bySlot].sort((a, b) => a[0] - b[0]))
    for (const g of grants) {
      if (g.subject === JS_INFO) continue;
      const e = exports.get(g.subject) ?? { response: g.response, accounts: [] };
      e.accounts.push(slotAccount(i));
      exports.set(g.subject, e);
    }
  // The account's limits are cluster-wide: JetStream charges a stream's max_bytes once per
  // replica against them, so they are each server's limits times the servers (an R3 stream of half
  // a server's store must fit; with one server's limits it was refused as insufficient storage).
  const servers = Math.max(1, m.cluster?.peers.length ?? 1);
  const js = m.storage
    ? `{ max_file: ${m.storage.fileBytes * servers}, max_mem: ${m.storage.memoryBytes * servers} }`
    : 'enabled';
  const importOf = (subject: string) => `{ service: { account: ${BUS_ACCOUNT}, subject: ${q(subject)} } }`;
  const lines = [
    'accounts {',
    `  ${BUS_ACCOUNT}: {`,
    `    jetstream: ${js}`,
    '    users: [',
    ...admins.map((u) => userEntry(u, '      ')),
    '    ]',
    '    exports: [',
    ...[...exports].map(
      ([subject, e]) =>
        `      { service: ${q(subject)}${e.response === 'stream' ? ', response_type: "stream"' : ''}, accounts: ${list(e.accounts)} }`,
    ),
    '    ]',
    '  }',
  ];
  for (let i = 0; i < slots; i++) {
    const held = bySlot.get(i);
    const grants = held?.grants ?? [{ subject: JS_INFO, response: 'singleton' as const }];
    lines.push(
      `  ${slotAccount(i)}: {`,
      ...(held ? ['    users: [', userEntry(held.user, '      '), '    ]'] : []),
      `    imports: [${grants.map((g) => importOf(g.subject)).join(', ')}]`,
      '  }',
    );
  }
  lines.push('}');
  return lines;
}

/** Route URLs carrying the route credential (nats-server does not add it by itself). */
export function routeUrls(c: NonNullable<ServerConfigModel['cluster']>): string[] {
  const auth = `${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}`;
  return c.peers.map((p) => `nats://${auth}@${p}`);
}

export function natsServerConfig(m: ServerConfigModel): string {
  const lines = [
    '# Generated by sluice from the EventBus spec; edits are overwritten.',
    `server_name: ${m.serverName.startsWith('$') ? m.serverName : q(m.serverName)}`,
    `listen: ${q(m.listen)}`,
    `http: ${q(m.monitor)}`,
    `max_payload: ${m.maxPayload}`,
    ...(m.pidFile ? [`pid_file: ${q(m.pidFile)}`] : []),
    ...(m.lameDuck ? [`lame_duck_duration: ${q(m.lameDuck)}`] : []),
    'jetstream {',
    `  store_dir: ${q(m.storeDir)}`,
    ...(m.storage
      ? [`  max_file_store: ${m.storage.fileBytes}`, `  max_memory_store: ${m.storage.memoryBytes}`]
      : []),
    '}',
    ...(m.clientTls ? tlsBlock(m.clientTls, false, '') : []),
    ...accountsBlock(m),
  ];
  if (m.cluster) {
    const c = m.cluster;
    lines.push(
      'cluster {',
      `  name: ${q(c.name)}`,
      `  listen: ${q(c.listen)}`,
      '  authorization {',
      `    user: ${q(c.user)}`,
      `    password: ${q(c.password)}`,
      '    timeout: 5',
      '  }',
      ...(c.tls ? tlsBlock(c.tls, true, '  ') : []),
      `  routes: ${list(routeUrls(c))}`,
      '}',
    );
  }
  if (m.extra?.trim()) lines.push('# From spec.jetstream.settings:', m.extra.trim());
  return `${lines.join('\n')}\n`;
}
