// POSIX byte-range locks shared by every session of a share (Tlock,
// Tgetlock). An owner is (session, proc_id, client_id). A blocking request
// waits here until it can be granted (or is cancelled by Tflush): Linux
// would otherwise retry a BLOCKED lock only every 30 s (docs/9p.md).

import { LOCK_STATUS, LOCK_TYPE } from "../protocol/index.ts";
import { blob } from "./namespace.ts";

/** Lengths of 0 mean "to the end of the file, however long". */
const EOF = Number.MAX_SAFE_INTEGER;

export interface LockOwner {
  sid: string;
  procId: number;
  clientId: Uint8Array;
}

export interface LockRange {
  type: number;
  start: number;
  /** Exclusive; EOF for "to the end". */
  end: number;
}

interface Held extends LockRange, LockOwner {}

export interface LockRequest extends LockOwner {
  ino: number;
  type: number;
  start: number;
  /** 0 = to the end of the file. */
  length: number;
}

function sameOwner(a: LockOwner, b: LockOwner): boolean {
  if (a.sid !== b.sid || a.procId !== b.procId || a.clientId.byteLength !== b.clientId.byteLength) return false;
  return a.clientId.every((x, i) => x === b.clientId[i]);
}

function conflicts(a: LockRange, b: LockRange): boolean {
  return a.start < b.end && b.start < a.end && (a.type === LOCK_TYPE.WRLCK || b.type === LOCK_TYPE.WRLCK);
}

function endOf(start: number, length: number): number {
  return length === 0 ? EOF : Math.min(EOF, start + length);
}

export class LockTable {
  private readonly held = new Map<number, Held[]>();
  private readonly waiters = new Map<number, (() => void)[]>();

  constructor(private readonly sql: SqlStorage) {
    for (const r of sql.exec(`SELECT * FROM lock`)) {
      const h: Held = {
        sid: r.sid as string,
        procId: r.proc_id as number,
        clientId: new Uint8Array(r.client_id as ArrayBuffer),
        type: r.type as number,
        start: r.start as number,
        end: r.end as number,
      };
      this.list(r.ino as number).push(h);
    }
  }

  private list(ino: number): Held[] {
    let l = this.held.get(ino);
    if (!l) {
      l = [];
      this.held.set(ino, l);
    }
    return l;
  }

  private save(ino: number): void {
    this.sql.exec(`DELETE FROM lock WHERE ino = ?`, ino);
    for (const h of this.list(ino)) {
      this.sql.exec(
        `INSERT INTO lock (ino, sid, proc_id, client_id, type, start, end) VALUES (?, ?, ?, ?, ?, ?, ?)`,
        ino,
        h.sid,
        h.procId,
        blob(h.clientId),
        h.type,
        h.start,
        h.end,
      );
    }
  }

  /** The first lock of another owner that conflicts with the request, or null. */
  conflict(req: LockRequest): Held | null {
    const want = { type: req.type, start: req.start, end: endOf(req.start, req.length) };
    for (const h of this.list(req.ino)) if (!sameOwner(h, req) && conflicts(h, want)) return h;
    return null;
  }

  /** Takes (or, with UNLCK, releases) a range for its owner. */
  private apply(req: LockRequest): void {
    const start = req.start;
    const end = endOf(req.start, req.length);
    const next: Held[] = [];
    // The owner's own locks in the range are replaced: cut them around it.
    for (const h of this.list(req.ino)) {
      if (!sameOwner(h, req) || h.end <= start || h.start >= end) {
        next.push(h);
        continue;
      }
      if (h.start < start) next.push({ ...h, end: start });
      if (h.end > end) next.push({ ...h, start: end });
    }
    if (req.type !== LOCK_TYPE.UNLCK) next.push({ sid: req.sid, procId: req.procId, clientId: req.clientId, type: req.type, start, end });
    this.held.set(req.ino, next);
    this.save(req.ino);
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

  /** Drops every lock of a session (it ended or its socket is gone). */
  dropSession(sid: string): void {
    for (const [ino, list] of this.held) {
      const keep = list.filter((h) => h.sid !== sid);
      if (keep.length !== list.length) {
        this.held.set(ino, keep);
        this.save(ino);
        this.wake(ino);
      }
    }
  }

  /** Drops every lock on an inode (it is gone). */
  dropInode(ino: number): void {
    this.held.delete(ino);
    this.sql.exec(`DELETE FROM lock WHERE ino = ?`, ino);
    this.wake(ino);
  }
}

export { EOF as LOCK_EOF };
