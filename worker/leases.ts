// The share object's lease table (docs/leases.md): which socket holds a
// lease on which inode, the grants a request in flight will send with its
// reply, the recalls sent and not yet acknowledged, and the waits a change's
// reply makes for them. In memory only: a hibernation or a restart loses it,
// which rule 5 answers (woke: every lease socket is taken to hold everything).
//
// A change is seen in storage (Namespace.onChange, called synchronously
// inside the request that changes), so the request that made it is found
// from the async context, as worker/sql-meter.ts finds it: its own socket's
// recall goes out before its reply and is not waited for (rule 1), every
// other holder's is, until acked or the holder's term runs out (rule 4).

import { AsyncLocalStorage } from "node:async_hooks";
import { type LeaseMessage, LEASE_RENEW, LEASE_RENEWED, leaseText, parseLease } from "../protocol/leases.ts";

export interface LeaseOptions {
  /** How long a lease holds without a renew (EDGE9P.lease_term_ms). */
  termMs: number;
  /** Leases one socket may hold (EDGE9P.lease_max_per_session). */
  maxPerSocket: number;
}

/** A socket that negotiated leases, as the table sees it. */
export interface LeaseSocket {
  /** The socket's key (its session and generation: worker/sockets.ts). */
  readonly key: string;
  /** Sends a text message on the socket, in order with its replies. */
  send(text: string): void;
  /** When the platform last auto-answered this socket's renew (ms), if it did. */
  renewedAt(): number | null;
}

export interface LeaseStats {
  /** Inodes granted (one grant message may name several). */
  grants: number;
  /** Recall messages sent. */
  recalls: number;
  /** Acks received that answered a recall. */
  acks: number;
  /** Recalls given up on because the holder's term ran out unacked (rule 4). */
  voidByTerm: number;
  /** Leases held now, over every socket. */
  held: number;
  /** Releases received (inodes). */
  released: number;
  /** Replies that waited for another socket's ack, and the milliseconds they waited in all. */
  recallWaits: number;
  recallWaitMs: number;
}

interface Holder {
  sock: LeaseSocket;
  inos: Set<number>;
  /** When this socket was last granted anything (ms): its term runs from the later of this and its last renew. */
  grantedAt: number;
  /** The last recall number sent. */
  n: number;
  /** Recalls sent and not acked, by number. */
  pending: Map<number, Recall>;
  /**
   * Its term ran out on a recall unacked (rule 4): it was sent `recall all`
   * and gets no grant until it acks that (or a later) recall.
   */
  voidedAt: number | null;
}

interface Recall {
  holder: Holder;
  n: number;
  /** The inodes it recalled; null for `all` (rule 5, or a void). */
  inos: number[] | null;
  /** Resolved when acked, voided, or the holder goes. */
  done: Promise<void>;
  settle: () => void;
  /** Whether a change waits for it (a void's `recall all` is not waited for). */
  waited: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

/** One request in flight: the grants its reply will carry, the recalls its reply waits for. */
export interface LeaseRequest {
  /** The socket of the request, or null (the files route, a plain socket). */
  readonly holder: string | null;
  /** Inodes to grant with the reply, noted before the request reads them (rule 2). */
  readonly grants: Set<number>;
  /** Recalls of other sockets' leases that its changes made or met. */
  readonly waits: Set<Recall>;
}

export class Leases {
  private readonly holders = new Map<string, Holder>();
  /** ino -> the sockets holding a lease on it. */
  private readonly byIno = new Map<number, Set<Holder>>();
  /** ino -> recalls of it not yet acked: a later change waits for them too (rule 1). */
  private readonly recalling = new Map<number, Set<Recall>>();
  /** `recall all` sent after a wake (rule 5), not yet acked: every change waits for them. */
  private readonly recallingAll = new Set<Recall>();
  /** ino -> requests in flight that noted a grant on it (rule 2: a change strikes it). */
  private readonly noting = new Map<number, Set<LeaseRequest>>();
  private readonly context = new AsyncLocalStorage<LeaseRequest>();
  private readonly counts = { grants: 0, recalls: 0, acks: 0, voidByTerm: 0, released: 0, recallWaits: 0, recallWaitMs: 0 };
  private heldCount = 0;

  constructor(private readonly o: LeaseOptions) {}

  get termMs(): number {
    return this.o.termMs;
  }

  stats(): LeaseStats {
    return { ...this.counts, held: this.heldCount };
  }

  /** A lease socket joins the table (its first grant, a wake). */
  private holderOf(sock: LeaseSocket): Holder {
    let h = this.holders.get(sock.key);
    if (!h) {
      h = { sock, inos: new Set(), grantedAt: 0, n: 0, pending: new Map(), voidedAt: null };
      this.holders.set(sock.key, h);
    }
    return h;
  }

