// An ordered set of byte ranges that finds the ones touching a range in
// O(log n + k) (k: the ones it reports), whatever else it holds: a treap
// ordered by (start, id), each node knowing the greatest end below it
// (the augmented tree of Cormen et al., "Introduction to Algorithms" 14.3).
// Locks use it so that a lock among many unrelated ones costs no scan.

export interface Span {
  /** Unique among the items of one tree; orders items with one start. */
  readonly id: number;
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
}

interface Node<T extends Span> {
  item: T;
  /** Heap order on random priorities keeps the tree balanced, expected. */
  prio: number;
  left: Node<T> | null;
  right: Node<T> | null;
  /** The greatest end in this subtree. */
  maxEnd: number;
}

const before = (a: Span, b: Span) => a.start < b.start || (a.start === b.start && a.id < b.id);

function fix<T extends Span>(n: Node<T>): Node<T> {
  n.maxEnd = Math.max(n.item.end, n.left?.maxEnd ?? -Infinity, n.right?.maxEnd ?? -Infinity);
  return n;
}

/** Splits a subtree into the items ordered before `key` and the others. */
function split<T extends Span>(n: Node<T> | null, key: Span): [Node<T> | null, Node<T> | null] {
  if (!n) return [null, null];
  if (before(n.item, key)) {
    const [l, r] = split(n.right, key);
    n.right = l;
    return [fix(n), r];
  }
  const [l, r] = split(n.left, key);
  n.left = r;
  return [l, fix(n)];
}

/** Joins two subtrees, every item of `a` ordered before every item of `b`. */
function join<T extends Span>(a: Node<T> | null, b: Node<T> | null): Node<T> | null {
  if (!a) return b;
  if (!b) return a;
  if (a.prio > b.prio) {
    a.right = join(a.right, b);
    return fix(a);
  }
  b.left = join(a, b.left);
  return fix(b);
}

function insert<T extends Span>(n: Node<T> | null, add: Node<T>): Node<T> {
  if (!n) return add;
  if (add.prio > n.prio) {
    [add.left, add.right] = split(n, add.item);
    return fix(add);
  }
  if (before(add.item, n.item)) n.left = insert(n.left, add);
  else n.right = insert(n.right, add);
  return fix(n);
}

/** Removes the item with `item`'s id (found by its start); `gone` learns whether it was there. */
function remove<T extends Span>(n: Node<T> | null, item: Span, gone: { found: boolean }): Node<T> | null {
  if (!n) return null;
  if (n.item.id === item.id) {
    gone.found = true;
    return join(n.left, n.right);
  }
  if (before(item, n.item)) n.left = remove(n.left, item, gone);
  else n.right = remove(n.right, item, gone);
  return fix(n);
}

/** Calls `f` on the items with start <= hi and end >= lo, in order, until it returns true. */
function visit<T extends Span>(n: Node<T> | null, lo: number, hi: number, f: (item: T) => boolean | void): boolean {
  if (!n || n.maxEnd < lo) return false;
  if (visit(n.left, lo, hi, f)) return true;
  // Everything to the right starts at or after this item.
  if (n.item.start > hi) return false;
  if (n.item.end >= lo && f(n.item)) return true;
  return visit(n.right, lo, hi, f);
}

export class IntervalTree<T extends Span> {
  private root: Node<T> | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(item: T): void {
    this.root = insert(this.root, { item, prio: Math.random(), left: null, right: null, maxEnd: item.end });
    this.count++;
  }

  /** Removes an item (the one with its id and start); false if it was not there. */
  delete(item: Span): boolean {
    const gone = { found: false };
    this.root = remove(this.root, item, gone);
    if (gone.found) this.count--;
    return gone.found;
  }

  /**
   * The items that overlap or touch [lo, hi]: start <= hi and end >= lo,
   * so ranges that end at lo or start at hi are included (neighbours that
   * may merge). Stops when `f` returns true; returns whether it did.
   */
  touching(lo: number, hi: number, f: (item: T) => boolean | void): boolean {
    return visit(this.root, lo, hi, f);
  }

  *[Symbol.iterator](): IterableIterator<T> {
    const stack: Node<T>[] = [];
    let n = this.root;
    while (n || stack.length) {
      while (n) {
        stack.push(n);
        n = n.left;
      }
      const top = stack.pop()!;
      yield top.item;
      n = top.right;
    }
  }
}
