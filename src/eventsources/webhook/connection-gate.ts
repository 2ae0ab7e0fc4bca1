// The bound on open client connections of a process over all its webhook ports. At the bound, a new
// connection takes the place of the oldest one that has no request in progress (still sending its
// header section, or idle between requests) instead of being refused, so a flood of silent or
// trickling connections cannot keep new clients out; only when every open connection has a
// request in progress is the new one closed at once.

/** Open connections after which a drain to zero counts as the end of a flood. */
const MANY_CONNECTIONS = 1_000;

/** A connection as the gate sees it. */
export interface GateSocket {
  destroy(): void;
}

/**
 * Counts open connections of the process over all webhook ports; at the bound, evicts the oldest
 * connection with no request in progress to admit a new one (see the header). The server says
 * when a request starts (`busy`) and when its answer is done (`idle`).
 */
export class ConnectionGate {
  readonly capacity: number;
  /** Connections with no request in progress, oldest first (a Set keeps insertion order). */
  private readonly idleSet = new Set<GateSocket>();
  /** Connections with requests in progress, and how many. */
  private readonly busyMap = new Map<GateSocket, number>();
  private refusedCount = 0;
  private evictedCount = 0;
  private wasBusy = false;
  /** Called when the count drops to zero after a thousand or more were open (see server.ts). */
  onDrained: (() => void) | undefined;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get current(): number {
    return this.idleSet.size + this.busyMap.size;
  }

  /** Connections refused at the bound (every one had a request in progress). */
  get refused(): number {
    return this.refusedCount;
  }

  /** Idle or header-phase connections closed to admit new ones. */
  get evicted(): number {
    return this.evictedCount;
  }

  /** True when `s` may stay open (then `leave(s)` when it closes). */
  enter(s: GateSocket): boolean {
    if (this.current >= this.capacity) {
      const oldest = this.idleSet.values().next();
      if (oldest.done) {
        this.refusedCount++;
        return false;
      }
      this.idleSet.delete(oldest.value);
      this.evictedCount++;
      oldest.value.destroy();
    }
    this.idleSet.add(s);
    if (this.current >= MANY_CONNECTIONS) this.wasBusy = true;
    return true;
  }

  /** A request started on `s`: it is not evicted until its answer is done. */
  busy(s: GateSocket): void {
    const n = this.busyMap.get(s);
    if (n !== undefined) this.busyMap.set(s, n + 1);
    else if (this.idleSet.delete(s)) this.busyMap.set(s, 1);
  }

  /** A request on `s` is done; with none left it is idle again (the newest idle one). */
  idle(s: GateSocket): void {
    const n = this.busyMap.get(s);
    if (n === undefined) return;
    if (n > 1) this.busyMap.set(s, n - 1);
    else {
      this.busyMap.delete(s);
      this.idleSet.add(s);
    }
  }

  leave(s: GateSocket): void {
    if (!this.idleSet.delete(s) && !this.busyMap.delete(s)) return;
    if (this.current === 0 && this.wasBusy) {
      this.wasBusy = false;
      this.onDrained?.();
    }
  }
}
