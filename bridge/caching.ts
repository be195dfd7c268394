// edge9p bridge --cache: one guest connection's requests, answered from the
// lease cache when it can (docs/leases.md, "What a bridge answers itself"),
// forwarded otherwise. It sits between the guest's framer and the bridge's
// forwarding (which numbers what crosses for a resume: bridge/outstanding.ts);
// a request answered here never reaches it, and a request the bridge makes
// itself (the Twalk that makes a virtual fid real, a deferred clunk) crosses
// like any other and has its reply consumed here, never seen by the guest.
//
// Order: guest requests are handled one at a time in arrival order. While a
// bridge-made request is out, the following guest requests wait: the gateway
// runs one session's requests concurrently (worker/session.ts), so a request
// that depends on a fid the bridge is making real must not be sent before
// the Rwalk that made it, and the bridge's tags must not meet the guest's.
// Everything from the gateway (grants, recalls, replies) is applied in the
// order it arrives (rule 3).

import {
  ERRNO,
  LEASE_RENEW,
  LEASE_RENEWED,
  type LeaseMessage,
  type Message,
  type MessageInit,
  type Msg,
  NOTAG,
  decode,
  encode,
  leaseText,
  parseLease,
} from "../protocol/index.ts";
import { FidTable, type Step, inoOf } from "./fids.ts";
import { type CacheBounds, DEFAULT_BOUNDS, LeaseCache } from "./lease-cache.ts";
import { changedBy, namesChangedBy } from "./changes.ts";
import { type Sent, latin1, learn, plain } from "./learn.ts";

const L = "9P2000.L";
const bytes = (s: string) => Buffer.from(s, "latin1");

/** What the caching layer needs of the bridge's connection. */
export interface Wire {
  /** Sends a request to the gateway (counted and kept for a resume). */
  forward(m: Uint8Array): void;
  /** Writes a reply to the guest. */
  toGuest(m: Uint8Array): void;
  /** Sends a lease message (text) to the gateway on the current socket. */
  sendText(t: string): void;
}

export interface CacheStats {
  /** Requests answered by the cache, by type. */
  answered: Record<string, number>;
  /** Requests the bridge made itself (they crossed). */
  made: number;
  /** Leases released because of the cache's bounds (inodes). */
  released: number;
  /** Leases held now (all connections). */
  held: number;
}


