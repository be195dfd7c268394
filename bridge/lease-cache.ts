// What a bridge run with --cache knows under the leases the gateway granted
// (docs/leases.md): the leases held with their expiry, each leased inode's
// attributes as Rgetattr gave them, and each leased directory's names as
// walks resolved them (a qid, or absent). Nothing is kept about an inode
// without a lease on it (rule 6), and a lease's end (recall, expiry,
// eviction) drops what it covered.
//
// Bounded by entries (leases plus names) and by bytes; past either the
// least recently used lease goes, and its inode is handed back for a
// `release` (rule 6: the gateway forgets it too).

import type { Msg, Qid } from "../protocol/index.ts";

export type Attrs = Msg<"Rgetattr">;

interface Held {
  /** Past this (ms, the bridge's clock) the lease is void (rule 4). */
  expires: number;
  /** Rgetattr as given, and the mask the request asked (what it answers). */
  attrs: { reply: Attrs; asked: bigint } | null;
  /** A directory's names: the qid a walk of it gave, or null for absent. */
  names: Map<string, Qid | null>;
  /** A directory's Rreaddir data by "offset:count" (the listing its lease covers). */
  listing: Map<string, Uint8Array>;
}

export interface CacheBounds {
  /** Leases plus cached names, at most. */
  entries: number;
  /** Bytes of names and attributes kept, at most (an estimate). */
  bytes: number;
}

export const DEFAULT_BOUNDS: CacheBounds = { entries: 4096, bytes: 4 << 20 };

/** Bytes one attribute reply is counted for (its wire size, about). */
const ATTR_BYTES = 160;
/** Bytes one name entry is counted for besides its name (a qid and the map's share). */
const NAME_BYTES = 48;

export class LeaseCache {
  /** By inode (qid.path as decimal, the grant's form); Map order is recency. */
  private readonly held = new Map<string, Held>();
  private entries = 0;
  private bytes = 0;

  constructor(
    private readonly bounds: CacheBounds = DEFAULT_BOUNDS,
    /** Called with inodes the bound evicted, to be released at the gateway. */
    private readonly release: (inos: string[]) => void = () => {},
  ) {}

  get size(): { leases: number; entries: number; bytes: number } {
    return { leases: this.held.size, entries: this.entries, bytes: this.bytes };
  }

  /** Leases held and not expired at `now`. */
  leased(ino: string, now: number): boolean {
    return this.live(ino, now) !== null;
  }

  /** A lease on `ino` is in the table (expired or not). */
  holds(ino: string): boolean {
    return this.held.has(ino);
  }

  /** Any lease held (the renew timer runs while one is). */
  holdsAny(): boolean {
    return this.held.size > 0;
  }

  /**
   * A grant applies: the lease on `ino` holds until `expires` (from when the
   * request that got it was sent, rule 4); a later grant never shortens it.
   */
  grant(ino: string, expires: number): void {
    const h = this.held.get(ino);
    if (h) {
      h.expires = Math.max(h.expires, expires);
      this.touch(ino, h);
      return;
    }
    this.held.set(ino, { expires, attrs: null, names: new Map(), listing: new Map() });
    this.entries++;
    this.bound();
  }

  /** A renew the gateway answered: every lease held holds until `expires` (rule 4). */
  renewed(expires: number): void {
    for (const h of this.held.values()) h.expires = Math.max(h.expires, expires);
  }

  /** Rgetattr for a leased inode (ignored without a lease: rule 6). */
  putAttrs(ino: string, reply: Attrs, asked: bigint, now: number): void {
    const h = this.live(ino, now);
    if (!h) return;
    if (!h.attrs) this.bytes += ATTR_BYTES;
    h.attrs = { reply, asked };
    this.bound();
  }

