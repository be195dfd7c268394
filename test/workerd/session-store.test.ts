// The session rows (worker/session-store.ts) on their own, on a real
// SqlStorage (a Durable Object of its own): a session and its fids written
// and read back field by field, kept replies, the resume bookkeeping, the
// idle and detached queries, a session's end, and what a store that starts
// afresh on the same rows (the object after a restart) sees and sweeps.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type FidState, SessionStore } from "../../worker/session-store.ts";

/** Runs `f` on the SQLite of a Durable Object no share uses, with no session rows. */
function onSql<T>(name: string, f: (sql: SqlStorage) => T | Promise<T>): Promise<T> {
  const ns = (env as unknown as { SHARE: DurableObjectNamespace }).SHARE;
  return runInDurableObject(ns.getByName(`component/${name}`), (_obj, state: DurableObjectState) => {
    const sql = state.storage.sql;
    new SessionStore(sql); // the tables
    for (const t of ["session", "fid", "reply"]) sql.exec(`DELETE FROM ${t}`);
    return f(sql);
  });
}

const enc = new TextEncoder();

function nodeFid(fid: number, over: Partial<FidState> = {}): FidState {
  return { fid, kind: "node", ino: 100 + fid, top: 1, uid: 1000, open: null, dirOffset: 0, dirCookie: 0n, data: null, xattr: null, ...over };
}

describe("a session's rows", () => {
  it("give back the version, msize and every field of its fids", async () => {
    await onSql("store-fields", (sql) => {
      const s = new SessionStore(sql);
      s.create("s1");
      expect(s.load("s1")).toEqual({ sid: "s1", dialect: null, msize: 0, resumable: false, seq: 0, detachedAt: null });
      s.setVersion("s1", "9P2000.L", 65536);
      const open = nodeFid(1, { open: { flags: 2, replaced: 3 }, dirOffset: 4096, dirCookie: 0xfffffffffffffff0n });
      const xattr: FidState = {
        fid: 2,
        kind: "xattr",
        ino: 7,
        top: 1,
        uid: 0,
        open: null,
        dirOffset: 0,
        dirCookie: 0n,
        data: enc.encode("value so far"),
        xattr: { name: enc.encode("user.note"), flags: 1 },
      };
      s.putFid("s1", open);
      s.putFid("s1", xattr);
      s.putFid("s1", nodeFid(3));
      const again = new SessionStore(sql);
      expect(again.load("s1")).toMatchObject({ dialect: "9P2000.L", msize: 65536, resumable: false });
      const fids = again.fids("s1").sort((a, b) => a.fid - b.fid);
      expect(fids).toEqual([open, xattr, nodeFid(3)]);
      expect(fids[0]!.dirCookie, "a cookie past 2^63 survives as a bigint").toBe(0xfffffffffffffff0n);
      expect(again.fidTotal, "a fresh store counts the rows").toBe(3);
    });
  });

  it("replaces a fid's row on a second put and drops it on delete", async () => {
    await onSql("store-fid-update", (sql) => {
      const s = new SessionStore(sql);
      s.create("s1");
      s.putFid("s1", nodeFid(1));
      s.putFid("s1", nodeFid(1, { ino: 55, open: { flags: 0, replaced: 0 } }));
      expect(s.fids("s1")).toEqual([nodeFid(1, { ino: 55, open: { flags: 0, replaced: 0 } })]);
      s.putFid("s1", nodeFid(2));
      s.deleteFid("s1", 1);
      expect(s.fids("s1").map((f) => f.fid)).toEqual([2]);
      s.deleteFid("s1", 99); // no such fid: nothing happens
      expect(s.fids("s1")).toHaveLength(1);
    });
  });

  it("keeps each session's fids apart, and lists the inodes of open node fids", async () => {
    await onSql("store-open-nodes", (sql) => {
      const s = new SessionStore(sql);
      s.create("a");
      s.create("b");
      s.putFid("a", nodeFid(1, { ino: 10, open: { flags: 0, replaced: 0 } }));
      s.putFid("b", nodeFid(1, { ino: 10, open: { flags: 2, replaced: 0 } }));
      s.putFid("b", nodeFid(2, { ino: 11 })); // not open
      s.putFid("b", { ...nodeFid(3), kind: "xattr", ino: 12, open: { flags: 0, replaced: 0 } }); // not a node
      expect(s.fids("a")).toHaveLength(1);
      expect(s.fids("b")).toHaveLength(3);
      expect(s.openNodes().sort(), "one entry per open node fid").toEqual([10, 10]);
    });
  });

  it("ends a session: its fids, replies and row go, and no other session's", async () => {
    await onSql("store-end", (sql) => {
      const s = new SessionStore(sql);
      s.create("a");
      s.create("b", "hash");
      for (const f of [1, 2, 3]) s.putFid("a", nodeFid(f));
      s.putFid("b", nodeFid(1));
      s.keepReply("a", 5, 1, enc.encode("r"));
      s.keepReply("b", 5, 1, enc.encode("r"));
      s.fidTotal = 4;
      s.end("a", false);
      expect(s.load("a")).toBeNull();
      expect(s.fids("a")).toEqual([]);
      expect(s.keptReplies("a").size, "its kept replies go").toBe(0);
      expect(s.fidTotal, "a session not in memory uncounts its rows").toBe(1);
      expect(s.fids("b")).toHaveLength(1);
      expect(s.keptReplies("b").size).toBe(1);
      expect(s.count()).toBe(1);
      s.end("b", true);
      expect(s.fidTotal, "a session in memory had uncounted its fids itself").toBe(1);
      expect(s.count()).toBe(0);
    });
  });
});

