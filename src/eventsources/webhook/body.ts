// Reading one request body within its bounds. Never rejects: every way a body can end (complete,
// too large, idle too long, displaced from the byte budget, the client gone by FIN, RST or a
// parse error) is a value the server answers or drops.
//
// Memory: each chunk Node reads is copied at once into one buffer per request, grown by doubling
// (never sized from a declared Content-Length a client may not honour), and the budget counts that
// buffer's size. Node's own chunk then dies young and is collected cheaply; the request's buffer
// is freed the moment the request is answered or cut (detached, not left for a later full
// garbage collection), so memory held for slow or abandoned uploads comes back at once.
import type { IncomingMessage } from 'node:http';
import { type BudgetHolder, type ByteBudget, SMALL_REQUEST_BYTES, TINY_REQUEST_BYTES } from './budget.ts';
import type { BodyCheck } from './decode.ts';
import { noteBodyBytes } from './reclaim.ts';

export type BodyOutcome =
  | { kind: 'complete'; raw: Buffer }
  /** Answer `status` and cut the connection (the rest of the body is not read). */
  | { kind: 'refused'; status: 400 | 408 | 413 | 503; message: string }
  /** The client went away (aborted upload, reset); nothing to answer. */
  | { kind: 'gone' };

export interface BodyReadOptions {
  /** Largest body in bytes (413 beyond). */
  max: number;
  budget: ByteBudget;
  /** No byte for this long (ms) → 408. */
  idleMs: number;
  /** Run on each chunk as it arrives (a refusal ends the upload at once, see decode.ts). */
  check?: BodyCheck | undefined;
}

const FIRST_ALLOCATION = 4 * 1024;
const BUDGET_FULL = 'too many request bytes in flight on this server; retry later';

/** Frees a buffer's memory now (it must own its ArrayBuffer alone, as allocUnsafeSlow makes it). */
function free(b: Buffer): void {
  (b.buffer as ArrayBuffer & { transfer?(n: number): ArrayBuffer }).transfer?.(0);
}

/** A request's body buffer and its reservation in the byte budget. */
export class BodyHold implements BudgetHolder {
  held = 0;
  lastDataAt = Date.now();
  startedAt = this.lastDataAt;
  displaceable = true;
  readonly small: boolean;
  readonly tiny: boolean;
  onDisplace: (() => void) | undefined;
  private readonly budget: ByteBudget;
  private readonly limit: number;
  private buf: Buffer | undefined;
  private size = 0;

  /**
   * `declared`: the request's Content-Length (undefined when chunked: unknown size, counts as
   * large); `max`: the route's largest body.
   */
  constructor(budget: ByteBudget, declared: number | undefined, max = Number.POSITIVE_INFINITY) {
    this.budget = budget;
    this.small = declared !== undefined && declared <= SMALL_REQUEST_BYTES;
    this.tiny = declared !== undefined && declared <= TINY_REQUEST_BYTES;
    this.limit = Math.min(max, declared ?? max);
  }

  /** Bytes received so far. */
  get length(): number {
    return this.size;
  }

  displace(): void {
    this.displaceable = false;
    this.onDisplace?.();
  }

  /** Bytes the buffer must grow by to take `n` more (0 when they fit already). */
  growthFor(n: number): number {
    const need = this.size + n;
    const have = this.buf?.length ?? 0;
    return need > have
      ? Math.max(need, Math.min(this.limit, Math.max(FIRST_ALLOCATION, have * 2))) - have
      : 0;
  }

  /** Appends `c`, growing the buffer within the budget; false when the budget refuses. */
  append(c: Buffer): boolean {
    this.lastDataAt = Date.now();
    const need = this.size + c.length;
    const grow = this.growthFor(c.length);
    if (grow > 0) {
      const have = this.buf?.length ?? 0;
      const want = have + grow;
      if (!this.budget.take(this, grow, this.lastDataAt)) return false;
      const next = Buffer.allocUnsafeSlow(want);
      if (this.buf) {
        this.buf.copy(next, 0, 0, this.size);
        free(this.buf);
      }
      this.buf = next;
    }
    c.copy(this.buf!, this.size);
    this.size = need;
    return true;
  }

  /** The body received (valid until `release`). */
  bytes(): Buffer {
    return this.buf ? this.buf.subarray(0, this.size) : Buffer.alloc(0);
  }

  /** Frees the buffer and gives its bytes back to the budget. Safe to call more than once. */
  release(): void {
    this.displaceable = false;
    if (this.buf) free(this.buf);
    this.buf = undefined;
    this.size = 0;
    this.budget.release(this);
  }
}

/** The request's 'error' listener (see readBody). */
const ignoreError = (): void => {};