  /**
   * The cached Rgetattr if it answers a request for `mask`: every bit asked
   * was either given (valid) or asked of the gateway before, which then
   * answered what it could (getattr: valid may hold fewer bits than asked).
   */
  attrs(ino: string, mask: bigint, now: number): Attrs | null {
    const h = this.live(ino, now);
    if (!h?.attrs) return null;
    if ((mask & ~(h.attrs.reply.valid | h.attrs.asked)) !== 0n) return null;
    this.touch(ino, h);
    return h.attrs.reply;
  }

  /** What a walk of `name` in the leased directory `dir` resolved to (null: absent). */
  putName(dir: string, name: string, qid: Qid | null, now: number): void {
    const h = this.live(dir, now);
    if (!h) return;
    if (!h.names.has(name)) {
      this.entries++;
      this.bytes += NAME_BYTES + name.length;
    }
    h.names.set(name, qid);
    this.bound();
  }

  /** undefined: not known; null: known absent (the directory's lease covers it). */
  name(dir: string, name: string, now: number): Qid | null | undefined {
    const h = this.live(dir, now);
    if (!h) return undefined;
    const q = h.names.get(name);
    if (q !== undefined) this.touch(dir, h);
    return q;
  }

  /** An Rreaddir of the leased directory `dir` at this offset and count. */
  putListing(dir: string, offset: bigint, count: number, data: Uint8Array, now: number): void {
    const h = this.live(dir, now);
    if (!h) return;
    const key = `${offset}:${count}`;
    const old = h.listing.get(key);
    if (old) this.bytes -= old.byteLength + NAME_BYTES;
    else this.entries++;
    h.listing.set(key, data.slice());
    this.bytes += data.byteLength + NAME_BYTES;
    this.bound();
  }

  /** The Rreaddir data a Treaddir of `dir` at this offset and count got under the lease, or null. */
  listing(dir: string, offset: bigint, count: number, now: number): Uint8Array | null {
    const h = this.live(dir, now);
    const d = h?.listing.get(`${offset}:${count}`);
    if (!h || !d) return null;
    this.touch(dir, h);
    return d;
  }

  /**
   * A change the bridge forwards (item 4 of the brief; the gateway's recall
   * follows, rule 1): forget what is cached about `ino` but keep the lease,
   * which still holds until recalled.
   */
  forget(ino: string): void {
    const h = this.held.get(ino);
    if (!h) return;
    this.dropContents(h);
  }

  /** A recall: these inodes' leases and everything they covered go. */
  recall(inos: string[]): void {
    for (const ino of inos) this.drop(ino);
  }

  /** A recall of all, a socket's loss (rule 5), a Tversion: nothing is held. */
  clear(): void {
    this.held.clear();
    this.entries = 0;
    this.bytes = 0;
  }

  private live(ino: string, now: number): Held | null {
    const h = this.held.get(ino);
    if (!h) return null;
    if (h.expires <= now) {
      // Ran out unrenewed (rule 4): the gateway already takes it as void.
      this.drop(ino);
      return null;
    }
    return h;
  }

  private touch(ino: string, h: Held): void {
    this.held.delete(ino);
    this.held.set(ino, h);
  }

  private dropContents(h: Held): void {
    if (h.attrs) this.bytes -= ATTR_BYTES;
    h.attrs = null;
    for (const name of h.names.keys()) this.bytes -= NAME_BYTES + name.length;
    this.entries -= h.names.size;
    h.names.clear();
    for (const d of h.listing.values()) this.bytes -= d.byteLength + NAME_BYTES;
    this.entries -= h.listing.size;
    h.listing.clear();
  }

  private drop(ino: string): void {
    const h = this.held.get(ino);
    if (!h) return;
    this.dropContents(h);
    this.held.delete(ino);
    this.entries--;
  }

  /** Evicts the least recently used leases past a bound, and releases them (rule 6). */
  private bound(): void {
    const evicted: string[] = [];
    while ((this.entries > this.bounds.entries || this.bytes > this.bounds.bytes) && this.held.size > 0) {
      const ino = this.held.keys().next().value!;
      this.drop(ino);
      evicted.push(ino);
    }
    if (evicted.length) this.release(evicted);
  }
}
