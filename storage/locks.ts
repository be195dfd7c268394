// POSIX byte-range locks shared by every session of a share (Tlock,
// Tgetlock). An owner is (session, proc_id, client_id). A blocking request
// waits here until it can be granted (or is cancelled by Tflush): Linux
// would otherwise retry a BLOCKED lock only every 30 s (docs/9p.md).
//
// Cost: a request touches only the locks that overlap or adjoin its range.
// Each file's locks are an interval tree, loaded from SQLite the first time
// the file is locked after a start; each lock entry is one row, so a change
// writes the rows it changes and nothing else; a session's rows are found
// by an index on sid. Entries, not requests, count against the caps: an
// unlock in the middle of a lock leaves two (POSIX fcntl: ENOLCK "satisfying
// the lock or unlock request would result in the number of locked regions
// ... exceeding a system-imposed limit").

import { ERRNO, LOCK_STATUS, LOCK_TYPE, P9Error } from "../protocol/index.ts";
import { IntervalTree } from "./interval-tree.ts";
import { blob } from "./namespace.ts";

/** Lengths of 0 mean "to the end of the file, however long". */
const EOF = Number.MAX_SAFE_INTEGER;

/**
 * The longest client_id a lock may carry. Linux sends the host's name
 * (utsname nodename: at most 64 bytes, include/uapi/linux/utsname.h).
 */
export const LOCK_CLIENT_ID_MAX = 255;

export interface LockOwner {
  sid: string;
  procId: number;
  clientId: Uint8Array;
}

export interface LockRequest extends LockOwner {
  ino: number;
  type: number;
  start: number;
  /** 0 = to the end of the file. */
  length: number;
}

/** A lock another owner holds, as Tgetlock reports it. */
export interface HeldLock {
  type: number;
  start: number;
  /** Exclusive; EOF for "to the end". */
  end: number;
  procId: number;
  clientId: Uint8Array;
}

/** Lock entries that may be held at once (EDGE9P.max_locks_per_session and friends). */
export interface LockLimits {
  perSession: number;
  perInode: number;
  perShare: number;
}

/** One lock entry: one row of the lock table, `id` its key. */
interface Held {
  readonly id: number;
  readonly sid: string;
  readonly procId: number;
  /** client_id as a string of byte values (cheaper to hold and compare than bytes). */
  readonly client: string;
  readonly type: number;
  readonly start: number;
  readonly end: number;
}

type Piece = Omit<Held, "id">;

const toBinary = (b: Uint8Array) => String.fromCharCode(...b);
const fromBinary = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

function endOf(start: number, length: number): number {
  return length === 0 ? EOF : Math.min(EOF, start + length);
}

export class LockTable {
  /** Files whose locks are loaded and not empty. */
  private readonly trees = new Map<number, IntervalTree<Held>>();
  /** Entries per session and in all, counted from SQLite on first need. */
  private readonly perSession = new Map<string, number>();
  private total: number | null = null;
  private readonly waiters = new Map<number, (() => void)[]>();
  /** SQLite rows this table has read and written (tests check that a request costs a few). */
  readonly rows = { read: 0, written: 0 };

  constructor(
    private readonly sql: SqlStorage,
    private readonly limits: LockLimits,
  ) {}

  private exec(query: string, ...args: SqlStorageValue[]): Record<string, SqlStorageValue>[] {
    const c = this.sql.exec(query, ...args);
    const out = c.toArray();
    this.rows.read += c.rowsRead;
    this.rows.written += c.rowsWritten;
    return out;
  }

