// One 9P session per WebSocket: negotiated version and msize, the fid table,
// the requests in flight. Requests run concurrently and reply in any order;
// handlers interleave at every await, so they re-check state after each one.
//
// What is written to SQLite, and when (worker/session-store.ts). In
// production a reply that follows a storage write waits until the write is
// durable (the output gate), so a session writes only what it could not do
// without:
// - A plain session's fids are written in a batch after a burst (the
//   object's flush, within FLUSH_MS of the first change), and only those
//   still changed then: a walk and its clunk inside one burst write
//   nothing. The object cannot hibernate while the flush is pending (a
//   pending timer keeps it awake: docs/platform.md), so the fids are in
//   SQLite whenever its memory goes that way. A restart (deploy, crash)
//   closes every socket, which ends a plain session anyway: what it had not
//   written is what would be released at once; the object settles what those
//   fids held when it starts (ShareFs.settleLostFids).
// - A resumable session outlives a restart, so its fids are written before
//   the reply (the client may use a fid as soon as its Rwalk arrives), as
//   are its numbered requests' replies (a replay must get the same one).
//   Its request numbers and the kept replies its client has seen are
//   written in the batch: a restart is followed by a resume, whose hello
//   says the numbers again, and a stale kept reply is never sent (its
//   number is never replayed once its tag was used again).

import {
  type Dialect,
  ERRNO,
  FramingError,
  HEADER_SIZE,
  type Message,
  type MessageInit,
  MessageError,
  type Msg,
  NOTAG,
  P9Error,
  P9_IOHDRSZ,
  PLATFORM_MSIZE_CEILING,
  alignedIounit,
  decode,
  isNumbered,
  type ResumeHello,
  encode,
  errorReply,
  format,
  matchVersion,
  negotiate,
  parseAck,
  parseResumeHello,
} from "../protocol/index.ts";
import { isLeaseText } from "../protocol/leases.ts";
import type { ShareFs } from "../storage/share-fs.ts";
import type { ByteBudget } from "./budget.ts";
import { CLOSE } from "./close-codes.ts";
import type { LeaseRequest, LeaseSocket, Leases } from "./leases.ts";
import type { Outbox, Ticket } from "./outbox.ts";
import type { FidState, SessionStore } from "./session-store.ts";
import type { KeptReply } from "./session-types.ts";

/** What a handler answers: a message to encode, or one already encoded. */
export type HandlerReply = MessageInit | Uint8Array;

export interface RequestContext {
  /** Aborted when the request is flushed (or the session ends). */
  readonly signal: AbortSignal;
  /**
   * Takes room for a reply of up to `n` bytes: in the socket's window and the
   * object's budget, held until the client has read the reply
   * (worker/outbox.ts). Requests whose replies may be large call it first.
   */
  reserve(n: number): Promise<void>;
  /**
   * Notes a lease on inode `ino` for the reply (docs/leases.md), before the
   * handler reads what it will reply about it (rule 2): granted only if the
   * socket negotiated leases and the session speaks 9P2000.L, but on any
   * session the reply waits for recalls of `ino` still out.
   */
  lease(ino: number): void;
  /** Takes back a noted lease the reply does not stand for. */
  unlease(ino: number): void;
  /**
   * The error the handler throws next still carries its noted grants: a
   * Twalk's Rlerror ENOENT says the name is absent, which the directory's
   * lease covers (docs/leases.md). Other errors carry none.
   */
  grantWithError(): void;
}

export type Handler<N extends Message["type"]> = (s: Session, m: Msg<N>, ctx: RequestContext) => HandlerReply | Promise<HandlerReply>;
export type HandlerTable = { [N in Message["type"]]?: Handler<N> };

export interface SessionLimits {
  msizeCap: number;
  capSource: string;
  iounit: "zero" | "aligned";
  readOnly: boolean;
  /** Fids the session may hold (EMFILE beyond). */
  maxFids: number;
  /** Requests in flight at once (EAGAIN beyond). */
  maxInflight: number;
  /** Fids all sessions of the share may hold (ENFILE beyond). */
  maxShareFids: number;
  /** Bytes of xattr buffers the session may hold (ENOSPC/ENOMEM beyond). */
  maxXattrBytes: number;
  /** Sessions idle this long are closed (0 = never). */
  idleTimeoutMs: number;
}

