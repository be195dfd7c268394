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

/** How far ahead of the clock its persisted bound moves (ShareClock). */
const CLOCK_RESERVE_NS = 1_000_000_000n;

/**
 * A share's clock: a time later than any this share handed out before.
 * What survives a restart is a bound above every time handed out (meta
 * clock_ns), moved a second ahead when the clock reaches it: one row write
 * a second of changes rather than one per change (two per small-file
 * create). A restart then starts from the bound, so times handed out in the
 * second after a restart may run up to a second ahead of the wall clock,
 * and never repeat or go back.
 */
export class ShareClock {
  private readonly clock: Clock;
  private bound: bigint;

  constructor(private readonly persisted: { get(): string | null; set(v: string): void }) {
    this.bound = BigInt(persisted.get() ?? "0");
    this.clock = new Clock(this.bound);
  }

  tick(): Timespec {
    const t = this.clock.tick();
    if (this.clock.lastNs >= this.bound) {
      this.bound = this.clock.lastNs + CLOCK_RESERVE_NS;
      this.persisted.set(this.bound.toString());
    }
    return t;
  }
}
