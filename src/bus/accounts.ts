// NATS accounts of a secured bus. Subject permissions alone cannot contain a role: NATS checks
// the subject a client publishes to, never the reply subject it names, and JetStream answers a
// request (a PubAck, a KV value from a direct get, a pulled event) by publishing to that reply
// subject inside the requester's account. With every role in one account, a role could aim those
// answers at the JetStream API or another role's KV bucket and act as the admin. So:
//
//   SLUICE       the one account with JetStream: every stream, consumer and KV bucket, and the
//                controller's admin user. It exports, as services, exactly the subjects each
//                role may use, to that role's account only.
//   W0 … Wn-1    one account per EventSource or Sensor (a "slot"), without JetStream. It imports
//                its role's subjects from SLUICE under the same names, so the nats.js clients
//                work unchanged. Every answer to a request lands back in the role's own account,
//                where the only subjects that lead anywhere are the ones it may use anyway.
//
// Accounts are slots that exist from the server's start and are assigned to roles, because
// nats-server does not wire the imports of an account introduced by a config reload (observed on
// 2.12: "no responders" until a second reload; in a cluster route interest for such an account
// can be lost, nats-io/nats-server#8560). Assigning a role to an existing slot, changing its
// imports or freeing it are plain reloads. Every slot imports $JS.API.INFO from SLUICE from the
// start: that shadows the server's own "$JS.API.> → JetStream not enabled" import, which would
// otherwise compete with the role's JetStream imports after a reload.
import type { Permissions } from './permissions.ts';

/** The account that owns JetStream (streams, consumers, KV) and holds the admin user. */
export const BUS_ACCOUNT = 'SLUICE';
/** Imported into every slot (see above); a role's JetStream client checks it once. */
export const JS_INFO = '$JS.API.INFO';
/** Fewest slots a bus starts with; the pool doubles (a rolling restart) when roles outgrow it. */
export const MIN_ACCOUNT_SLOTS = 32;

/** Name of account slot `i` (pure). */
export function slotAccount(i: number): string {
  return `W${i}`;
}

/** The slot index of an account name, or undefined when it is not one. */
export function slotIndex(account: string | undefined): number | undefined {
  const m = /^W(0|[1-9][0-9]{0,5})$/.exec(account ?? '');
  return m ? Number(m[1]) : undefined;
}

/** One subject a role's account imports from the bus account. */
export interface ServiceGrant {
  subject: string;
  /** "stream": the request is answered by many messages (a pull's events and status). */
  response: 'singleton' | 'stream';
}

/**
 * What a role's account imports (pure): every subject its user may publish to is served by the
 * bus account (events, KV, JetStream API, acks, dead letters), plus $JS.API.INFO. Pulls answer
 * with a stream of messages; everything else with one.
 */
export function serviceGrants(p: Permissions): ServiceGrant[] {
  const subjects = [...new Set([JS_INFO, ...p.publish])].sort();
  return subjects.map((subject) => ({
    subject,
    response: subject.startsWith('$JS.API.CONSUMER.MSG.NEXT.') ? 'stream' : 'singleton',
  }));
}

/**
 * Pool size for `needed` slots (pure): at least `current` (a pool never shrinks, so a freed slot
 * does not roll the servers) and MIN_ACCOUNT_SLOTS, doubled until `needed` fit.
 */
export function accountPoolSize(needed: number, current = 0): number {
  let n = Math.max(MIN_ACCOUNT_SLOTS, current);
  while (n < needed) n *= 2;
  return n;
}

/**
 * Gives every role a slot (pure). `have` maps role ids to the slot they hold now (from their
 * credential Secret; undefined when none). A role keeps a valid slot no other role holds; the
 * rest take the lowest free ones. Returns the assignment and the pool size it needs.
 */
export function assignSlots(
  have: ReadonlyMap<string, number | undefined>,
  currentPool = 0,
): { slots: Map<string, number>; pool: number } {
  const slots = new Map<string, number>();
  const taken = new Set<number>();
  const ids = [...have.keys()].sort();
  for (const id of ids) {
    const s = have.get(id);
    if (s !== undefined && s >= 0 && !taken.has(s)) {
      slots.set(id, s);
      taken.add(s);
    }
  }
  let next = 0;
  for (const id of ids) {
    if (slots.has(id)) continue;
    while (taken.has(next)) next++;
    slots.set(id, next);
    taken.add(next);
  }
  const highest = Math.max(-1, ...taken);
  return { slots, pool: accountPoolSize(highest + 1, currentPool) };
}
