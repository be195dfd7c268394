// The guest's fids as a caching bridge sees them (docs/leases.md, "What a
// bridge answers itself"). A real fid is one the gateway holds under the same
// number. A virtual fid is one the bridge made up for a Twalk it answered
// from its cache: the gateway has never seen it, and it is remembered as its
// nearest real ancestor (a gateway fid) and the names walked from there, so
// that a Twalk from that ancestor makes it real when the guest uses it for
// anything the cache cannot answer.
//
// A real fid that virtual fids lean on is not clunked at the gateway when the
// guest clunks it (clunk(5) lets the guest reuse the number at once): the
// guest's number is freed, the gateway's fid is kept as a "zombie" until its
// last leaner is clunked or made real, and a guest request that names the
// zombie's number first has it resolved (leaners made real, then clunked).

import type { Qid } from "../protocol/index.ts";

/** A fid the gateway holds (its number at the gateway is the key it is kept under). */
export interface RealFid {
  kind: "real";
  /** qid.path as decimal (the leases' form), or null when not a file's (an xattr fid, not known). */
  ino: string | null;
  /** Virtual fids whose ancestor this is. */
  leaners: number;
  /** The guest clunked it and its number is the guest's again; kept for its leaners. */
  zombie: boolean;
  /** Opened (Rlopen): a Treaddir of it is one the gateway would answer. */
  open: boolean;
}

/** One name of a virtual fid's walk: looked up in `dir`, it gave `ino`. */
export interface Step {
  dir: string;
  name: string;
  ino: string;
}

export interface VirtualFid {
  kind: "virtual";
  /** The gateway fid it is walked from. */
  base: number;
  names: string[];
  /** What each name resolved to, from the base on (names.length of them). */
  steps: Step[];
  ino: string;
  /**
   * Its names no longer lead to its inode (a change the bridge could not
   * make it real before: another client's): requests that cross on it get
   * ESTALE, as a file handle whose file went (the 9P client treats it so).
   */
  stale: boolean;
}

export type GuestFid = RealFid | VirtualFid;

export const inoOf = (q: Qid): string => q.path.toString();

export class FidTable {
  /** The guest's fids by the guest's number. */
  private readonly guest = new Map<number, GuestFid>();
  /** Gateway fids the guest no longer names (clunked while leaned on). */
  private readonly zombies = new Map<number, RealFid>();

  get(fid: number): GuestFid | undefined {
    return this.guest.get(fid);
  }

  isZombie(fid: number): boolean {
    return this.zombies.has(fid);
  }

  /** The zombie's leaners (guest numbers of the virtual fids walked from it). */
  leanersOf(gw: number): number[] {
    const out: number[] = [];
    for (const [n, f] of this.guest) if (f.kind === "virtual" && f.base === gw) out.push(n);
    return out;
  }

  /** The virtual fids whose walk passes a step `hit` matches (a change to that name or inode is coming). */
  virtualsThrough(hit: (s: Step) => boolean): number[] {
    const out: number[] = [];
    for (const [n, f] of this.guest) if (f.kind === "virtual" && !f.stale && f.steps.some(hit)) out.push(n);
    return out;
  }

  /** The gateway fid record a virtual fid's base names. */
  private baseRec(gw: number): RealFid | undefined {
    const z = this.zombies.get(gw);
    if (z) return z;
    const g = this.guest.get(gw);
    return g?.kind === "real" ? g : undefined;
  }

  /** A reply made `fid` a real fid of this inode (Rattach, Rwalk, Rxattrwalk, Rlcreate). */
  setReal(fid: number, ino: string | null): void {
    const old = this.guest.get(fid);
    if (old?.kind === "real") {
      old.ino = ino;
      return;
    }
    if (old) this.unlean(old);
    this.guest.set(fid, { kind: "real", ino, leaners: 0, zombie: false, open: false });
  }

  /**
   * A Twalk answered from the cache: `newfid` is virtual, walked `names`
   * from `from` (real or virtual).
   */
  setVirtual(newfid: number, from: number, names: string[], steps: Step[], ino: string): void {
    const f = this.guest.get(from)!;
    const base = f.kind === "real" ? from : f.base;
    const all = f.kind === "real" ? names : [...f.names, ...names];
    const allSteps = f.kind === "real" ? steps : [...f.steps, ...steps];
    const rec = this.baseRec(base)!;
    rec.leaners++;
    const old = this.guest.get(newfid);
    if (old) this.unlean(old);
    this.guest.set(newfid, { kind: "virtual", base, names: all, steps: allSteps, ino, stale: f.kind === "virtual" && f.stale });
  }

  /**
   * The guest clunked `fid` (or it is gone by Tremove or an error): returns
   * a gateway fid number whose last leaner this was, to be clunked there.
   * For a real fid with leaners, returns "deferred": the gateway keeps it.
   */
  clunk(fid: number): { deferred: boolean; release: number | null } {
    const f = this.guest.get(fid);
    if (!f) return { deferred: false, release: null };
    this.guest.delete(fid);
    if (f.kind === "real") {
      if (f.leaners === 0) return { deferred: false, release: null };
      f.zombie = true;
      this.zombies.set(fid, f);
      return { deferred: true, release: null };
    }
    return { deferred: false, release: this.unlean(f) };
  }

  /** A virtual fid was made real (the gateway now holds it under its number). */
  madeReal(fid: number): number | null {
    const f = this.guest.get(fid);
    if (f?.kind !== "virtual") return null;
    this.guest.set(fid, { kind: "real", ino: f.ino, leaners: 0, zombie: false, open: false });
    return this.unlean(f);
  }

  /** Rlopen: the fid is open. */
  opened(fid: number): void {
    const f = this.guest.get(fid);
    if (f?.kind === "real") f.open = true;
  }

  /** A zombie's clunk was sent: the gateway's number is free. */
  buried(gw: number): void {
    this.zombies.delete(gw);
  }

  /** Tversion: every fid is gone (version(5)). */
  clear(): void {
    this.guest.clear();
    this.zombies.clear();
  }

  /** Drops a virtual fid's hold on its base; returns the base when it is a zombie left with none. */
  private unlean(f: GuestFid): number | null {
    if (f.kind !== "virtual") return null;
    const rec = this.baseRec(f.base);
    if (!rec) return null;
    rec.leaners--;
    return rec.zombie && rec.leaners === 0 ? f.base : null;
  }
}