export class CachingSession {
  readonly cache: LeaseCache;
  private readonly fids = new FidTable();
  /** Forwarded guest requests without a reply, by tag. */
  private readonly sent = new Map<number, Sent>();
  /** Tags of forwarded guest requests that did not decode (the gateway answers them): not for the bridge's own. */
  private readonly opaque = new Set<number>();
  /** Bridge-made requests without a reply, by tag. */
  private readonly made = new Map<number, { at: number; seq: number; resolve: (m: Message) => void }>();
  /** Requests forwarded so far (guest's and the bridge's): a request's `seq` is its place in that order. */
  private seq = 0;
  /**
   * Inodes released, by the `seq` of the last request forwarded before the
   * release: a grant of one with the reply to a request at or before it is
   * not trusted (docs/leases.md, "What a bridge answers itself"). Forgotten
   * once every request forwarded before it has been answered.
   */
  private readonly releasedAt = new Map<string, number>();
  /** Grants that arrived for replies not yet here, by tag (the grant precedes its reply). */
  private readonly grants = new Map<number, string[]>();
  /** Guest requests waiting their turn. */
  private readonly queue: Uint8Array[] = [];
  private running = false;
  /** Set once Rversion named 9P2000.L; before, and for other versions, everything passes. */
  private dotl = false;
  /** The lease term (ms) the upgrade's answer gave; null: the gateway grants none. */
  private termMs: number | null = null;
  /** A renew on its way, sent at this time (one at a time, answered FIFO). */
  private renewAt: number | null = null;
  private renewTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly wire: Wire,
    private readonly stats: CacheStats,
    bounds: CacheBounds = DEFAULT_BOUNDS,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.cache = new LeaseCache(bounds, (q) => {
      this.stats.released += q.length;
      this.releasing(q);
    });
  }

  /** A socket opened: `term` is its upgrade's X-Edge9p-Leases answer (null: none). */
  opened(term: number | null): void {
    this.termMs = term;
    this.lost();
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
    // Renew a few times a term (rule 4), so a lease never runs out while held.
    if (term !== null) this.renewTimer = setInterval(() => this.renew(), Math.max(50, term / 3));
    this.renewTimer?.unref();
  }

  /** Release marks kept now (a test's view of their bound). */
  get releaseMarks(): number {
    return this.releasedAt.size;
  }

  /**
   * Sends a release of `q`, marked with the last request forwarded before
   * it. The gateway handles a session's requests concurrently: one forwarded
   * before the release may have had its grant of the inode noted and sent
   * before the gateway read the release, which then dropped it. The socket
   * keeps order and the gateway applies a text as it arrives, so a request
   * forwarded after the release was read after it: its grant stands.
   */
  private releasing(q: string[]): void {
    // With nothing in flight no grant can be ambiguous: no mark is needed.
    if (this.sent.size > 0 || this.made.size > 0) for (const ino of q) this.releasedAt.set(ino, this.seq);
    this.wire.sendText(leaseText({ lease: "release", q }));
  }

  /**
   * The inodes of a grant that came with the reply to the request forwarded
   * at `seq` that the bridge may trust. One it released after that request
   * went is ambiguous (granted before or after the gateway read the
   * release?) and is not cached; it is released again, so that the gateway
   * does not count a lease the bridge does not use (rule 6): nothing is
   * cached from it, so that release loses nothing.
   */
  private trusted(q: string[], seq: number): string[] {
    const out: string[] = [];
    const again: string[] = [];
    for (const ino of q) {
      const mark = this.releasedAt.get(ino);
      if (mark === undefined || seq > mark) out.push(ino);
      else if (!this.cache.holds(ino)) again.push(ino);
    }
    if (again.length) this.releasing(again);
    return out;
  }

  /** Forgets release marks no request in flight was forwarded before (the bookkeeping stays bounded). */
  private forgetMarks(): void {
    if (this.releasedAt.size === 0) return;
    let oldest = Infinity;
    for (const s of this.sent.values()) oldest = Math.min(oldest, s.seq);
    for (const m of this.made.values()) oldest = Math.min(oldest, m.seq);
    for (const [ino, mark] of this.releasedAt) if (mark < oldest) this.releasedAt.delete(ino);
  }

  /** The socket went: every lease goes with it (rule 5); the fids stay, the resume keeps them. */
  lost(): void {
    this.cache.clear();
    this.grants.clear();
    // The next socket starts with no leases: nothing it grants answers an old release.
    this.releasedAt.clear();
    this.renewAt = null;
  }

  close(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
  }

  private renew(): void {
    if (this.renewAt !== null || !this.cache.holdsAny()) return;
    this.renewAt = this.now();
    this.wire.sendText(LEASE_RENEW);
  }

  /** A text message from the gateway that is about leases; false when it is not one. */
  text(t: string): boolean {
    if (t === LEASE_RENEWED) {
      if (this.renewAt !== null && this.termMs !== null) this.cache.renewed(this.renewAt + this.termMs);
      this.renewAt = null;
      return true;
    }
    let m: LeaseMessage;
    try {
      m = parseLease(t);
    } catch {
      return false;
    }
    if (m.lease === "grant") this.grants.set(m.tag, m.q);
    else if (m.lease === "recall") {
      // Drop first, then ack (rule 1: the change waits for the ack).
      if (m.all) this.cache.clear();
      else this.cache.recall(m.q!);
      this.wire.sendText(leaseText({ lease: "ack", n: m.n }));
    }
    return true;
  }

  /** A request from the guest. */
  request(m: Uint8Array): void {
    this.queue.push(m);
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        const m = this.queue.shift()!;
        try {
          await this.handle(m);
        } catch {
          // A bug here must not lose the request (nor crash the bridge): it crosses as it came.
          this.wire.forward(m);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** A reply from the gateway (already matched to a request); false: the guest must not see it. */
  reply(m: Uint8Array): boolean {
    let r: Message | null = null;
    try {
      r = decode(m, L);
    } catch {
      // Not ours to judge: the guest gets it as it came.
    }
    const tag = m[5]! | (m[6]! << 8);
    const given = this.grants.get(tag) ?? [];
    this.grants.delete(tag);
    const made = this.made.get(tag);
    if (made) {
      this.made.delete(tag);
      this.lease(this.trusted(given, made.seq), made.at);
      this.forgetMarks();
      // A reply that does not decode fails the bridge's request (its caller answers the guest).
      made.resolve(r ?? ({ type: "Rlerror", tag, ecode: ERRNO.EPROTO } as Message));
      return false;
    }
    const s = this.sent.get(tag);
    this.sent.delete(tag);
    this.opaque.delete(tag);
    const granted = s ? this.trusted(given, s.seq) : [];
    this.forgetMarks();
    if (r?.type === "Rversion") {
      this.dotl = new TextDecoder().decode(r.version) === L;
      return true;
    }
    if (!s || !r) return true;
    this.lease(granted, s.at);
    if (r.type === "Rflush" && s.req.type === "Tflush") this.sent.delete(s.req.oldtag);
    learn(this.fids, this.cache, s, r, new Set(granted), this.now());
    return true;
  }

  private lease(q: string[], at: number): void {
    if (this.termMs === null) return;
    for (const ino of q) this.cache.grant(ino, at + this.termMs);
  }

  /** The inode a guest fid names, if known. */
  private inoOfFid(fid: number): string | null {
    const f = this.fids.get(fid);
    return f ? f.ino : null;
  }

  /** Answers the guest's request `t` here, counted by its type (Bridge.stats). */
  private answer(t: Message, m: MessageInit): void {
    this.stats.answered[t.type] = (this.stats.answered[t.type] ?? 0) + 1;
    this.wire.toGuest(encode({ ...m, tag: t.tag } as MessageInit, L));
  }

  private async handle(m: Uint8Array): Promise<void> {
    let t: Message;
    try {
      t = decode(m, L);
    } catch {
      return this.pass(m, null);
    }
    if (t.type === "Tversion") {
      // version(5): a new session; nothing from the old one holds.
      this.fids.clear();
      this.cache.clear();
      this.sent.clear();
      this.opaque.clear();
      this.grants.clear();
      this.releasedAt.clear();
      this.dotl = false;
      return this.pass(m, t);
    }
    if (!this.dotl || this.termMs === null) return this.pass(m, t);
    const done = this.local(t);
    if (done !== false) return done === true ? undefined : done;
    const failed = await this.prepare(t);
    // The fid the request names could not be made real: its names lead
    // nowhere or elsewhere now; answered as a handle whose file went.
    if (failed !== null) return this.answer(t, { type: "Rlerror", tag: t.tag, ecode: failed });
    for (const ino of changedBy(t, (f) => this.inoOfFid(f), (d, n) => this.nameIno(d, n))) this.cache.recall([ino]);
    this.pass(m, t);
  }

  private nameIno(dirFid: number, name: Uint8Array): string | null {
    const d = this.inoOfFid(dirFid);
    const q = d === null ? undefined : this.cache.name(d, latin1(name), this.now());
    return q ? inoOf(q) : null;
  }

  private pass(m: Uint8Array, t: Message | null): void {
    if (!t) this.opaque.add(m[5]! | (m[6]! << 8));
    if (t && t.type !== "Tversion") {
      const fid = "fid" in t ? (t.fid as number) : "dfid" in t ? (t.dfid as number) : null;
      this.sent.set(t.tag, { req: t, at: this.now(), seq: this.seq + 1, ino: fid === null ? null : this.inoOfFid(fid) });
    }
    this.seq++;
    this.wire.forward(m);
  }

  /** Answers `t` from the cache when it can; true (or what to wait for) when it did. */
  private local(t: Message): boolean | Promise<void> {
    const now = this.now();
    switch (t.type) {
      case "Tgetattr": {
        const ino = this.inoOfFid(t.fid);
        const a = ino === null ? null : this.cache.attrs(ino, t.request_mask, now);
        if (!a) return false;
        this.answer(t, a);
        return true;
      }
      case "Tclunk": {
        const f = this.fids.get(t.fid);
        if (!f) return false;
        if (f.kind === "real" && f.leaners === 0) return false;
        // Virtual: the gateway never saw it. Real with leaners: deferred.
        const { release } = this.fids.clunk(t.fid);
        this.answer(t, { type: "Rclunk", tag: t.tag });
        return release === null ? true : this.bury(release);
      }
      case "Twalk":
        return this.walk(t, now);
      case "Treaddir": {
        // The same offset and count of a listing read under the directory's
        // lease (docs/leases.md: it covers the listing Treaddir returns), on
        // an open fid of it (a Treaddir of an unopened fid is the gateway's error).
        const f = this.fids.get(t.fid);
        const d = f?.kind === "real" && f.open && f.ino !== null ? this.cache.listing(f.ino, t.offset, t.count, now) : null;
        if (!d) return false;
        this.answer(t, { type: "Rreaddir", tag: t.tag, data: d });
        return true;
      }
      default:
        return false;
    }
  }

  /** A Twalk whose every name the cache knows under a lease on each directory. */
  private walk(t: Msg<"Twalk">, now: number): boolean {
    const from = this.fids.get(t.fid);
    if (!from || from.ino === null) return false;
    // Moving a fid (newfid = fid) with names, or onto a number the gateway
    // still holds, is the gateway's to do.
    if (t.newfid === t.fid ? t.wnames.length > 0 : this.fids.get(t.newfid) || this.fids.isZombie(t.newfid)) return false;
    const names = t.wnames.map(latin1);
    if (!names.every(plain)) return false;
    // A clone (nwname 0) says the fid's file is still there, which only a
    // lease on that inode covers (a removed file's fid walks to ESTALE at the gateway).
    if (names.length === 0 && !this.cache.leased(from.ino, now)) return false;
    const qids = [];
    const steps: Step[] = [];
    let dir = from.ino;
    for (const n of names) {
      const q = this.cache.name(dir, n, now);
      if (q === undefined) return false;
      if (q === null) {
        // Absent under the directory's lease: the first name fails the walk,
        // a later one ends it short (walk(5)).
        if (qids.length === 0) this.answer(t, { type: "Rlerror", tag: t.tag, ecode: ERRNO.ENOENT });
        else this.answer(t, { type: "Rwalk", tag: t.tag, qids });
        return true;
      }
      // A directory's lease covers a name's qid.path and type, not the
      // target's version (docs/leases.md, "Precisely"): that comes from a
      // lease on the target itself when one is held.
      const own = this.cache.attrs(inoOf(q), 0n, now);
      qids.push(own ? { ...q, version: own.qid.version } : q);
      steps.push({ dir, name: n, ino: inoOf(q) });
      dir = inoOf(q);
    }
    if (t.newfid !== t.fid) this.fids.setVirtual(t.newfid, t.fid, names, steps, dir);
    this.answer(t, { type: "Rwalk", tag: t.tag, qids });
    return true;
  }

  /**
   * Before `t` crosses: zombies it names are resolved, virtual fids it names
   * are made real, and real fids it would move or end get their leaners
   * made real first, and so do virtual fids walked through a name or inode
   * it removes or moves. Returns the errno to answer the guest's request
   * with when a fid it names cannot be made real, else null.
   */
  private async prepare(t: Message): Promise<number | null> {
    for (const f of fidsOf(t)) {
      if (this.fids.isZombie(f)) await this.resolveZombie(f);
    }
    for (const f of fidsOf(t)) {
      const v = this.fids.get(f);
      if (v?.kind === "virtual" && !(await this.makeReal(f))) return ERRNO.ESTALE;
    }
    const moves = t.type === "Twalk" && t.fid === t.newfid ? [t.fid] : t.type === "Tlcreate" || t.type === "Txattrcreate" || t.type === "Tremove" ? [t.fid] : [];
    for (const f of moves) for (const v of this.fids.leanersOf(f)) await this.makeReal(v);
    // A virtual fid stands for its inode, not for its names: before a name
    // on its walk goes or moves, it becomes real (the gateway's fid follows
    // the inode through renames and unlinks).
    const { names, inos } = namesChangedBy(t, (f) => this.inoOfFid(f));
    if (names.length || inos.length) {
      const hit = (s: Step) => names.some(([d, n]) => d === s.dir && n === s.name) || inos.includes(s.ino);
      for (const v of this.fids.virtualsThrough(hit)) await this.makeReal(v);
    }
    return null;
  }

  /** A bridge-made request crosses; resolves with its reply. */
  private cross(init: MessageInit): Promise<Message> {
    let tag = NOTAG - 1;
    while (this.sent.has(tag) || this.made.has(tag) || this.opaque.has(tag)) tag--;
    const at = this.now();
    this.stats.made++;
    return new Promise((resolve) => {
      this.made.set(tag, { at, seq: ++this.seq, resolve });
      this.wire.forward(encode({ ...init, tag } as MessageInit, L));
    });
  }

  /**
   * Makes virtual fid `v` real: a Twalk from its real ancestor, whose Rwalk
   * the guest never sees. False when its names no longer lead to its inode:
   * it stays virtual and stale (a fid the gateway made for another inode is
   * clunked there).
   */
  private async makeReal(v: number): Promise<boolean> {
    const f = this.fids.get(v);
    if (f?.kind !== "virtual") return true;
    if (f.stale) return false;
    const r = await this.cross({ type: "Twalk", tag: 0, fid: f.base, newfid: v, wnames: f.names.map(bytes) });
    const whole = r.type === "Rwalk" && r.qids.length === f.names.length;
    if (whole && (f.names.length === 0 || inoOf(r.qids.at(-1)!) === f.ino)) {
      const release = this.fids.madeReal(v);
      if (release !== null) await this.bury(release);
      return true;
    }
    f.stale = true;
    if (whole) await this.cross({ type: "Tclunk", tag: 0, fid: v });
    return false;
  }

  /** A guest request names a zombie's number: its leaners become real, then the gateway clunks it. */
  private async resolveZombie(z: number): Promise<void> {
    for (const v of this.fids.leanersOf(z)) await this.makeReal(v);
    if (this.fids.isZombie(z)) await this.bury(z);
  }

  /** The deferred clunk of a zombie that nothing leans on any more. */
  private async bury(z: number): Promise<void> {
    this.fids.buried(z);
    await this.cross({ type: "Tclunk", tag: 0, fid: z });
  }
}

const FID_FIELDS = ["fid", "newfid", "dfid", "afid", "olddirfid", "newdirfid", "dirfid"] as const;

/** Every fid a request names. */
function fidsOf(t: Message): number[] {
  const out: number[] = [];
  const rec = t as unknown as Record<string, unknown>;
  for (const k of FID_FIELDS) if (typeof rec[k] === "number" && rec[k] !== 0xffffffff) out.push(rec[k] as number);
  return out;
}