/** What a session needs from the object that holds it. */
export interface SessionHost {
  readonly fs: ShareFs;
  readonly store: SessionStore;
  readonly budget: ByteBudget;
  readonly limits: SessionLimits;
  readonly handlers: HandlerTable;
  /** The socket's sending side: what it sent, and what its client has read. */
  readonly outbox: Outbox;
  close(code: number, reason: string): void;
  log(msg: string): void;
  /** Called after each request: the object re-arms its alarm for the publisher. */
  changed(): void;
  /** The session has state to write in a batch: the object calls writeBatch() within FLUSH_MS. */
  deferFlush(): void;
  /** The share's lease table, when the share grants leases. */
  readonly leases: Leases | null;
  /** This socket as a lease holder, when it negotiated leases. */
  readonly leaseSocket: LeaseSocket | null;
}

/** The replies that carry grants (docs/leases.md, "The messages"). */
const GRANTING = new Set(["Tgetattr", "Twalk", "Treaddir"]);

/** How long after a plain session's first unwritten change its fids are written (ms). */
export const FLUSH_MS = 1000;

interface InFlight {
  readonly ctl: AbortController;
  done: Promise<void>;
}

export class Session {
  dialect: Dialect | null = null;
  msize = 0;
  private readonly fids = new Map<number, FidState>();
  /** Fids that have a row in SQLite (as of the last write). */
  private readonly persisted = new Set<number>();
  /** Fids whose row differs from memory, to write in the next batch (plain sessions). */
  private readonly dirty = new Set<number>();
  /** Tags whose kept reply's row is to go in the next batch (resumable sessions). */
  private readonly seenTags = new Set<number>();
  /** The request number in the session's row. */
  private seqWritten = 0;
  private readonly inflight = new Map<number, InFlight>();
  private closed = false;
  /** When the session's activity was last written down (ms). */
  private touched = 0;
  /** Whether the client may resume it on a new socket (then the fields below apply). */
  resumable = false;
  /** The number of the last numbered request received. */
  private lastSeq = 0;
  /** Replies of numbered requests by tag, until the tag is used again. */
  private readonly kept = new Map<number, KeptReply>();
  /**
   * A resume's replays still to come: how many, the numbered ones' numbers,
   * and the tags of the requests that were running when the hello came
   * (they answer on the new socket themselves, so their replays are skipped).
   */
  private replaying: { left: number; seqs: number[]; running: Set<number> } | null = null;
  /** Resumed, and the hello that must come first has not yet. */
  private awaitingHello = false;
  /**
   * Requests that reached the object before the hello, in arrival order; the
   * hello lets them go. The client sends the hello first, but workerd may hand
   * the object a new socket's first binary message before its first text one
   * (seen in about 1 resume in 6 on a loaded machine), so they wait for it
   * rather than end the session. At most maxInflight wait.
   */
  private beforeHello: Array<(run: boolean) => void> = [];
  /** The socket is gone and the client may come back: replies are kept, not sent. */
  private detached = false;

  private constructor(
    readonly sid: string,
    public host: SessionHost,
  ) {}

  /** A new session for a new socket; `secretHash` makes it resumable. */
  static start(sid: string, host: SessionHost, secretHash: string | null = null): Session {
    host.store.create(sid, secretHash);
    const s = new Session(sid, host);
    s.resumable = secretHash !== null;
    return s;
  }

  /** The session of a socket whose object hibernated: state comes back from SQLite. */
  static restore(sid: string, host: SessionHost): Session | null {
    const rec = host.store.load(sid);
    if (!rec) return null;
    const s = new Session(sid, host);
    s.dialect = rec.dialect;
    s.msize = rec.msize;
    s.resumable = rec.resumable;
    s.lastSeq = rec.seq;
    s.seqWritten = rec.seq;
    s.detached = rec.detachedAt !== null;
    // Counted already (SessionStore.fidTotal, the open counts): they have rows.
    for (const f of host.store.fids(sid)) {
      s.fids.set(f.fid, f);
      s.persisted.add(f.fid);
      if (f.data) s.holdBuffer(f, true);
    }
    for (const [tag, r] of host.store.keptReplies(sid)) s.kept.set(tag, r);
    return s;
  }

