// Comparing secrets a request presents (bearer tokens, signatures) without leaking, through the
// time taken, how much of them matched.
import { timingSafeEqual } from 'node:crypto';

/** Constant-time comparison of two strings (false when the lengths differ). */
export function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