describe("kept replies and request numbers", () => {
  it("keeps one reply per tag, the newest, and drops those the client has seen", async () => {
    await onSql("store-replies", (sql) => {
      const s = new SessionStore(sql);
      s.create("r", "hash");
      s.keepReply("r", 1, 10, enc.encode("first"));
      s.keepReply("r", 2, 11, enc.encode("second"));
      s.keepReply("r", 1, 12, enc.encode("third")); // tag 1 again
      const kept = s.keptReplies("r");
      expect([...kept.keys()].sort()).toEqual([1, 2]);
      expect(kept.get(1)).toEqual({ seq: 12, bytes: enc.encode("third") });
      expect(s.load("r")!.seq, "the last number is the highest kept one's").toBe(12);
      s.dropReplies("r", [1, 2]);
      expect(s.keptReplies("r").size).toBe(0);
      expect(s.load("r")!.seq, "dropped replies take their number with them").toBe(0);
      s.noteSeq("r", 12);
      s.noteSeq("r", 7); // never back
      expect(s.load("r")!.seq).toBe(12);
    });
  });

  it("keeps a reply's bytes, not a view of the caller's buffer", async () => {
    await onSql("store-reply-copy", (sql) => {
      const s = new SessionStore(sql);
      s.create("r");
      const buf = enc.encode("..reply..");
      s.keepReply("r", 1, 1, buf.subarray(2, 7));
      buf.fill(0);
      expect(new TextDecoder().decode(s.keptReplies("r").get(1)!.bytes)).toBe("reply");
    });
  });
});