  /** The socket is gone but the client may resume: requests run on, replies are kept. */
  detach(): void {
    this.detached = true;
    this.releaseEarly(false);
  }

  /**
   * The client is back on a new socket (`host` sends on it). The hello says
   * how many replays follow and the numbers of the numbered ones.
   */
  resume(host: SessionHost): void {
    this.releaseEarly(false);
    this.host = host;
    this.replaying = null;
    this.detached = true;
    // Detached until the hello: a reply finished before it is dropped
    // (or kept), and the replay that follows answers for it, exactly once.
    this.awaitingHello = true;
  }

  /** A text message: an ack of a mark ("9p.ack"), or the hello that opens a resumed connection. */
  text(message: string): void {
    const nonce = parseAck(message);
    // An ack of no mark of this socket (one sent before a resume) changes nothing.
    if (nonce !== null) return void this.host.outbox.ack(nonce);
    if (isLeaseText(message)) return this.leaseText(message);
    if (!this.resumable) return this.end(CLOSE.UNSUPPORTED, "9P messages are binary WebSocket messages");
    try {
      this.hello(parseResumeHello(message));
    } catch (e) {
      this.end(CLOSE.PROTOCOL, (e as Error).message);
    }
  }

  /** A lease message: only from a socket that negotiated leases; a malformed one closes it, saying why. */
  private leaseText(message: string): void {
    const { leases, leaseSocket } = this.host;
    if (!leases || !leaseSocket) {
      return this.end(CLOSE.UNSUPPORTED, "lease messages need X-Edge9p-Leases: 1 on the upgrade (and a gateway that grants leases)");
    }
    const why = leases.message(leaseSocket, message);
    if (why !== null) this.end(CLOSE.PROTOCOL, why);
  }

  /** The resume's text message. */
  private hello(h: ResumeHello): void {
    if (!this.awaitingHello) return this.end(CLOSE.PROTOCOL, "resume: a hello only opens a resumed connection");
    this.awaitingHello = false;
    this.detached = false;
    this.replaying = h.replay > 0 ? { left: h.replay, seqs: [...h.seqs], running: new Set(this.inflight.keys()) } : null;
    this.lastSeq = h.next - 1;
    this.host.deferFlush();
    this.releaseEarly(true);
  }

  /**
   * Lets the requests that came before the hello run, in the order they came
   * (`run`), or drops them: their socket is gone, and a client that resumes
   * again sends them again.
   */
  private releaseEarly(run: boolean): void {
    const early = this.beforeHello;
    this.beforeHello = [];
    for (const go of early) go(run);
  }

  /**
   * Numbers a resumable session's message. Returns the request's number (0
   * for one that may run again), or null when it needs no work: a replay of
   * a request that is still running (it answers when done) or whose kept
   * reply was just sent again.
   */
  private sequence(bytes: Uint8Array): number | null {
    const type = bytes[4]!;
    const tag = bytes[5]! | (bytes[6]! << 8);
    const numbered = isNumbered(type);
    if (this.replaying) {
      const r = this.replaying;
      if (--r.left === 0) this.replaying = null;
      const seq = numbered ? (r.seqs.shift() ?? 0) : 0;
      if (this.inflight.has(tag) || r.running.has(tag)) return null;
      const kept = this.kept.get(tag);
      if (seq > 0 && kept?.seq === seq) {
        if (!this.detached) this.host.outbox.send(tag, kept.bytes);
        return null;
      }
      this.seen(tag);
      return seq;
    }
    // A tag used again: the client saw the reply kept for it.
    this.seen(tag);
    return numbered ? ++this.lastSeq : 0;
  }

  private seen(tag: number): void {
    if (!this.kept.has(tag)) return;
    this.kept.delete(tag);
    this.seenTags.add(tag);
    this.host.deferFlush();
  }

