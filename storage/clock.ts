// Times for mtime/ctime that strictly increase on every change. Date.now()
// has millisecond resolution and stands still during one event in Workers,
// so two changes in one event would otherwise share a time (docs/9p.md);
// `make` and editors compare mtimes.

import type { Timespec } from "./types.ts";

export class Clock {
  private last = 0n;

  constructor(
    /** The last time handed out before a restart, in ns (never go back to it). */
    since = 0n,
    private readonly now: () => number = Date.now,
  ) {
    this.last = since;
  }

  /** A time later than every time this clock gave before. */
  tick(): Timespec {
    const wall = BigInt(this.now()) * 1_000_000n;
    this.last = wall > this.last ? wall : this.last + 1n;
    return { sec: Number(this.last / 1_000_000_000n), nsec: Number(this.last % 1_000_000_000n) };
  }

  get lastNs(): bigint {
    return this.last;
  }
}
