// Event ids that come from outside (a provider's delivery id, an Idempotency-Key, a broker's
// message id) become the event's `id`, its `ce-id` header and part of its Nats-Msg-Id. A NATS
// header line cannot carry CR/LF, and an id of unbounded length costs memory in every id memory
// down the line, so such an id can never be published as it is. A webhook refuses it (400: the
// sender's retry would fail the same way, so 503 would make it retry forever); every other source
// goes through `publishableId`, which keeps the id when it is fine and otherwise replaces it by a
// digest of it (the same input still gives the same id, so a redelivery is still stored once).
import { createHash } from 'node:crypto';

/** Longest event id taken from outside (characters). */
export const MAX_EVENT_ID = 200;

/** True when `v` has a C0 or C1 control character or DEL. */
function hasControl(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/** Why `id` cannot be an event id (empty, too long, control characters), or undefined. */
export function eventIdProblem(id: string): string | undefined {
  if (id.length === 0) return 'is empty';
  if (id.length > MAX_EVENT_ID) return `is longer than ${MAX_EVENT_ID} characters`;
  if (hasControl(id)) return 'contains a control character (CR, LF, ...)';
  return undefined;
}

/** `id` when it is a valid event id, else `sha256-<base64url digest of id>` (stable). */
export function publishableId(id: string): string {
  return eventIdProblem(id) === undefined
    ? id
    : `sha256-${createHash('sha256').update(id).digest('base64url')}`;
}