  /**
   * Writes what waits for the batch: a plain session's changed fids, a
   * resumable session's request number and the rows of the replies its
   * client has seen. Nothing once the session ended (its rows are gone).
   */
  writeBatch(): void {
    if (this.closed) return;
    for (const n of this.dirty) {
      const f = this.fids.get(n);
      if (f) {
        this.host.store.putFid(this.sid, f);
        this.persisted.add(n);
      } else if (this.persisted.delete(n)) {
        this.host.store.deleteFid(this.sid, n);
      }
    }
    this.dirty.clear();
    if (this.seenTags.size) {
      this.host.store.dropReplies(this.sid, this.seenTags);
      this.seenTags.clear();
    }
    if (this.lastSeq > this.seqWritten) {
      this.host.store.noteSeq(this.sid, this.lastSeq);
      this.seqWritten = this.lastSeq;
    }
  }

  /** A fid changed: written now (resumable), or in the next batch. */
  private fidChanged(n: number): void {
    if (this.closed) return; // its rows go with the session
    if (this.resumable) {
      const f = this.fids.get(n);
      if (f) {
        this.host.store.putFid(this.sid, f);
        this.persisted.add(n);
      } else if (this.persisted.delete(n)) {
        this.host.store.deleteFid(this.sid, n);
      }
      return;
    }
    // Made and dropped within one batch: nothing to write.
    if (!this.fids.has(n) && !this.persisted.has(n)) this.dirty.delete(n);
    else {
      this.dirty.add(n);
      this.host.deferFlush();
    }
  }

  get fs(): ShareFs {
    return this.host.fs;
  }

  /** The iounit given in Rlopen/Rlcreate (0 = "msize - 24"). */
  get iounit(): number {
    return this.host.limits.iounit === "aligned" ? alignedIounit(this.msize) : 0;
  }

  /** The I/O size the client will use, reported as st_blksize. */
  get blksize(): number {
    return this.iounit || this.msize - P9_IOHDRSZ;
  }

  get fidCount(): number {
    return this.fids.size;
  }

  fid(n: number): FidState {
    const f = this.fids.get(n);
    if (f === undefined) throw new P9Error(ERRNO.EBADF, `unknown fid ${n}`);
    return f;
  }

  hasFid(n: number): boolean {
    return this.fids.has(n);
  }

  /**
   * Adds or updates a fid; opening one is counted on its inode across
   * sessions. An xattr fid's buffer (a value read by Txattrwalk, or one being
   * written after Txattrcreate) is held in memory until the fid goes, so it
   * counts against the session's cap and the object's budget.
   */
  putFid(f: FidState): void {
    const prev = this.fids.get(f.fid);
    if (!prev && this.fids.size >= this.host.limits.maxFids) {
      throw new P9Error(ERRNO.EMFILE, `the session holds ${this.fids.size} fids, its limit (EDGE9P.max_fids)`);
    }
    if (!prev && this.host.store.fidTotal >= this.host.limits.maxShareFids) {
      throw new P9Error(ERRNO.ENFILE, `the share's sessions hold ${this.host.store.fidTotal} fids, its limit (EDGE9P.max_share_fids)`);
    }
    if (f.data !== prev?.data) this.holdBuffer(f);
    if (prev?.open && prev.kind === "node" && !(f.open && f.ino === prev.ino)) this.host.fs.closed(prev.ino);
    if (f.open && f.kind === "node" && !(prev?.open && prev.ino === f.ino)) this.host.fs.opened(f.ino);
    this.fids.set(f.fid, f);
    if (!prev) this.host.store.fidTotal++;
    this.fidChanged(f.fid);
  }

  /** Xattr buffers by fid: their size and the budget they hold. */
  private readonly buffers = new Map<number, { n: number; give: () => void }>();
  private bufferBytes = 0;

  /** Takes the room for a fid's new buffer (giving back its old one); throws when there is none. */
  private holdBuffer(f: FidState, restored = false): void {
    const n = f.data?.byteLength ?? 0;
    const old = this.buffers.get(f.fid);
    const cap = this.host.limits.maxXattrBytes;
    let give: (() => void) | null = () => {};
    if (n > 0) {
      const errno = f.xattr ? ERRNO.ENOSPC : ERRNO.ENOMEM;
      if (!restored && this.bufferBytes - (old?.n ?? 0) + n > cap) {
        throw new P9Error(errno, `the session holds ${this.bufferBytes} bytes of xattr buffers, its limit ${cap} (EDGE9P.max_xattr_bytes)`);
      }
      // Long-lived, so they never take the last quarter of the budget: replies keep flowing.
      const budget = this.host.budget;
      give = restored ? budget.force(n) : budget.tryAcquire(n, budget.limit / 4);
      if (!give) throw new P9Error(errno, "the share's object holds too many xattr buffers; try again later");
    }
    if (old) {
      old.give();
      this.bufferBytes -= old.n;
      this.buffers.delete(f.fid);
    }
    if (n > 0) {
      this.buffers.set(f.fid, { n, give: give! });
      this.bufferBytes += n;
    }
  }

