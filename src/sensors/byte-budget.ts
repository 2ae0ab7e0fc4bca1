// Bounds the bytes of events being handled at once (decoded, matched, fired), so a burst of large
// events cannot blow up the Sensor's heap: a message waits for room before it is decoded. A message
// larger than the whole budget is admitted alone. Waiting holds the consumer slot, so pulling stops
// (backpressure, not buffering).

export class ByteBudget {
  readonly limit: number;
  private used = 0;
  private readonly waiting: Array<{ bytes: number; go: () => void }> = [];

  constructor(limitBytes: number) {
    this.limit = limitBytes;
  }

  /** Takes `bytes`; undefined when granted at once, else a promise that resolves when granted. */
  acquire(bytes: number): Promise<void> | undefined {
    if (!this.waiting.length && this.fits(bytes)) {
      this.used += bytes;
      return undefined;
    }
    return new Promise((go) => this.waiting.push({ bytes, go }));
  }

  release(bytes: number): void {
    this.used -= bytes;
    while (this.waiting.length && this.fits(this.waiting[0]!.bytes)) {
      const next = this.waiting.shift()!;
      this.used += next.bytes;
      next.go();
    }
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.limit;
  }
}