/** Reads `req`'s body into `hold` within `o`'s bounds; the bytes stay held until `hold.release()`. */
export function readBody(req: IncomingMessage, hold: BodyHold, o: BodyReadOptions): Promise<BodyOutcome> {
  return new Promise<BodyOutcome>((resolve) => {
    if (req.destroyed) {
      // Gone before we started reading (e.g. during an earlier await).
      hold.release();
      resolve({ kind: 'gone' });
      return;
    }
    new BodyRead(req, hold, o, resolve).start();
  });
}

/** One body being read: its listeners, its idle deadline, and its waits for room in the budget. */
class BodyRead {
  private readonly req: IncomingMessage;
  private readonly hold: BodyHold;
  private readonly o: BodyReadOptions;
  private readonly resolve: (out: BodyOutcome) => void;
  private settled = false;
  private idle: NodeJS.Timeout | undefined;
  /** Time (ms) this request has waited for room so far. */
  private waitedMs = 0;

  constructor(req: IncomingMessage, hold: BodyHold, o: BodyReadOptions, resolve: (out: BodyOutcome) => void) {
    this.req = req;
    this.hold = hold;
    this.o = o;
    this.resolve = resolve;
  }

  start(): void {
    const { req } = this;
    this.armIdle();
    this.hold.onDisplace = () =>
      this.refuse(503, 'displaced by smaller requests while the server is short of memory; retry later');
    req.on('data', this.onData);
    req.on('end', this.onEnd);
    req.on('close', this.onClose);
    // The client half-closed (FIN) before the body was complete: it will send nothing more.
    req.socket.on('end', this.onClose);
    // An 'error' (ECONNRESET "aborted") is followed by 'close'; a listener keeps it from throwing.
    // A function of its own: a closure made here would keep this read alive as long as the
    // request (and a request waiting for the bus lives long enough to be promoted).
    req.on('error', ignoreError);
  }

  private finish(out: BodyOutcome): void {
    if (this.settled) return;
    this.settled = true;
    const { req, hold } = this;
    clearTimeout(this.idle);
    req.off('data', this.onData);
    req.off('end', this.onEnd);
    req.off('close', this.onClose);
    req.socket.off('end', this.onClose);
    hold.displaceable = false;
    hold.onDisplace = undefined;
    this.o.budget.cancelWait(hold);
    if (out.kind !== 'complete') {
      hold.release();
      // Read nothing more: the answer goes out and the connection is cut (exchange.ts).
      req.socket.pause();
    }
    this.resolve(out);
  }

  private refuse(status: 400 | 408 | 413 | 503, message: string): void {
    this.finish({ kind: 'refused', status, message });
  }

  private armIdle(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.refuse(408, `no body data for ${this.o.idleMs} ms`), this.o.idleMs);
    this.idle.unref();
  }

  private readonly onData = (c: Buffer) => {
    if (this.settled) return;
    const { hold, o } = this;
    noteBodyBytes(c.length);
    if (hold.length + c.length > o.max) return this.refuse(413, `body larger than ${o.max} bytes`);
    const bad = o.check?.feed(c);
    if (bad) return this.refuse(bad.status, bad.message);
    if (hold.append(c)) {
      this.idle?.refresh();
      return;
    }
    this.waitForRoom(c);
  };

  /**
   * A body that does not fit waits for room, reading nothing more meanwhile (backpressure: the
   * client's bytes stay in the network), for at most the idle time: then 503 + Retry-After rather
   * than a client left hanging until the request deadline. It is refused at once when too many
   * bytes wait already. The idle time bounds the request's waits *together*: a large body may not
   * fit several times over, and a client must still have its answer within about the idle time.
   */
  private waitForRoom(c: Buffer) {
    const { req, hold, o } = this;
    if (!o.budget.canWait(c.length)) return this.refuse(503, BUDGET_FULL);
    const left = o.idleMs - this.waitedMs;
    if (left <= 0) return this.refuse(503, BUDGET_FULL);
    req.pause();
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.refuse(503, BUDGET_FULL), left);
    this.idle.unref();
    const waitFrom = Date.now();
    const retry = () => {
      if (this.settled) return;
      if (!hold.append(c)) return o.budget.wait(hold, hold.growthFor(c.length), c.length, retry);
      this.waitedMs += Date.now() - waitFrom;
      this.armIdle();
      req.resume();
    };
    o.budget.wait(hold, hold.growthFor(c.length), c.length, retry);
  }

  private readonly onEnd = (): void => this.finish({ kind: 'complete', raw: this.hold.bytes() });

  /** `close` before `end`: the client aborted (FIN mid-body, RST) or the socket was destroyed. */
  private readonly onClose = (): void =>
    this.finish(this.req.complete ? { kind: 'complete', raw: this.hold.bytes() } : { kind: 'gone' });
}