  dropFid(n: number): void {
    const f = this.fids.get(n);
    if (!f) return;
    const b = this.buffers.get(n);
    if (b) {
      b.give();
      this.bufferBytes -= b.n;
      this.buffers.delete(n);
    }
    this.fids.delete(n);
    this.host.store.fidTotal--;
    this.fidChanged(n);
    if (f.open && f.kind === "node") {
      this.host.fs.forgetStream(`${this.sid}/${n}`); // its readahead (handlers/read.ts streamOf)
      this.host.fs.closed(f.ino);
    }
  }

  /** Handles one WebSocket message; resolves once its reply (if any) is sent. */
  async receive(bytes: Uint8Array): Promise<void> {
    if (this.closed) return;
    if (this.host.limits.idleTimeoutMs > 0) {
      // At most one write a minute (or a tenth of the timeout) per session.
      const now = Date.now();
      if (now - this.touched > Math.min(60_000, this.host.limits.idleTimeoutMs / 10)) {
        this.touched = now;
        this.host.store.touch(this.sid, now);
      }
    }
    // A plain 9P client using a tag again has read the tag's last reply (its
    // tag[2] follows size[4] type[1]: read in place, on every message).
    if (bytes.byteLength >= HEADER_SIZE) this.host.outbox.received(bytes[5]! | (bytes[6]! << 8));
    const limit = this.dialect ? this.msize : PLATFORM_MSIZE_CEILING;
    let seq = 0;
    if (this.awaitingHello) {
      if (this.beforeHello.length >= this.host.limits.maxInflight) {
        return this.end(CLOSE.PROTOCOL, `resume: the hello must come before any request (${this.beforeHello.length} came first)`);
      }
      const run = await new Promise<boolean>((go) => this.beforeHello.push(go));
      if (!run || this.closed) return;
    }
    if (this.resumable && bytes.byteLength >= HEADER_SIZE) {
      const n = this.sequence(bytes);
      if (n === null) return;
      seq = n;
    }
    let msg: Message;
    try {
      msg = decode(bytes, this.dialect ?? "9P2000.L", limit);
    } catch (e) {
      return this.badMessage(e, bytes.byteLength, limit, seq);
    }
    if (msg.type === "Tversion") return this.version(msg, seq);
    if (!this.dialect) {
      return this.end(CLOSE.NO_VERSION, `${msg.type} before Tversion: Tversion must be the first message`);
    }
    if (!msg.type.startsWith("T")) {
      return this.reply(msg.tag, errorReply(this.dialect, msg.tag, ERRNO.EINVAL, `${msg.type} is a reply`), seq);
    }
    if (this.inflight.has(msg.tag)) {
      this.host.log(`session ${this.sid}: tag ${msg.tag} reused while in flight (${msg.type})`);
      return this.reply(msg.tag, errorReply(this.dialect, msg.tag, ERRNO.EINVAL, "tag in use"), seq);
    }
    // A Tflush is in flight too: a later Tflush of its tag must wait for its Rflush.
    if (msg.type === "Tflush") return this.track(msg.tag, () => this.flush(msg, seq));
    if (this.inflight.size >= this.host.limits.maxInflight) {
      return this.reply(msg.tag, errorReply(this.dialect, msg.tag, ERRNO.EAGAIN, "too many requests in flight"), seq);
    }
    return this.track(msg.tag, (entry) => this.run(msg, entry, seq));
  }