  /** A file's locks; an empty tree is not kept (most files are never locked). */
  private tree(ino: number): IntervalTree<Held> {
    const have = this.trees.get(ino);
    if (have) return have;
    const t = new IntervalTree<Held>();
    // One string per distinct sid and client_id, not one per row.
    const once = new Map<string, string>();
    const intern = (s: string) => once.get(s) ?? (once.set(s, s), s);
    for (const r of this.exec(`SELECT id, sid, proc_id, client_id, type, start, end FROM lock WHERE ino = ?`, ino)) {
      t.add({
        id: r.id as number,
        sid: intern(r.sid as string),
        procId: r.proc_id as number,
        client: intern(toBinary(new Uint8Array(r.client_id as ArrayBuffer))),
        type: r.type as number,
        start: r.start as number,
        end: r.end as number,
      });
    }
    if (t.size > 0) this.trees.set(ino, t);
    return t;
  }

  private sessionCount(sid: string): number {
    let n = this.perSession.get(sid);
    if (n === undefined) {
      n = this.exec(`SELECT count(*) AS n FROM lock WHERE sid = ?`, sid)[0]!.n as number;
      this.perSession.set(sid, n);
    }
    return n;
  }

  private totalCount(): number {
    this.total ??= this.exec(`SELECT count(*) AS n FROM lock`)[0]!.n as number;
    return this.total;
  }

  /** Adds `delta` entries to the counts that are known (the others are counted from SQLite when needed). */
  private counted(sid: string, delta: number): void {
    const n = this.perSession.get(sid);
    if (n !== undefined) this.perSession.set(sid, n + delta);
    if (this.total !== null) this.total += delta;
  }

  /** ENOLCK when `more` entries would take a cap past its limit. */
  private checkCaps(req: LockRequest, t: IntervalTree<Held>, more: number): void {
    const over = (what: string, field: string, limit: number) =>
      new P9Error(ERRNO.ENOLCK, `${what} holds ${limit} locks, its limit (EDGE9P.${field})`);
    if (t.size + more > this.limits.perInode) throw over("the file", "max_locks_per_inode", this.limits.perInode);
    if (this.sessionCount(req.sid) + more > this.limits.perSession) throw over("this session", "max_locks_per_session", this.limits.perSession);
    if (this.totalCount() + more > this.limits.perShare) throw over("the share", "max_locks", this.limits.perShare);
  }

  /** The first lock of another owner that conflicts with the request, or null. */
  conflict(req: LockRequest): HeldLock | null {
    const start = req.start;
    const end = endOf(req.start, req.length);
    if (end <= start) return null;
    const client = toBinary(req.clientId);
    let found: Held | null = null;
    // Integer ranges: [start + 1, end - 1] touching means overlapping [start, end).
    this.tree(req.ino).touching(start + 1, end - 1, (h) => {
      if (h.sid === req.sid && h.procId === req.procId && h.client === client) return false;
      if (h.type !== LOCK_TYPE.WRLCK && req.type !== LOCK_TYPE.WRLCK) return false;
      found = h;
      return true;
    });
    const h = found as Held | null;
    return h && { type: h.type, start: h.start, end: h.end, procId: h.procId, clientId: fromBinary(h.client) };
  }

