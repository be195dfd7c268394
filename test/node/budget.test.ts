// The share object's in-flight byte budget (worker/budget.ts) on its own:
// what fits is granted at once, the rest waits its turn in arrival order,
// tryAcquire keeps headroom and never jumps the queue, and a release is
// counted once however often it is called.

import { describe, expect, it } from "vitest";
import { ByteBudget } from "../../worker/budget.ts";

/** Lets queued grants (promise callbacks) run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

/** An acquire whose grant is observed: `got` turns to the release function. */
function watch(b: ByteBudget, n: number, signal?: AbortSignal) {
  const w = { got: null as (() => void) | null, error: null as unknown };
  const p = b.acquire(n, signal).then(
    (release) => (w.got = release),
    (e) => (w.error = e),
  );
  return Object.assign(w, { p });
}

describe("ByteBudget", () => {
  it("grants what fits at once and gives it back on release", async () => {
    const b = new ByteBudget(100);
    const r1 = await b.acquire(60);
    const r2 = await b.acquire(40);
    expect(b.inUse, "both fit exactly").toBe(100);
    r1();
    expect(b.inUse, "after the first release").toBe(40);
    r2();
    expect(b.inUse, "after both releases").toBe(0);
  });

  it("counts a release once, however often it is called", async () => {
    const b = new ByteBudget(100);
    const r1 = await b.acquire(30);
    const r2 = await b.acquire(30);
    r1();
    r1();
    r1();
    expect(b.inUse, "a second call of the same release gives nothing back again").toBe(30);
    r2();
    expect(b.inUse).toBe(0);
  });

  it("makes a request that does not fit wait, and grants waiters first come, first served", async () => {
    const b = new ByteBudget(100);
    const first = await b.acquire(90);
    const big = watch(b, 50);
    const small = watch(b, 5); // would fit now, but must not pass the one before it
    await settle();
    expect(big.got, "50 bytes do not fit beside 90").toBeNull();
    expect(small.got, "a later small request waits behind the earlier large one").toBeNull();
    expect(b.inUse).toBe(90);
    first();
    await settle();
    expect(big.got, "granted once the 90 are back").not.toBeNull();
    expect(small.got, "granted with it: both fit").not.toBeNull();
    expect(b.inUse).toBe(55);
  });

  it("grants waiters in order only while the head fits", async () => {
    const b = new ByteBudget(100);
    const hold = await b.acquire(100);
    const a = watch(b, 70);
    const c = watch(b, 40);
    const d = watch(b, 10);
    hold();
    await settle();
    expect([a.got !== null, c.got !== null, d.got !== null], "70 fits; 40 does not beside it, and 10 waits behind 40").toEqual([true, false, false]);
    a.got!();
    await settle();
    expect([c.got !== null, d.got !== null]).toEqual([true, true]);
    expect(b.inUse).toBe(50);
  });

  it("never holds more than its limit while requests come and go", async () => {
    const b = new ByteBudget(1000);
    let x = 7;
    const rand = (n: number) => ((x = (x * 1103515245 + 12345) % 2 ** 31), x % n);
    const held: (() => void)[] = [];
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      if (held.length && rand(3) === 0) held.splice(rand(held.length), 1)[0]!();
      else pending.push(b.acquire(1 + rand(400)).then((r) => held.push(r)));
      await settle();
      expect(b.inUse, `step ${i}`).toBeLessThanOrEqual(1000);
    }
    for (;;) {
      const r = held.pop();
      if (!r) break;
      r();
      await settle();
      expect(b.inUse).toBeLessThanOrEqual(1000);
    }
    await Promise.all(pending);
    for (const r of held.splice(0)) r();
    expect(b.inUse, "everything given back").toBe(0);
    expect(b.highWater).toBeLessThanOrEqual(1000);
  });

  it("lets a request larger than the whole budget run alone, once the budget is empty", async () => {
    const b = new ByteBudget(100);
    const r1 = await b.acquire(10);
    const huge = watch(b, 250);
    await settle();
    expect(huge.got, "waits while anything is held").toBeNull();
    r1();
    await settle();
    expect(huge.got, "granted on an empty budget").not.toBeNull();
    expect(b.inUse).toBe(250);
    const after = watch(b, 1);
    await settle();
    expect(after.got, "nothing more while the oversized one runs").toBeNull();
    huge.got!();
    await settle();
    expect(after.got).not.toBeNull();
    // And one that arrives with nothing held is granted at once.
    after.got!();
    const alone = await b.acquire(500);
    expect(b.inUse).toBe(500);
    alone();
  });

  it("tryAcquire takes only what fits with its headroom to spare, and never passes a waiter", async () => {
    const b = new ByteBudget(100);
    const r = b.tryAcquire(60, 20);
    expect(r, "60 + 20 headroom fit in 100").not.toBeNull();
    expect(b.tryAcquire(30, 20), "60 + 30 + 20 > 100").toBeNull();
    const small = b.tryAcquire(20, 20);
    expect(small, "60 + 20 + 20 = 100 fits").not.toBeNull();
    expect(b.inUse).toBe(80);
    const waiter = watch(b, 30);
    await settle();
    expect(waiter.got).toBeNull();
    expect(b.tryAcquire(1), "somebody waits: even a byte is refused").toBeNull();
    small!();
    await settle();
    expect(waiter.got, "the waiter, not a tryAcquire, took the freed room").not.toBeNull();
    r!();
    waiter.got!();
    expect(b.inUse).toBe(0);
  });

  it("force takes bytes past the limit, and waiters wait until they are back", async () => {
    const b = new ByteBudget(100);
    const f = b.force(150);
    expect(b.inUse).toBe(150);
    const w = watch(b, 10);
    await settle();
    expect(w.got).toBeNull();
    f();
    await settle();
    expect(w.got).not.toBeNull();
  });

  it("keeps the high-water mark of bytes held at once", async () => {
    const b = new ByteBudget(100);
    expect(b.highWater).toBe(0);
    const r1 = await b.acquire(30);
    const r2 = await b.acquire(50);
    r1();
    r2();
    const r3 = await b.acquire(60);
    expect(b.highWater, "30 + 50 were held at once; 60 alone is less").toBe(80);
    r3();
    expect(b.inUse).toBe(0);
    expect(b.highWater).toBe(80);
  });

  it("drops an aborted waiter and lets the ones behind it through", async () => {
    const b = new ByteBudget(100);
    const hold = await b.acquire(80);
    const ctl = new AbortController();
    const big = watch(b, 50, ctl.signal);
    const small = watch(b, 20);
    await settle();
    expect(small.got, "queued behind the big one").toBeNull();
    ctl.abort(new Error("flushed"));
    await settle();
    expect((big.error as Error).message).toBe("flushed");
    expect(small.got, "20 fit beside 80 once the big one left the queue").not.toBeNull();
    expect(b.inUse).toBe(100);
    hold();
    small.got!();
    expect(b.inUse).toBe(0);
    // An already-aborted signal is refused without taking anything.
    await expect(b.acquire(1, AbortSignal.abort(new Error("late")))).rejects.toThrow("late");
    expect(b.inUse).toBe(0);
  });
});
