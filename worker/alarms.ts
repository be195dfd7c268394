// The share object's one alarm. A Durable Object has a single alarm
// (docs/platform.md), so every concern that must wake the object later (the
// publisher and its jobs, idle sessions, sessions waiting to be resumed)
// gives its earliest deadline, the alarm is set for the earliest of them,
// and when it fires each concern runs what is due.

import type { Log } from "./log.ts";

/** One thing that wakes the object: when it is next due, and what runs then. */
export interface AlarmConcern {
  /** The earliest time (ms since the epoch) this concern has something due, or null. */
  deadline(): number | null;
  /** Runs what is due. May run more than once for one time: it must be idempotent. */
  due(): void | Promise<void>;
}

/** The earliest of the concerns' deadlines, or null when none has one. */
export function nextWakeup(deadlines: readonly (number | null)[]): number | null {
  let next: number | null = null;
  for (const d of deadlines) if (d !== null && (next === null || d < next)) next = d;
  return next;
}

/**
 * When the oldest session idle past EDGE9P.idle_timeout_ms (`idleMs`, 0 for
 * never) is due to be closed: a second late, so that the alarm finds it
 * idle past the limit rather than just short of it.
 */
export function idleDeadline(oldestActive: number | null, idleMs: number): number | null {
  return idleMs > 0 && oldestActive !== null ? oldestActive + idleMs + 1000 : null;
}

/** When the session that has waited longest for its client has waited out the resume window. */
export function resumeDeadline(oldestDetached: number | null, windowMs: number): number | null {
  return oldestDetached !== null ? oldestDetached + windowMs + 1 : null;
}

/**
 * The time to set the alarm for, given the earliest deadline `next`, the
 * alarm already set (`set`, null for none) and the time now; null when the
 * alarm set already comes first (an early alarm finds nothing due and sets
 * the next). An alarm is never set in the past: it would not fire.
 */
export function alarmTime(next: number | null, set: number | null, now: number): number | null {
  if (next === null) return null;
  const at = Math.max(next, now + 1);
  return set !== null && set <= at ? null : at;
}

/** The storage calls the clock makes (DurableObjectStorage's alarm methods). */
export interface AlarmStorage {
  getAlarm(): Promise<number | null>;
  setAlarm(at: number): Promise<void>;
}

/** Sets the one alarm for the earliest concern and runs the concerns when it fires. */
export class AlarmClock {
  /** When the one alarm is set for (ms), as far as this instance knows. */
  private alarmAt: number | null = null;
  /** The publisher's epoch when the alarm was last considered. */
  private alarmEpoch = -1;

  /**
   * `epoch` moves whenever the publisher schedules something (storage/publisher.ts):
   * while it stands still and nothing else asked, there is nothing to re-arm.
   * `wakeBy` says by when the moves since it was last called need the alarm
   * (-Infinity: unknown): one the alarm is set for already is no reason to
   * look at every concern's deadline (three queries; a create makes one).
   */
  constructor(
    private readonly storage: AlarmStorage,
    private readonly waitUntil: (p: Promise<unknown>) => void,
    private readonly epoch: () => number,
    private readonly concerns: readonly AlarmConcern[],
    private readonly log: Log,
    private readonly wakeBy: () => number = () => -Infinity,
  ) {}

  /** Considers the deadlines again at the next schedule, even if the epoch did not move. */
  reconsider(): void {
    this.alarmEpoch = -1;
  }

  /** Re-arms the alarm in the background (the object stays alive for it). */
  soon(): void {
    this.waitUntil(this.schedule());
  }

  /** After a request: most schedule nothing, so the async work is skipped unless the epoch moved. */
  changed(): void {
    const epoch = this.epoch();
    if (epoch === this.alarmEpoch) return;
    if (this.alarmAt !== null && this.alarmAt <= this.wakeBy()) {
      this.alarmEpoch = epoch; // the alarm comes first already
      return;
    }
    this.soon();
  }

  /** Sets the alarm for the earliest thing due, if it is not set for earlier already. */
  async schedule(): Promise<void> {
    try {
      await this.arm();
    } catch (e) {
      // The object is going away (a restart): the next start re-arms it.
      this.log.error(`ShareObject.scheduleAlarm: ${(e as Error).message}`);
    }
  }

  private async arm(): Promise<void> {
    const epoch = this.epoch();
    if (epoch === this.alarmEpoch) return; // nothing was scheduled since the last look
    this.alarmEpoch = epoch;
    this.wakeBy(); // looked at in full now: forget the moves
    const next = nextWakeup(this.concerns.map((c) => c.deadline()));
    if (next === null) return;
    if (this.alarmAt === null) this.alarmAt = await this.storage.getAlarm();
    const at = alarmTime(next, this.alarmAt, Date.now());
    if (at === null) return;
    this.alarmAt = at;
    await this.storage.setAlarm(at);
  }

  /** The alarm fired: runs each concern's due work in order, then sets the next alarm. */
  async fire(): Promise<void> {
    this.alarmAt = null;
    this.alarmEpoch = -1;
    try {
      for (const c of this.concerns) {
        // Awaited only when it returns a promise: the synchronous concerns run back to back.
        const p = c.due();
        if (p) await p;
      }
    } catch (e) {
      this.log.error(`ShareObject.alarm: ${(e as Error).stack ?? e}`);
    }
    this.alarmAt = null;
    this.alarmEpoch = -1;
    await this.schedule();
  }
}