  /**
   * Rule 5: the object woke (hibernation, restart) with these lease sockets
   * open and no memory of what it granted them: each is recalled `all`, and
   * every change waits for those acks (or the term from now).
   */
  woke(socks: LeaseSocket[]): void {
    for (const sock of socks) {
      const h = this.holderOf(sock);
      const r = this.recall(h, null, Date.now() + this.o.termMs, true);
      this.recallingAll.add(r);
    }
  }

  /** Runs a request's work with `req` as its context (changes inside it find it). */
  within<T>(req: LeaseRequest, f: () => T): T {
    return this.context.run(req, f);
  }

  /** A request begins: `holder` is its socket's key when that socket may be granted leases. */
  begin(holder: string | null): LeaseRequest {
    return { holder, grants: new Set(), waits: new Set() };
  }

  /**
   * Notes a grant on `ino` for the current request's reply, before it reads
   * the inode (rule 2). Every request that shows an inode notes it, leases
   * or not: while another socket's recall of it is out, the reply would
   * show a change not every holder has dropped yet, so it waits for that
   * recall too (rule 1 as a client sees it: no one learns of a change
   * before the holders have let go of what it overtook).
   */
  note(req: LeaseRequest, ino: number): void {
    for (const r of this.recalling.get(ino) ?? []) if (r.holder.sock.key !== req.holder) req.waits.add(r);
    if (req.holder === null || req.grants.has(ino)) return;
    req.grants.add(ino);
    let s = this.noting.get(ino);
    if (!s) this.noting.set(ino, (s = new Set()));
    s.add(req);
  }

  /** Takes back a noted grant the reply will not stand for (a walk cut short by other than ENOENT). */
  strike(req: LeaseRequest, ino: number): void {
    if (!req.grants.delete(ino)) return;
    const s = this.noting.get(ino);
    s?.delete(req);
    if (s?.size === 0) this.noting.delete(ino);
  }

  /**
   * The request's reply goes now: the grant text to send just before it,
   * or null. Past the socket's bound (rule 6) only inodes it already holds
   * are granted again; a socket voided by its term gets none (rule 4).
   */
  grant(req: LeaseRequest, sock: LeaseSocket | null, tag: number): string | null {
    const inos = [...req.grants];
    this.unnote(req);
    if (!sock || inos.length === 0) return null;
    const h = this.holderOf(sock);
    if (h.voidedAt !== null) return null;
    const q: string[] = [];
    for (const ino of inos) {
      if (!h.inos.has(ino)) {
        if (h.inos.size >= this.o.maxPerSocket) continue;
        h.inos.add(ino);
        this.heldCount++;
        let s = this.byIno.get(ino);
        if (!s) this.byIno.set(ino, (s = new Set()));
        s.add(h);
      }
      q.push(String(ino));
    }
    if (q.length === 0) return null;
    h.grantedAt = Date.now();
    this.counts.grants += q.length;
    return leaseText({ lease: "grant", tag, q });
  }

  /** The request is over: whatever it noted and did not grant is forgotten. */
  end(req: LeaseRequest): void {
    this.unnote(req);
  }

  private unnote(req: LeaseRequest): void {
    for (const ino of req.grants) {
      const s = this.noting.get(ino);
      if (!s) continue;
      s.delete(req);
      if (s.size === 0) this.noting.delete(ino);
    }
    req.grants.clear();
  }

  /**
   * Inode `ino`'s attributes or entries changed (storage's change callback).
   * Strikes it from every other request's pending grant (rule 2), recalls
   * it from every holder (rule 1): the changing request's own socket gets
   * its recall now, before its reply, unwaited; the others' recalls, and
   * those already out for it or for `all`, are what the changing request's
   * reply waits for.
   *
   * The changing request's own grant stands: a change it makes (a first
   * lookup in a directory imports its R2 listing) comes before it reads
   * what it replies with (each granting handler reads after its own
   * changes: worker/handlers/), so its reply is not stale. Its socket's
   * recall goes out before the grant, and the client applies them in order
   * (rule 3): dropped, then granted anew.
   */
  changed(ino: number): void {
    const req = this.context.getStore() ?? null;
    const noted = this.noting.get(ino);
    if (noted) {
      for (const other of noted) if (other !== req) other.grants.delete(ino);
      if (req && noted.has(req)) this.noting.set(ino, new Set([req]));
      else this.noting.delete(ino);
    }
    const own = req?.holder ?? null;
    const holders = this.byIno.get(ino);
    if (holders) {
      this.byIno.delete(ino);
      for (const h of holders) {
        h.inos.delete(ino);
        this.heldCount--;
        const r = this.recall(h, [ino], this.deadlineOf(h), h.sock.key !== own);
        if (h.pending.has(r.n)) {
          let s = this.recalling.get(ino);
          if (!s) this.recalling.set(ino, (s = new Set()));
          s.add(r);
        }
      }
    }
    if (!req) return;
    for (const r of this.recalling.get(ino) ?? []) if (r.holder.sock.key !== own) req.waits.add(r);
    for (const r of this.recallingAll) if (r.holder.sock.key !== own) req.waits.add(r);
  }

