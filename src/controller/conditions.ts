// Status conditions, computed purely: conditions keyed by type, lastTransitionTime changed only
// when the status flips, and a Ready summary that is True only when every other one is.
import type { Condition } from '../api/common.ts';

export interface ConditionInput {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message?: string;
}

/**
 * Merges `updates` into `current`. Conditions whose status did not change keep their
 * lastTransitionTime; reason/message/observedGeneration are always refreshed.
 */
export function mergeConditions(
  current: Condition[] | undefined,
  updates: ConditionInput[],
  generation: number | undefined,
  now: Date,
): Condition[] {
  const byType = new Map((current ?? []).map((c) => [c.type, c]));
  const out: Condition[] = [];
  for (const u of updates) {
    const prev = byType.get(u.type);
    out.push({
      type: u.type,
      status: u.status,
      reason: u.reason,
      message: u.message ?? '',
      lastTransitionTime:
        prev && prev.status === u.status && prev.lastTransitionTime
          ? prev.lastTransitionTime
          : now.toISOString(),
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    });
  }
  return out;
}

/** Adds the Ready summary: True when all given conditions are True, else the first that is not. */
export function withReady(conditions: ConditionInput[]): ConditionInput[] {
  const notTrue = conditions.find((c) => c.status !== 'True');
  const ready: ConditionInput = notTrue
    ? {
        type: 'Ready',
        status: notTrue.status === 'Unknown' ? 'Unknown' : 'False',
        reason: notTrue.reason,
        message: notTrue.message,
      }
    : { type: 'Ready', status: 'True', reason: 'Ready', message: '' };
  return [...conditions, ready];
}

/** True when `a` and `b` describe the same conditions (ignoring timestamps). */
export function sameConditions(a: Condition[] | undefined, b: Condition[]): boolean {
  if (!a || a.length !== b.length) return false;
  const key = (c: Condition) =>
    `${c.type}|${c.status}|${c.reason ?? ''}|${c.message ?? ''}|${c.observedGeneration ?? ''}`;
  const bs = new Set(b.map(key));
  return a.every((c) => bs.has(key(c)));
}