  /**
   * Runs a request with its tag in flight. Registered before the work starts
   * (it may finish, and free its tag, before `work` returns its promise).
   */
  private track(tag: number, work: (entry: InFlight) => Promise<void>): Promise<void> {
    const entry: InFlight = { ctl: new AbortController(), done: Promise.resolve() };
    this.inflight.set(tag, entry);
    entry.done = work(entry).finally(() => {
      if (this.inflight.get(tag) === entry) this.inflight.delete(tag);
    });
    return entry.done;
  }

  private badMessage(e: unknown, size: number, limit: number, seq: number): void {
    if (e instanceof FramingError) {
      const code = size > limit ? CLOSE.TOO_BIG : CLOSE.PROTOCOL;
      this.host.log(`session ${this.sid}: ${e.message}; closing`);
      return this.end(code, e.message);
    }
    if (e instanceof MessageError && e.tag !== null && this.dialect) {
      this.host.log(`session ${this.sid}: bad message: ${e.message}`);
      return this.reply(e.tag, errorReply(this.dialect, e.tag, e.errno, e.message), seq);
    }
    const reason = e instanceof Error ? e.message : String(e);
    return this.end(CLOSE.NO_VERSION, `${reason} before Tversion`);
  }

  /** Tversion: aborts everything in flight, drops every fid, negotiates afresh. */
  private async version(m: Msg<"Tversion">, seq: number): Promise<void> {
    for (const t of this.inflight.values()) t.ctl.abort(new P9Error(ERRNO.ECANCELED, "session reset by Tversion"));
    await Promise.allSettled([...this.inflight.values()].map((t) => t.done));
    for (const n of [...this.fids.keys()]) this.dropFid(n);
    for (const tag of [...this.kept.keys()]) this.seen(tag);
    const { limits } = this.host;
    const neg = negotiate(m.msize, m.version, { cap: limits.msizeCap, capSource: limits.capSource });
    if (!neg.ok) {
      this.dialect = null;
      this.host.store.setVersion(this.sid, null, 0);
      this.host.log(`session ${this.sid}: refused Tversion: ${neg.reason}`);
      const v = matchVersion(m.version);
      const d = v === "unknown" ? "9P2000" : v;
      return this.reply(m.tag, errorReply(d, m.tag, ERRNO.EINVAL, neg.reason), seq);
    }
    this.dialect = neg.version === "unknown" ? null : neg.version;
    this.msize = neg.version === "unknown" ? 0 : neg.msize;
    this.host.store.setVersion(this.sid, this.dialect, this.msize);
    if (neg.lowered) {
      this.host.log(`session ${this.sid}: msize ${neg.lowered.from} lowered to ${neg.lowered.to}: ${neg.lowered.reason}`);
    }
    this.reply(m.tag, { type: "Rversion", tag: m.tag, msize: neg.msize, version: neg.version }, seq);
  }

  /** Tflush: the flushed request answers first (if it still does), then Rflush (flush(5)). */
  private async flush(m: Msg<"Tflush">, seq: number): Promise<void> {
    // A flush of itself flushes nothing (and must not wait for itself).
    const t = m.oldtag === m.tag ? undefined : this.inflight.get(m.oldtag);
    if (t) {
      t.ctl.abort(new P9Error(ERRNO.EINTR, "flushed"));
      await t.done;
    }
    if (this.closed) return;
    this.reply(m.tag, { type: "Rflush", tag: m.tag }, seq);
  }

