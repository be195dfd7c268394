// The interval tree under the lock table, against a plain list: the same
// items touch a range after any mix of adds and deletes, and a query visits
// few of the items it does not report.

import { describe, expect, it } from "vitest";
import { IntervalTree, type Span } from "../../storage/interval-tree.ts";

/** Deterministic pseudo-random integers in [0, n). */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

const ids = (xs: Span[]) => xs.map((s) => s.id);

describe("IntervalTree", () => {
  it("reports what a list reports, in order, through 20,000 random adds, deletes and queries", () => {
    const r = rng(7);
    const tree = new IntervalTree<Span>();
    const list: Span[] = [];
    let next = 1;
    for (let step = 0; step < 20_000; step++) {
      const op = r(10);
      if (op < 4 || list.length === 0) {
        const start = r(1000);
        const item = { id: next++, start, end: start + 1 + (r(4) === 0 ? r(500) : r(8)) };
        tree.add(item);
        list.push(item);
      } else if (op < 7) {
        const [gone] = list.splice(r(list.length), 1);
        expect(tree.delete(gone!)).toBe(true);
        expect(tree.delete(gone!)).toBe(false);
      } else {
        const lo = r(1100);
        const hi = lo + r(50);
        const want = list
          .filter((s) => s.start <= hi && s.end >= lo)
          .sort((a, b) => a.start - b.start || a.id - b.id);
        const got: Span[] = [];
        tree.touching(lo, hi, (s) => void got.push(s));
        expect(ids(got)).toEqual(ids(want));
        // Stopping early stops at the first.
        let seen = 0;
        expect(tree.touching(lo, hi, () => (seen++, true))).toBe(want.length > 0);
        expect(seen).toBe(want.length > 0 ? 1 : 0);
      }
      expect(tree.size).toBe(list.length);
    }
    expect(ids([...tree])).toEqual(ids([...list].sort((a, b) => a.start - b.start || a.id - b.id)));
  });

  it("finds the ranges touching a point among 100,000 disjoint ones after reading a few dozen", () => {
    let reads = 0;
    class Counted implements Span {
      constructor(
        readonly id: number,
        private readonly at: number,
        readonly end: number,
      ) {}
      get start() {
        reads++;
        return this.at;
      }
    }
    const tree = new IntervalTree<Counted>();
    for (let i = 0; i < 100_000; i++) tree.add(new Counted(i, 2 * i, 2 * i + 1));
    const got: number[] = [];
    reads = 0;
    // [100000, 100001) ends where the query starts: it touches.
    tree.touching(100_001, 100_003, (s) => void got.push(s.id));
    expect(got).toEqual([50_000, 50_001]);
    // A balanced tree of 100,000 is 17 levels deep; a treap's expected depth is a small multiple of that.
    expect(reads).toBeLessThan(300);
  });
});
