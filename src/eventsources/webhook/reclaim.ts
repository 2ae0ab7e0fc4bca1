// Memory an abusive load leaves dead, given back as the load goes on instead of whenever V8 gets to
// it. Each body chunk Node reads is copied at once into its request's own buffer (body.ts) and
// dies, but its bytes live outside the JS heap and are freed only at the next young-generation
// collection, which V8 schedules by the JS heap's own filling, not by those bytes; and each
// connection that comes and goes leaves objects in the old generation, which V8 lets grow to
// several times its live size before it collects. Under 400 stalled uploads and 2,000 trickling
// connections (all re-opened as they are cut) that was ~30 MiB of dead chunks plus ~50 MiB of
// dead heap at the peak. So: after every RECLAIM_EVERY_BYTES body bytes read, a young-generation
// collection (about 1 ms); after every FULL_EVERY_BYTES bytes or FULL_EVERY_CONNECTIONS new
// connections, at most once per FULL_MIN_INTERVAL_MS, a full one (tens of ms, only under such a
// load). A full collection for connections runs only when the heap has grown by
// FULL_MIN_GROWTH_BYTES since the last one: senders that open a new connection per request (many
// webhook senders do) at 1,000/s otherwise paid a 19-30 ms pause every second to reclaim 6-10 MB
// that V8's own incremental collection takes back anyway (EventSource answer p99 40-140 ms).
// Each runs after the current I/O callbacks. Only where the process allows it (`bin/sluice`
// passes --expose-gc); elsewhere these do nothing.
import { getHeapStatistics } from 'node:v8';

/** Body bytes read between two young-generation collections. */
export const RECLAIM_EVERY_BYTES = 8 * 1024 * 1024;
/** Body bytes read, or connections opened, after which a full collection is due. */
export const FULL_EVERY_BYTES = 64 * 1024 * 1024;
export const FULL_EVERY_CONNECTIONS = 1_000;
/** Least time between two full collections (ms). */
export const FULL_MIN_INTERVAL_MS = 1_000;
/** Heap growth since the last full collection that makes one due for connections (bytes). */
export const FULL_MIN_GROWTH_BYTES = 24 * 1024 * 1024;

type Gc = (o?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

let bytes = 0;
let bytesForFull = 0;
let connections = 0;
let lastFull = 0;
/** JS heap in use right after the last full collection made here (bytes). */
let usedAfterFull = 0;
let scheduled = false;

/** Whether a full collection is worth its pause now (see the header). */
function fullDue(): boolean {
  if (bytesForFull >= FULL_EVERY_BYTES) return true;
  if (connections < FULL_EVERY_CONNECTIONS) return false;
  if (getHeapStatistics().used_heap_size - usedAfterFull >= FULL_MIN_GROWTH_BYTES) return true;
  connections = 0; // not grown enough: count the next thousand
  return false;
}

function schedule(): void {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (!gc || scheduled) return;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    const now = Date.now();
    if (now - lastFull >= FULL_MIN_INTERVAL_MS && fullDue()) {
      lastFull = now;
      bytes = bytesForFull = connections = 0;
      gc({ type: 'major' });
      usedAfterFull = getHeapStatistics().used_heap_size;
    } else if (bytes >= RECLAIM_EVERY_BYTES) {
      bytes = 0;
      gc({ type: 'minor' });
    }
  });
}

/** Counts `n` body bytes read (and copied away); schedules a collection when one is due. */
export function noteBodyBytes(n: number): void {
  bytes += n;
  bytesForFull += n;
  if (bytes >= RECLAIM_EVERY_BYTES || bytesForFull >= FULL_EVERY_BYTES) schedule();
}

/** Counts a new client connection; schedules a full collection when one is due. */
export function noteConnection(): void {
  if (++connections >= FULL_EVERY_CONNECTIONS) schedule();
}