describe("resuming", () => {
  it("tells a resumable session from a plain one and counts its sockets", async () => {
    await onSql("store-resume", (sql) => {
      const s = new SessionStore(sql);
      s.create("plain");
      s.create("res", "abc123");
      expect(s.resumeOf("plain")).toBeNull();
      expect(s.resumeOf("gone")).toBeNull();
      expect(s.resumeOf("res")).toEqual({ secretHash: "abc123", socketGen: 0 });
      expect(s.load("res")!.resumable).toBe(true);
      s.setDetached("res", 5000);
      expect(s.load("res")!.detachedAt).toBe(5000);
      expect(s.reattach("res"), "the first resume's socket").toBe(1);
      expect(s.load("res")!.detachedAt, "attached again").toBeNull();
      expect(s.reattach("res")).toBe(2);
      expect(s.resumeOf("res")!.socketGen).toBe(2);
    });
  });

  it("keeps the time a socket first went, and orders the detached sessions by it", async () => {
    await onSql("store-detached", (sql) => {
      const s = new SessionStore(sql);
      for (const sid of ["x", "y", "z", "live"]) s.create(sid, "h");
      s.setDetached("y", 300);
      s.setDetached("x", 100);
      s.setDetached("x", 900); // already detached: the first time stays
      s.setDetached("z", 200);
      expect(s.load("x")!.detachedAt).toBe(100);
      expect(s.countDetached()).toBe(3);
      expect(s.detachedSids().sort()).toEqual(["x", "y", "z"]);
      expect(s.detachedBefore(250).sort()).toEqual(["x", "z"]);
      expect(s.longestDetached(2)).toEqual(["x", "z"]);
      expect(s.oldestDetached()).toBe(100);
      s.end("x", true);
      expect(s.oldestDetached()).toBe(200);
    });
  });

  it("finds the sessions idle since a time", async () => {
    await onSql("store-idle", (sql) => {
      const s = new SessionStore(sql);
      s.create("old");
      s.create("new");
      s.touch("old", 1000);
      s.touch("new", 5000);
      expect(s.idleSince(2000)).toEqual(["old"]);
      expect(s.oldestActive()).toBe(1000);
      s.touch("old", 6000);
      expect(s.idleSince(2000)).toEqual([]);
      expect(s.oldestActive()).toBe(5000);
    });
  });
});

describe("after a restart", () => {
  it("ends the plain sessions with no socket, releasing their fids, and marks resumable ones detached", async () => {
    await onSql("store-sweep", (sql) => {
      const before = new SessionStore(sql);
      before.create("plain-gone");
      before.create("plain-live");
      before.create("res-gone", "h");
      before.putFid("plain-gone", nodeFid(1, { open: { flags: 0, replaced: 0 } }));
      before.putFid("plain-gone", nodeFid(2));
      before.putFid("plain-live", nodeFid(1));
      before.putFid("res-gone", nodeFid(1));
      before.keepReply("res-gone", 3, 4, enc.encode("kept"));
      // The object restarts: a new store on the same rows.
      const s = new SessionStore(sql);
      expect(s.fidTotal).toBe(4);
      const released: number[] = [];
      const gone = s.sweep(new Set(["plain-live"]), (f) => released.push(f.fid), 7000);
      expect(gone).toEqual(["plain-gone"]);
      expect(released.sort(), "each fid of the ended session is handed back").toEqual([1, 2]);
      expect(s.fidTotal).toBe(2);
      expect(s.load("plain-gone")).toBeNull();
      expect(s.load("plain-live")).toMatchObject({ detachedAt: null });
      expect(s.load("res-gone")).toMatchObject({ resumable: true, detachedAt: 7000, seq: 4 });
      expect(s.fids("res-gone")).toHaveLength(1);
      expect(s.keptReplies("res-gone").get(3)!.bytes).toEqual(enc.encode("kept"));
    });
  });

  it("drops session tables of an older shape instead of reading them wrong", async () => {
    await onSql("store-old-shape", (sql) => {
      const s = new SessionStore(sql);
      s.create("a");
      s.putFid("a", nodeFid(1));
      sql.exec(`ALTER TABLE fid DROP COLUMN xattr_flags`);
      const after = new SessionStore(sql);
      expect(after.count(), "the old release's sessions are gone").toBe(0);
      expect(after.fidTotal).toBe(0);
      after.create("b");
      after.putFid("b", nodeFid(1, { xattr: { name: enc.encode("user.x"), flags: 2 } }));
      expect(after.fids("b")[0]!.xattr).toEqual({ name: enc.encode("user.x"), flags: 2 });
    });
  });
});
