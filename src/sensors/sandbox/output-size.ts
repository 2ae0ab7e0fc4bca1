// How big a program's result is, as JSON text, counted without writing it: the walk stops as soon
// as the count passes the limit, so a 20 MB result costs a few steps, not another 20 MB.

/**
 * True when `value` as JSON would take more than `limit` bytes (an estimate that counts strings
 * and keys by UTF-16 length plus quotes and separators, numbers by their text; never below the real
 * size by more than the multi-byte characters it holds).
 */
export function exceedsJsonSize(value: unknown, limit: number): boolean {
  let total = 0;
  const stack: unknown[] = [value];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') total += v.length + 2;
    else if (typeof v === 'number' || typeof v === 'bigint') total += String(v).length;
    else if (v === null || typeof v !== 'object') total += 5;
    else if (Array.isArray(v)) {
      total += 2 + v.length;
      for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
    } else {
      total += 2;
      for (const k in v) {
        total += k.length + 4;
        stack.push((v as Record<string, unknown>)[k]);
        if (total > limit) return true;
      }
    }
    if (total > limit) return true;
  }
  return false;
}