  /**
   * Takes (or, with UNLCK, releases) a range for its owner, as POSIX does:
   * the owner's locks in the range are replaced, and the new lock merges
   * with the owner's locks of its type that overlap or adjoin it.
   */
  private apply(req: LockRequest): void {
    const start = req.start;
    const end = endOf(req.start, req.length);
    // Offsets past 2^53 - 1 are cut to it: a range that starts there is empty, and holds nothing.
    if (end <= start) return;
    const t = this.tree(req.ino);
    const client = toBinary(req.clientId);
    const removed: Held[] = [];
    const added: Piece[] = [];
    let from = start;
    let to = end;
    t.touching(start, end, (h) => {
      if (h.sid !== req.sid || h.procId !== req.procId || h.client !== client) return;
      if (req.type !== LOCK_TYPE.UNLCK && h.type === req.type) {
        from = Math.min(from, h.start);
        to = Math.max(to, h.end);
        removed.push(h);
        return;
      }
      if (h.end <= start || h.start >= end) return; // adjoins, of another type: stays
      removed.push(h);
      if (h.start < start) added.push({ ...h, end: start });
      if (h.end > end) added.push({ ...h, start: end });
    });
    if (req.type !== LOCK_TYPE.UNLCK) {
      const r = removed[0];
      const same = removed.length === 1 && r!.type === req.type && r!.start === from && r!.end === to;
      if (same) return; // already held exactly so: nothing changes
      added.push({ sid: req.sid, procId: req.procId, client, type: req.type, start: from, end: to });
    }
    if (removed.length === 0 && added.length === 0) return;
    const more = added.length - removed.length;
    if (more > 0) this.checkCaps(req, t, more);
    for (const h of removed) t.delete(h);
    // Rows of removed entries take the new ones: an update each, then deletes or inserts for the rest.
    added.forEach((p, i) => {
      const old = removed[i];
      let id: number;
      if (old) {
        this.exec(`UPDATE lock SET type = ?, start = ?, end = ? WHERE id = ?`, p.type, p.start, p.end, old.id);
        id = old.id;
      } else {
        id = this.exec(
          `INSERT INTO lock (ino, sid, proc_id, client_id, type, start, end) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
          req.ino,
          p.sid,
          p.procId,
          blob(fromBinary(p.client)),
          p.type,
          p.start,
          p.end,
        )[0]!.id as number;
      }
      t.add({ ...p, id });
    });
    for (const h of removed.slice(added.length)) this.exec(`DELETE FROM lock WHERE id = ?`, h.id);
    this.counted(req.sid, more);
    if (t.size > 0) this.trees.set(req.ino, t);
    else this.trees.delete(req.ino);
    // Anything released or downgraded may let a waiter through: they re-check.
    this.wake(req.ino);
  }

  private wake(ino: number): void {
    const w = this.waiters.get(ino);
    this.waiters.delete(ino);
    for (const f of w ?? []) f();
  }

  /**
   * Tlock: SUCCESS, or BLOCKED for a non-blocking request that conflicts. A
   * blocking one waits until it is granted; aborting `signal` gives up.
   * ENOLCK (thrown) when granting it would take a cap past its limit.
   */
  async lock(req: LockRequest, block: boolean, signal?: AbortSignal): Promise<number> {
    for (;;) {
      if (req.type === LOCK_TYPE.UNLCK || this.conflict(req) === null) {
        this.apply(req);
        return LOCK_STATUS.SUCCESS;
      }
      if (!block) return LOCK_STATUS.BLOCKED;
      await new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        const list = this.waiters.get(req.ino) ?? [];
        const onAbort = () => {
          const l = this.waiters.get(req.ino);
          if (l) this.waiters.set(req.ino, l.filter((f) => f !== go));
          reject(signal!.reason);
        };
        const go = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        list.push(go);
        this.waiters.set(req.ino, list);
      });
    }
  }

  /** Drops every lock of a session (it ended or its socket is gone): its rows only, by the sid index. */
  dropSession(sid: string): void {
    const rows = this.exec(`SELECT id, ino, start FROM lock WHERE sid = ?`, sid);
    this.perSession.delete(sid);
    if (rows.length === 0) return;
    this.exec(`DELETE FROM lock WHERE sid = ?`, sid);
    if (this.total !== null) this.total -= rows.length;
    const inos = new Set<number>();
    for (const r of rows) {
      const ino = r.ino as number;
      inos.add(ino);
      this.trees.get(ino)?.delete({ id: r.id as number, start: r.start as number, end: 0 });
    }
    for (const ino of inos) {
      if (this.trees.get(ino)?.size === 0) this.trees.delete(ino);
      this.wake(ino);
    }
  }

  /** Drops every lock on an inode (it is gone). */
  dropInode(ino: number): void {
    for (const r of this.exec(`SELECT sid, count(*) AS n FROM lock WHERE ino = ? GROUP BY sid`, ino)) {
      this.counted(r.sid as string, -(r.n as number));
    }
    this.exec(`DELETE FROM lock WHERE ino = ?`, ino);
    this.trees.delete(ino);
    this.wake(ino);
  }
}

export { EOF as LOCK_EOF };
