// The share's lock table (storage/locks.ts) on its own, on a real SqlStorage
// (a Durable Object of its own, with the share's schema). locks.test.ts
// checks random requests against a byte model through the share's table;
// this names the POSIX cases one by one (split, merge, upgrade, downgrade,
// an unlock in the middle), what a conflict reports, blocking requests and
// what wakes them, a session's end, and the three caps, also as counted
// again from SQLite by a table that starts afresh.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ERRNO, LOCK_STATUS, LOCK_TYPE } from "../../protocol/index.ts";
import { LOCK_EOF, type LockLimits, type LockOwner, type LockRequest, LockTable } from "../../storage/locks.ts";
import { migrate } from "../../storage/schema.ts";

const { RDLCK, WRLCK, UNLCK } = LOCK_TYPE;
const WIDE: LockLimits = { perSession: 1000, perInode: 1000, perShare: 1000 };
const enc = new TextEncoder();

const A: LockOwner = { sid: "sess-a", procId: 10, clientId: enc.encode("host-a") };
const A2: LockOwner = { sid: "sess-a", procId: 11, clientId: enc.encode("host-a") };
const B: LockOwner = { sid: "sess-b", procId: 10, clientId: enc.encode("host-a") };
const C: LockOwner = { sid: "sess-c", procId: 1, clientId: enc.encode("host-c") };
const INO = 7;

/** Runs `f` on the SQLite of a Durable Object no share uses, with the share's schema and no locks. */
function onSql<T>(name: string, f: (sql: SqlStorage) => T | Promise<T>): Promise<T> {
  const ns = (env as unknown as { SHARE: DurableObjectNamespace }).SHARE;
  return runInDurableObject(ns.getByName(`component/${name}`), (_obj, state: DurableObjectState) => {
    migrate(state.storage.sql);
    state.storage.sql.exec(`DELETE FROM lock`);
    return f(state.storage.sql);
  });
}

const req = (o: LockOwner, type: number, start: number, length: number, ino = INO): LockRequest => ({ ...o, ino, type, start, length });