  private async run(msg: Message, entry: InFlight, seq: number): Promise<void> {
    const { signal } = entry.ctl;
    const dialect = this.dialect!;
    const tickets: Ticket[] = [];
    const outbox = this.host.outbox;
    const { leases, leaseSocket } = this.host;
    // Every request runs in a lease context when the share grants leases,
    // so that its changes recall other sockets' leases and its reply waits
    // for their acks (rule 1); only a lease socket's .L requests note grants.
    const lr: LeaseRequest | null = leases ? leases.begin(leaseSocket && dialect === "9P2000.L" ? leaseSocket.key : null) : null;
    const ctx: RequestContext = {
      signal,
      reserve: async (n) => {
        tickets.push(await outbox.reserve(n, signal));
      },
      lease: (ino) => {
        if (lr) leases!.note(lr, ino);
      },
      unlease: (ino) => {
        if (lr) leases!.strike(lr, ino);
      },
      grantWithError: () => {
        grantError = true;
      },
    };
    let granting = false;
    let grantError = false;
    try {
      let out: HandlerReply;
      try {
        const handler = this.host.handlers[msg.type] as Handler<typeof msg.type> | undefined;
        if (!handler) throw new P9Error(dialect === "9P2000.L" ? ERRNO.EOPNOTSUPP : ERRNO.ENOSYS);
        out = await (lr ? leases!.within(lr, () => handler(this, msg as never, ctx)) : handler(this, msg as never, ctx));
        granting = GRANTING.has(msg.type);
      } catch (e) {
        // A flushed request that gave up sends nothing: Rflush answers for it.
        // Its number is still used up (a restored session counts on from it).
        if (signal.aborted && !this.closed) {
          if (seq > 0) this.host.deferFlush();
          return;
        }
        out = this.errorFor(msg, e);
        granting = grantError && GRANTING.has(msg.type);
      }
      // Rule 1: a reply that acknowledges a change waits for the other holders' acks (or their terms).
      if (lr && lr.waits.size > 0) await leases!.settle(lr);
      if (this.closed) return;
      // Rule 2 and 3: what no change struck is granted just before the reply, on the same socket.
      const grant = lr && granting && !this.detached ? leases!.grant(lr, leaseSocket, msg.tag) : null;
      if (grant !== null) leaseSocket!.send(grant);
      this.reply(msg.tag, out, seq, tickets.splice(0));
    } finally {
      if (lr) leases!.end(lr);
      for (const t of tickets) outbox.unused(t);
      this.host.changed();
    }
  }

  private errorFor(msg: Message, e: unknown): MessageInit {
    const d = this.dialect ?? "9P2000.L";
    if (e instanceof P9Error) return errorReply(d, msg.tag, e.errno, e.message);
    this.host.log(
      `session ${this.sid}: ${format(msg, d)} failed unexpectedly: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    );
    return errorReply(d, msg.tag, ERRNO.EIO);
  }

  /**
   * Sends a reply, never larger than msize (a larger one would kill a Linux
   * mount). A numbered request's reply is kept first, in the same SQLite
   * turn as the request's own writes, so that a replay finds it. The
   * request's tickets stay held until the client has read the reply (or are
   * given back now if it is not sent).
   */
  private reply(tag: number, out: HandlerReply, seq = 0, tickets: readonly Ticket[] = []): void {
    const d = this.dialect ?? "9P2000";
    let bytes = out instanceof Uint8Array ? out : encode(out, tagDialect(out, d));
    if (this.msize > 0 && bytes.byteLength > this.msize && tag !== NOTAG) {
      this.host.log(`session ${this.sid}: reply of ${bytes.byteLength} bytes exceeds msize ${this.msize}; sent EIO instead`);
      bytes = encode(errorReply(d, tag, ERRNO.EIO), d);
    }
    if (seq > 0) {
      this.kept.set(tag, { seq, bytes });
      this.host.store.keepReply(this.sid, tag, seq, bytes);
      // Its row replaces the tag's last one: nothing left to drop for it.
      this.seenTags.delete(tag);
      this.host.deferFlush();
    }
    if (this.detached) {
      for (const t of tickets) this.host.outbox.unused(t);
      return;
    }
    this.host.outbox.send(tag, bytes, tickets);
  }

  /** Closes the socket and ends the session. */
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.inflight.values()) t.ctl.abort(new P9Error(ERRNO.ECONNRESET, "session ended"));
    this.releaseEarly(false);
    this.host.close(code, reason);
  }

  /** The socket is gone: abort what runs, close its open files, forget the session. */
  abandon(): void {
    this.closed = true;
    this.releaseEarly(false);
    for (const t of this.inflight.values()) t.ctl.abort(new P9Error(ERRNO.ECONNRESET, "session ended"));
    for (const n of [...this.fids.keys()]) this.dropFid(n);
  }
}

/** Rversion and the error replies of a refused Tversion are valid before any dialect. */
function tagDialect(out: MessageInit, d: Dialect): Dialect {
  if (out.type === "Rlerror") return "9P2000.L";
  if (out.type === "Rerror") return "errno" in out && out.errno !== undefined ? "9P2000.u" : "9P2000";
  return d;
}
