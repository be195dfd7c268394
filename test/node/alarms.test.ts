// The share object's one alarm (worker/alarms.ts): the next wake-up is the
// earliest deadline of any concern, the deadlines of idle and unresumed
// sessions, the time the alarm is set for; and the clock's multiplexing
// (set only when earlier, concerns run in order when it fires).

import { describe, expect, it } from "vitest";
import { type AlarmConcern, AlarmClock, alarmTime, idleDeadline, nextWakeup, resumeDeadline } from "../../worker/alarms.ts";

const quiet = { info: () => {}, error: () => {} };

describe("nextWakeup", () => {
  it("is null when no concern has a deadline", () => {
    expect(nextWakeup([])).toBeNull();
    expect(nextWakeup([null, null, null])).toBeNull();
  });

  it("is the earliest deadline, wherever it stands and whatever is null", () => {
    expect(nextWakeup([5])).toBe(5);
    expect(nextWakeup([30, null, 10, 20])).toBe(10);
    expect(nextWakeup([null, 7, 7])).toBe(7);
    expect(nextWakeup([0, 100])).toBe(0);
  });

  it("agrees with the minimum of the non-null deadlines", () => {
    let x = 12345;
    const next = () => ((x = (x * 1103515245 + 12345) % 2 ** 31), x);
    for (let i = 0; i < 200; i++) {
      const ds = Array.from({ length: next() % 6 }, () => (next() % 3 === 0 ? null : next() % 1_000_000));
      const present = ds.filter((d): d is number => d !== null);
      expect(nextWakeup(ds)).toBe(present.length ? Math.min(...present) : null);
    }
  });
});

describe("deadlines", () => {
  it("idle sessions: none without a timeout or an active session; a second past the timeout otherwise", () => {
    expect(idleDeadline(1000, 0)).toBeNull();
    expect(idleDeadline(null, 60_000)).toBeNull();
    expect(idleDeadline(1000, 60_000)).toBe(62_000);
  });

  it("unresumed sessions: none when none waits; just past the window otherwise", () => {
    expect(resumeDeadline(null, 300_000)).toBeNull();
    expect(resumeDeadline(1000, 300_000)).toBe(301_001);
  });
});

describe("alarmTime", () => {
  it("sets nothing without a deadline", () => {
    expect(alarmTime(null, null, 100)).toBeNull();
  });

  it("never sets the alarm in the past", () => {
    expect(alarmTime(50, null, 100)).toBe(101);
    expect(alarmTime(500, null, 100)).toBe(500);
  });

  it("leaves an alarm set for earlier (or the same time) alone, and moves a later one", () => {
    expect(alarmTime(500, 400, 100)).toBeNull();
    expect(alarmTime(500, 500, 100)).toBeNull();
    expect(alarmTime(500, 600, 100)).toBe(500);
  });
});

describe("AlarmClock", () => {
  function clock(concerns: AlarmConcern[], epoch = () => 0, wakeBy?: () => number) {
    const sets: number[] = [];
    let set: number | null = null;
    const storage = {
      getAlarm: async () => set,
      setAlarm: async (at: number) => {
        set = at;
        sets.push(at);
      },
    };
    const pending: Promise<unknown>[] = [];
    const c = new AlarmClock(storage, (p) => pending.push(p), epoch, concerns, quiet, wakeBy);
    return { c, sets, pending };
  }

  it("sets the alarm for the earliest concern, once per epoch", async () => {
    const far = Date.now() + 3_600_000;
    const { c, sets } = clock([
      { deadline: () => far + 10, due: () => {} },
      { deadline: () => null, due: () => {} },
      { deadline: () => far, due: () => {} },
    ]);
    await c.schedule();
    expect(sets).toEqual([far]);
    await c.schedule(); // the epoch did not move: nothing to look at
    c.reconsider();
    await c.schedule(); // looked at again, but the alarm is set for that time already
    expect(sets).toEqual([far]);
  });

  it("runs every concern's due work in order when it fires, then re-arms", async () => {
    const ran: string[] = [];
    const far = Date.now() + 3_600_000;
    const { c, sets } = clock([
      { deadline: () => null, due: () => void ran.push("idle") },
      { deadline: () => null, due: () => void ran.push("unresumed") },
      {
        deadline: () => far,
        due: async () => {
          await Promise.resolve();
          ran.push("publisher");
        },
      },
    ]);
    await c.fire();
    expect(ran).toEqual(["idle", "unresumed", "publisher"]);
    expect(sets).toEqual([far]);
  });

  it("changed() re-arms only when the epoch moved", async () => {
    let epoch = 0;
    const { c, pending } = clock([{ deadline: () => null, due: () => {} }], () => epoch);
    await c.schedule();
    c.changed();
    expect(pending).toHaveLength(0);
    epoch = 1;
    c.changed();
    expect(pending).toHaveLength(1);
    await Promise.all(pending);
  });

  it("changed() after a move the alarm set already comes before looks at no deadline", async () => {
    const far = Date.now() + 3_600_000;
    let epoch = 0;
    let by = Infinity;
    let looks = 0;
    let deadline = far;
    const { c, sets, pending } = clock(
      [
        {
          deadline: () => {
            looks++;
            return deadline;
          },
          due: () => {},
        },
      ],
      () => epoch,
      () => {
        const t = by;
        by = Infinity;
        return t;
      },
    );
    await c.schedule();
    expect([sets, looks]).toEqual([[far], 1]);
    // A create scheduled later than the alarm (publish_delay_ms after it).
    epoch = 1;
    by = far + 2000;
    c.changed();
    expect([pending.length, looks]).toEqual([0, 1]);
    // One scheduled sooner: looked at, and the alarm moves.
    epoch = 2;
    by = deadline = far - 1000;
    c.changed();
    await Promise.all(pending);
    expect([sets, looks]).toEqual([[far, far - 1000], 2]);
    // A move that does not say when: looked at.
    epoch = 3;
    by = -Infinity;
    c.changed();
    await Promise.all(pending);
    expect(looks).toBe(3);
  });
});
