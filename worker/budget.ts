// The in-flight byte budget of a share's object: bytes the object holds for
// its clients. A large reply takes its room before it is allocated and gives
// it back once its client has read it (worker/outbox.ts: workerd keeps sent
// bytes queued until the peer reads them, and shows none of it); a publish
// holds its part while it uploads; xattr buffers hold theirs until their fid
// goes. With all of it bounded here, the object stays within the 128 MB an
// isolate has.

export class ByteBudget {
  private used = 0;
  private peak = 0;
  private readonly waiting: { n: number; grant: () => void }[] = [];

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  /** The most bytes held at once since the object started. */
  get highWater(): number {
    return this.peak;
  }

  /**
   * Waits until `n` bytes fit (first come, first served) and returns the
   * function that gives them back. A request larger than the whole budget
   * waits for an empty budget and then runs alone.
   */
  acquire(n: number, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.waiting.length === 0 && this.fits(n)) return Promise.resolve(this.take(n));
    return new Promise((resolve, reject) => {
      const entry = {
        n,
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve(this.take(n));
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
        this.wake();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  /**
   * Takes `n` bytes now if they fit with `headroom` to spare and nobody
   * waits; null otherwise. For long-lived holds that must not starve replies.
   */
  tryAcquire(n: number, headroom = 0): (() => void) | null {
    if (this.waiting.length > 0 || this.used + n + headroom > this.limit) return null;
    return this.take(n);
  }

  /** Takes `n` bytes whether or not they fit: for what is already in memory (state restored from SQLite). */
  force(n: number): () => void {
    return this.take(n);
  }

  private fits(n: number): boolean {
    return this.used === 0 || this.used + n <= this.limit;
  }

  private take(n: number): () => void {
    this.used += n;
    if (this.used > this.peak) this.peak = this.used;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.used -= n;
      this.wake();
    };
  }

  private wake(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.n)) this.waiting.shift()!.grant();
  }
}