  /** Rule 4: a holder's term runs from its last grant or its last auto-answered renew, whichever is later. */
  private deadlineOf(h: Holder): number {
    return Math.max(h.grantedAt, h.sock.renewedAt() ?? 0) + this.o.termMs;
  }

  /** Sends a recall to `h` (of `inos`, or all), settled by its ack, its deadline or the socket going. */
  private recall(h: Holder, inos: number[] | null, deadline: number, waited: boolean): Recall {
    const n = ++h.n;
    let settle!: () => void;
    const done = new Promise<void>((go) => (settle = go));
    const r: Recall = { holder: h, n, inos, done, settle, waited, timer: null };
    const m: LeaseMessage = inos === null ? { lease: "recall", n, all: true } : { lease: "recall", n, q: inos.map(String) };
    h.sock.send(leaseText(m));
    this.counts.recalls++;
    if (!waited) return r;
    h.pending.set(n, r);
    const left = deadline - Date.now();
    if (left <= 0) {
      this.voidBy(r);
    } else {
      r.timer = setTimeout(() => this.voidBy(r), left);
    }
    return r;
  }

  /** A recall is over (acked, voided, its socket gone): nothing waits for it any more. */
  private finish(r: Recall): void {
    if (r.timer !== null) clearTimeout(r.timer);
    r.timer = null;
    r.holder.pending.delete(r.n);
    this.recallingAll.delete(r);
    for (const ino of r.inos ?? []) {
      const s = this.recalling.get(ino);
      if (!s) continue;
      s.delete(r);
      if (s.size === 0) this.recalling.delete(ino);
    }
    r.settle();
  }

  /**
   * Rule 4: the holder's term ran out with the recall unacked. Its leases
   * are void: all of them are dropped here, and it is sent `recall all`
   * (not waited for: it delays a change once), and granted nothing more
   * until it acks.
   */
  private voidBy(r: Recall): void {
    if (!r.holder.pending.has(r.n)) return;
    this.counts.voidByTerm++;
    const h = r.holder;
    this.finish(r);
    for (const p of [...h.pending.values()]) this.finish(p);
    this.forget(h);
    if (h.voidedAt === null) {
      h.voidedAt = h.n + 1;
      this.recall(h, null, 0, false);
    }
  }

  /** Drops what `h` holds from the table (not its pending recalls). */
  private forget(h: Holder): void {
    for (const ino of h.inos) {
      const s = this.byIno.get(ino);
      if (!s) continue;
      s.delete(h);
      if (s.size === 0) this.byIno.delete(ino);
    }
    this.heldCount -= h.inos.size;
    h.inos.clear();
  }

  /**
   * Waits until every recall `req`'s changes made or met is acked or void
   * (rule 1), without blocking anything else (an await, never a spin).
   */
  async settle(req: LeaseRequest): Promise<void> {
    if (req.waits.size === 0) return;
    const t0 = Date.now();
    await Promise.all([...req.waits].map((r) => r.done));
    req.waits.clear();
    this.counts.recallWaits++;
    this.counts.recallWaitMs += Date.now() - t0;
  }

  /** Runs `f` (the files route's change) as a request of no socket, and waits for its recalls. */
  async changing<T>(f: () => Promise<T>): Promise<T> {
    const req = this.begin(null);
    const out = await this.within(req, f);
    await this.settle(req);
    return out;
  }

  /**
   * A lease text from socket `sock` (which negotiated leases). Returns why
   * the socket must close, or null. A renew the platform did not answer
   * (it answers only the exact text) is answered here.
   */
  message(sock: LeaseSocket, text: string): string | null {
    if (text === LEASE_RENEW) {
      sock.send(LEASE_RENEWED);
      return null;
    }
    let m: LeaseMessage;
    try {
      m = parseLease(text);
    } catch (e) {
      return (e as Error).message;
    }
    const h = this.holders.get(sock.key);
    switch (m.lease) {
      case "ack": {
        if (!h) return null;
        // The client applies recalls in order (rule 3): an ack of n answers every earlier one too.
        for (const r of [...h.pending.values()]) {
          if (r.n > m.n) continue;
          this.counts.acks++;
          this.finish(r);
        }
        if (h.voidedAt !== null && m.n >= h.voidedAt) h.voidedAt = null;
        return null;
      }
      case "release": {
        if (!h) return null;
        for (const q of m.q) {
          const ino = Number(q);
          if (!h.inos.delete(ino)) continue;
          this.heldCount--;
          this.counts.released++;
          const s = this.byIno.get(ino);
          s?.delete(h);
          if (s?.size === 0) this.byIno.delete(ino);
        }
        return null;
      }
      default:
        return `lease: ${m.lease} goes from the gateway to the client, not back`;
    }
  }

  /** The socket is gone (closed, its session ended, replaced by a resume): its leases and recalls go with it (rule 5). */
  drop(key: string): void {
    const h = this.holders.get(key);
    if (!h) return;
    this.holders.delete(key);
    for (const r of [...h.pending.values()]) this.finish(r);
    this.forget(h);
  }
}
