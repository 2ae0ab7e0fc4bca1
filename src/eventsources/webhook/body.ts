// Reading one request body within its bounds. Never rejects: every way a body can end (complete,
// too large, idle too long, displaced from the byte budget, the client gone by FIN, RST or a
// parse error) is a value the server answers or drops. The bytes stay reserved in the budget
// until the caller releases them (after the answer), so a request waiting for the bus still
// counts against the process's memory bound.
import type { IncomingMessage } from 'node:http';
import type { BudgetHolder, ByteBudget } from './budget.ts';

export type BodyOutcome =
  | { kind: 'complete'; raw: Buffer }
  /** Answer `status` and cut the connection (the rest of the body is not read). */
  | { kind: 'refused'; status: 408 | 413 | 503; message: string }
  /** The client went away (aborted upload, reset); nothing to answer. */
  | { kind: 'gone' };

export interface BodyReadOptions {
  /** Largest body in bytes (413 beyond). */
  max: number;
  budget: ByteBudget;
  /** No byte for this long (ms) → 408. */
  idleMs: number;
}

/** A request's reservation in the byte budget; release it once the request is answered. */
export class BodyHold implements BudgetHolder {
  held = 0;
  lastDataAt = Date.now();
  displaceable = true;
  onDisplace: (() => void) | undefined;
  private readonly budget: ByteBudget;

  constructor(budget: ByteBudget) {
    this.budget = budget;
  }

  displace(): void {
    this.displaceable = false;
    this.onDisplace?.();
  }

  take(n: number): boolean {
    this.lastDataAt = Date.now();
    return this.budget.take(this, n, this.lastDataAt);
  }

  release(): void {
    this.displaceable = false;
    this.budget.release(this);
  }
}

/** Reads `req`'s body into memory within `o`'s bounds; the bytes are held by `hold`. */
export function readBody(req: IncomingMessage, hold: BodyHold, o: BodyReadOptions): Promise<BodyOutcome> {
  return new Promise<BodyOutcome>((resolve) => {
    if (req.destroyed) {
      // Gone before we started reading (e.g. during an earlier await).
      hold.release();
      resolve({ kind: 'gone' });
      return;
    }
    let chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (out: BodyOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.socket.off('end', onClose);
      hold.displaceable = false;
      hold.onDisplace = undefined;
      if (out.kind !== 'complete') {
        chunks = [];
        hold.release();
        // Stop buffering: what still arrives is discarded until the connection is cut.
        req.resume();
      }
      resolve(out);
    };
    const idle = setTimeout(
      () => finish({ kind: 'refused', status: 408, message: `no body data for ${o.idleMs} ms` }),
      o.idleMs,
    );
    idle.unref();
    const onData = (c: Buffer) => {
      if (settled) return;
      size += c.length;
      if (size > o.max)
        return finish({ kind: 'refused', status: 413, message: `body larger than ${o.max} bytes` });
      if (!hold.take(c.length)) {
        return finish({
          kind: 'refused',
          status: 503,
          message: 'too many request bytes in flight on this server; retry later',
        });
      }
      idle.refresh();
      chunks.push(c);
    };
    const onEnd = () =>
      finish({ kind: 'complete', raw: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
    // `close` before `end`: the client aborted (FIN mid-body, RST) or the socket was destroyed.
    const onClose = () =>
      finish(req.complete ? { kind: 'complete', raw: Buffer.concat(chunks, size) } : { kind: 'gone' });
    hold.onDisplace = () =>
      finish({
        kind: 'refused',
        status: 503,
        message: 'displaced by smaller requests while the server is short of memory; retry later',
      });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    // The client half-closed (FIN) before the body was complete: it will send nothing more.
    req.socket.on('end', onClose);
    // An 'error' (ECONNRESET "aborted") is followed by 'close'; a listener keeps it from throwing.
    req.on('error', () => {});
  });
}