/** An owner's entries on a file, as rows: [type, start, end]. */
function entries(sql: SqlStorage, o: LockOwner, ino = INO): [number, number, number][] {
  return sql
    .exec(`SELECT type, start, end FROM lock WHERE ino = ? AND sid = ? AND proc_id = ? ORDER BY start`, ino, o.sid, o.procId)
    .toArray()
    .map((r) => [r.type as number, r.start as number, r.end as number]);
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe("one owner's locks", () => {
  it("merges a lock with the owner's overlapping and adjoining ones of its type", async () => {
    await onSql("locks-merge", async (sql) => {
      const t = new LockTable(sql, WIDE);
      expect(await t.lock(req(A, RDLCK, 0, 10), false)).toBe(LOCK_STATUS.SUCCESS);
      expect(await t.lock(req(A, RDLCK, 20, 10), false)).toBe(LOCK_STATUS.SUCCESS);
      expect(entries(sql, A)).toEqual([
        [RDLCK, 0, 10],
        [RDLCK, 20, 30],
      ]);
      await t.lock(req(A, RDLCK, 10, 10), false); // adjoins both
      expect(entries(sql, A), "[0,10) + [10,20) + [20,30) is one entry").toEqual([[RDLCK, 0, 30]]);
      await t.lock(req(A, RDLCK, 25, 0), false); // overlaps, to the end
      expect(entries(sql, A)).toEqual([[RDLCK, 0, LOCK_EOF]]);
    });
  });

  it("keeps adjoining locks of different types apart", async () => {
    await onSql("locks-types", async (sql) => {
      const t = new LockTable(sql, WIDE);
      await t.lock(req(A, RDLCK, 0, 10), false);
      await t.lock(req(A, WRLCK, 10, 10), false);
      expect(entries(sql, A)).toEqual([
        [RDLCK, 0, 10],
        [WRLCK, 10, 20],
      ]);
    });
  });

  it("upgrades the middle of a read lock to a write lock, splitting it, and downgrades it back into one", async () => {
    await onSql("locks-upgrade", async (sql) => {
      const t = new LockTable(sql, WIDE);
      await t.lock(req(A, RDLCK, 0, 100), false);
      await t.lock(req(A, WRLCK, 40, 20), false);
      expect(entries(sql, A), "upgrade in the middle").toEqual([
        [RDLCK, 0, 40],
        [WRLCK, 40, 60],
        [RDLCK, 60, 100],
      ]);
      await t.lock(req(A, RDLCK, 40, 20), false);
      expect(entries(sql, A), "downgrade: merged with both sides").toEqual([[RDLCK, 0, 100]]);
      await t.lock(req(A, WRLCK, 0, 100), false);
      expect(entries(sql, A), "upgrade of the whole").toEqual([[WRLCK, 0, 100]]);
    });
  });

  it("unlocks the middle of a lock, leaving two entries, and the rest in pieces", async () => {
    await onSql("locks-unlock", async (sql) => {
      const t = new LockTable(sql, WIDE);
      await t.lock(req(A, WRLCK, 0, 0), false);
      await t.lock(req(A, UNLCK, 100, 50), false);
      expect(entries(sql, A)).toEqual([
        [WRLCK, 0, 100],
        [WRLCK, 150, LOCK_EOF],
      ]);
      // B may now lock what A let go of, and nothing either side of it.
      expect(await t.lock(req(B, WRLCK, 100, 50), false)).toBe(LOCK_STATUS.SUCCESS);
      expect(await t.lock(req(B, RDLCK, 99, 1), false)).toBe(LOCK_STATUS.BLOCKED);
      expect(await t.lock(req(B, RDLCK, 150, 1), false)).toBe(LOCK_STATUS.BLOCKED);
      // An unlock across an entry's edge cuts it; one of nothing held changes nothing.
      await t.lock(req(A, UNLCK, 50, 75), false);
      expect(entries(sql, A)).toEqual([
        [WRLCK, 0, 50],
        [WRLCK, 150, LOCK_EOF],
      ]);
      await t.lock(req(A, UNLCK, 60, 10), false);
      expect(entries(sql, A)).toHaveLength(2);
      await t.lock(req(A, UNLCK, 0, 0), false);
      expect(entries(sql, A), "unlock to the end drops everything").toEqual([]);
    });
  });

  it("treats a proc_id or client_id of its own as another owner", async () => {
    await onSql("locks-owners", async (sql) => {
      const t = new LockTable(sql, WIDE);
      await t.lock(req(A, WRLCK, 0, 10), false);
      expect(await t.lock(req(A2, RDLCK, 5, 1), false), "same session, another proc_id").toBe(LOCK_STATUS.BLOCKED);
      const otherHost = { ...A, clientId: enc.encode("host-b") };
      expect(await t.lock(req(otherHost, RDLCK, 5, 1), false), "same session and proc_id, another client_id").toBe(LOCK_STATUS.BLOCKED);
      expect(await t.lock(req(A, RDLCK, 5, 1), false), "the owner itself").toBe(LOCK_STATUS.SUCCESS);
    });
  });
});

describe("locks of different owners", () => {
  it("share read locks, and a write lock conflicts with any other lock it overlaps", async () => {
    await onSql("locks-conflict", async (sql) => {
      const t = new LockTable(sql, WIDE);
      await t.lock(req(A, RDLCK, 0, 10), false);
      expect(await t.lock(req(B, RDLCK, 5, 10), false), "read beside read").toBe(LOCK_STATUS.SUCCESS);
      expect(await t.lock(req(B, WRLCK, 9, 1), false), "write over another's read").toBe(LOCK_STATUS.BLOCKED);
      expect(await t.lock(req(B, WRLCK, 15, 5), false), "write next to it, not over it").toBe(LOCK_STATUS.SUCCESS);
      const c = t.conflict(req(A, RDLCK, 0, 0));
      expect(c, "what Tgetlock reports: B's write lock").toEqual({ type: WRLCK, start: 15, end: 20, procId: 10, clientId: enc.encode("host-a") });
      expect(t.conflict(req(A, WRLCK, 0, 5)), "A's own lock is no conflict, B's read lock starts at 5").toBeNull();
      expect(t.conflict(req(A, WRLCK, 0, 6))).toMatchObject({ type: RDLCK, start: 5, end: 15 });
      expect(t.conflict(req(A, WRLCK, 0, 10, INO + 1)), "another file").toBeNull();
    });
  });

  it("makes a blocking request wait until the conflict goes, and wakes it on unlock, on a session's end, not on an unrelated change", async () => {
    await onSql("locks-block", async (sql) => {
      const t = new LockTable(sql, WIDE);
      await t.lock(req(A, WRLCK, 0, 100), false);
      let granted = false;
      const waiting = t.lock(req(B, WRLCK, 50, 10), true).then((s) => ((granted = true), s));
      await settle();
      expect(granted).toBe(false);
      await t.lock(req(A, UNLCK, 0, 10), false); // wakes it; it checks again and still conflicts
      await t.lock(req(A, WRLCK, 200, 10), false);
      await settle();
      expect(granted, "A still holds [10, 100)").toBe(false);
      t.dropSession(A.sid);
      expect(await waiting).toBe(LOCK_STATUS.SUCCESS);
      expect(entries(sql, A), "the session's entries are gone").toEqual([]);
      expect(entries(sql, B)).toEqual([[WRLCK, 50, 60]]);
    });
  });

  it("gives up a blocking request when its signal aborts, and leaves no entry", async () => {
    await onSql("locks-abort", async (sql) => {
      const t = new LockTable(sql, WIDE);
      await t.lock(req(A, RDLCK, 0, 0), false);
      const ctl = new AbortController();
      const waiting = t.lock(req(B, WRLCK, 0, 1), true, ctl.signal);
      await settle();
      ctl.abort(new Error("Tflush"));
      await expect(waiting).rejects.toThrow("Tflush");
      await t.lock(req(A, UNLCK, 0, 0), false);
      expect(entries(sql, B)).toEqual([]);
      await expect(t.lock(req(B, WRLCK, 0, 1), true, AbortSignal.abort(new Error("late"))), "a signal counts only while the request waits").resolves.toBe(LOCK_STATUS.SUCCESS);
    });
  });

  it("drops an inode's locks, every owner's, and wakes its waiters", async () => {
    await onSql("locks-inode", async (sql) => {
      const t = new LockTable(sql, { perSession: 2, perInode: 1000, perShare: 1000 });
      await t.lock(req(A, WRLCK, 0, 10), false);
      await t.lock(req(B, WRLCK, 20, 10), false);
      await t.lock(req(B, WRLCK, 0, 10, INO + 1), false);
      const waiting = t.lock(req(A2, WRLCK, 0, 0), true);
      t.dropInode(INO);
      expect(await waiting).toBe(LOCK_STATUS.SUCCESS);
      expect(entries(sql, B, INO + 1), "another file's locks stay").toEqual([[WRLCK, 0, 10]]);
      // B's count went down by the entry on INO: it may take one more.
      expect(await t.lock(req(B, WRLCK, 100, 1, INO + 2), false)).toBe(LOCK_STATUS.SUCCESS);
      await expect(t.lock(req(B, WRLCK, 200, 1, INO + 2), false)).rejects.toMatchObject({ errno: ERRNO.ENOLCK });
    });
  });
});

describe("the caps", () => {
  it("refuses an entry past a session's cap with ENOLCK, an unlock in the middle too, and a merge that adds none", async () => {
    await onSql("locks-cap-session", async (sql) => {
      const t = new LockTable(sql, { perSession: 2, perInode: 1000, perShare: 1000 });
      await t.lock(req(A, WRLCK, 0, 10), false);
      await t.lock(req(A2, WRLCK, 20, 10), false);
      await expect(t.lock(req(A, WRLCK, 40, 10), false), "a third entry of the session").rejects.toMatchObject({
        errno: ERRNO.ENOLCK,
        message: expect.stringContaining("max_locks_per_session"),
      });
      await expect(t.lock(req(A, UNLCK, 2, 2), false), "a split would make three").rejects.toMatchObject({ errno: ERRNO.ENOLCK });
      expect(entries(sql, A), "the refused requests changed nothing").toEqual([[WRLCK, 0, 10]]);
      expect(await t.lock(req(A, WRLCK, 10, 5), false), "a merge adds no entry").toBe(LOCK_STATUS.SUCCESS);
      expect(entries(sql, A)).toEqual([[WRLCK, 0, 15]]);
      expect(await t.lock(req(B, WRLCK, 40, 10), false), "another session has its own cap").toBe(LOCK_STATUS.SUCCESS);
      await t.lock(req(A, UNLCK, 0, 0), false);
      expect(await t.lock(req(A, WRLCK, 100, 1), false), "room again after an unlock").toBe(LOCK_STATUS.SUCCESS);
      t.dropSession(A.sid);
      expect(await t.lock(req(A, WRLCK, 100, 1), false)).toBe(LOCK_STATUS.SUCCESS);
      expect(await t.lock(req(A, WRLCK, 200, 1), false), "the session's count started over").toBe(LOCK_STATUS.SUCCESS);
    });
  });

  it("refuses an entry past a file's cap and past the share's", async () => {
    await onSql("locks-cap-inode", async (sql) => {
      const t = new LockTable(sql, { perSession: 1000, perInode: 2, perShare: 3 });
      await t.lock(req(A, RDLCK, 0, 1), false);
      await t.lock(req(B, RDLCK, 0, 1), false);
      await expect(t.lock(req(A2, RDLCK, 0, 1), false), "a third entry on the file").rejects.toMatchObject({
        errno: ERRNO.ENOLCK,
        message: expect.stringContaining("max_locks_per_inode"),
      });
      expect(await t.lock(req(A2, RDLCK, 0, 1, INO + 1), false)).toBe(LOCK_STATUS.SUCCESS);
      await expect(t.lock(req(A2, RDLCK, 0, 1, INO + 2), false), "a fourth in the share").rejects.toMatchObject({
        errno: ERRNO.ENOLCK,
        message: expect.stringContaining("EDGE9P.max_locks)"),
      });
    });
  });

  it("counts entries already in SQLite when a table starts afresh (after a restart)", async () => {
    await onSql("locks-restart", async (sql) => {
      const before = new LockTable(sql, WIDE);
      await before.lock(req(A, WRLCK, 0, 10), false);
      await before.lock(req(A, WRLCK, 20, 10), false);
      await before.lock(req(B, RDLCK, 40, 10), false);
      const t = new LockTable(sql, { perSession: 2, perInode: 1000, perShare: 4 });
      expect(await t.lock(req(B, WRLCK, 5, 1), false), "A's lock, loaded from SQLite").toBe(LOCK_STATUS.BLOCKED);
      await expect(t.lock(req(A, WRLCK, 100, 1), false), "A already holds 2").rejects.toMatchObject({ errno: ERRNO.ENOLCK });
      expect(await t.lock(req(B, WRLCK, 100, 1), false)).toBe(LOCK_STATUS.SUCCESS);
      await expect(t.lock(req(C, WRLCK, 200, 1), false), "the share holds 4").rejects.toMatchObject({
        errno: ERRNO.ENOLCK,
        message: expect.stringContaining("EDGE9P.max_locks)"),
      });
      t.dropSession(A.sid);
      expect(t.conflict(req(B, WRLCK, 0, 30)), "A's locks went with its session").toBeNull();
      expect(sql.exec(`SELECT count(*) AS n FROM lock WHERE sid = ?`, A.sid).one().n).toBe(0);
    });
  });
});
