// The publisher (storage/publisher.ts, with uploads.ts and deletions.ts) on
// its own, on a real SqlStorage (a Durable Object of its own, with the
// share's schema) and the test env's real R2 bucket, under a prefix no
// other test uses, with no mount. The namespace, the journal and the job
// tables are built as storage/share-fs.ts builds them; the file changes
// that feed the publisher go through the share's own parts (changes.ts,
// writes.ts, opens.ts, removal.ts) and its reads through read-path.ts, as
// ShareFs wires them. The clock is the test's (PublisherDeps.now): nothing
// is due until the test moves it. Each test has its own object, prefix,
// files and keys.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { S_IF } from "../../protocol/index.ts";
import { Changes } from "../../storage/changes.ts";
import { ShareClock } from "../../storage/clock.ts";
import type { FsContext } from "../../storage/fs-context.ts";
import { Jobs } from "../../storage/jobs.ts";
import { Journal } from "../../storage/journal.ts";
import { LockTable } from "../../storage/locks.ts";
import { Namespace } from "../../storage/namespace.ts";
import { Opens } from "../../storage/opens.ts";
import { Publisher } from "../../storage/publisher.ts";
import { ReadPath } from "../../storage/read-path.ts";
import { Removal } from "../../storage/removal.ts";
import { ROOT_INO, migrate } from "../../storage/schema.ts";
import type { Inode, ShareOptions, Timespec } from "../../storage/types.ts";
import { Writes } from "../../storage/writes.ts";
import { Xattrs } from "../../storage/xattrs.ts";
import { FaultyBucket } from "./support/faults.ts";
import { BUCKET, bytes, noise, text } from "./support/gateway.ts";

const UID = 1000;
const GID = 1000;
/** Where the test clock starts (ms since the epoch). */
const T0 = 1_800_000_000_000;
const DELAY = 200;
const KiB = 1024;
const MiB = 1024 * KiB;

/** s3fs's form of a time, as metadata.ts documents it: "SEC", or "SEC.NNNNNNNNN" with nanoseconds. */
const s3fsTime = (t: Timespec) => (t.nsec === 0 ? `${t.sec}` : `${t.sec}.${String(t.nsec).padStart(9, "0")}`);

/** The share's parts around one Publisher, on one object's SQLite and R2 under `prefix`. */
interface Share {
  sql: SqlStorage;
  prefix: string;
  ns: Namespace;
  journal: Journal;
  jobs: Jobs;
  publisher: Publisher;
  changes: Changes;
  writes: Writes;
  opens: Opens;
  /** The bucket the publisher uses: the env's BUCKET, through a wrapper that injects faults and logs calls. */
  faulty: FaultyBucket;
  /** The publisher's clock (ms). */
  now: number;
  advance(ms: number): void;
  /** PublisherDeps.published calls. */
  published: { oldKey: string | null; key: string; etag: string; body: Uint8Array }[];
  logs: string[];
  /** Bytes of the in-flight budget taken and not released. */
  held: number;
  reserved: number[];
  /** Runs once, inside the publisher's next read of a file's content (after the bytes are read). */
  duringRead: ((file: Inode) => void | Promise<void>) | null;
  key(name: string): string;
  /** A new file (create, then one write), as a client makes it. */
  file(name: string, content?: Uint8Array): Promise<Inode>;
  get(ino: number): Inode;
}

function optionsFor(prefix: string, over: Partial<ShareOptions>): ShareOptions {
  return {
    prefix,
    uid: UID,
    gid: GID,
    fileMode: 0o644,
    dirMode: 0o755,
    revalidateMs: 1000,
    quotaBytes: 0,
    fsid: 1n,
    journalCap: 64 * MiB,
    maxFileBytes: 1024 * MiB,
    partMaxBytes: 64 * MiB,
    publishDelayMs: DELAY,
    multipartThreshold: 8 * MiB,
    maxDepth: 64,
    maxLocksPerSession: 100,
    maxLocksPerInode: 100,
    maxLocks: 1000,
    deviceNodes: true,
    ...over,
  };
}

/**
 * Runs `f` on a Share built on the SQLite of a Durable Object no share uses
 * (emptied first) and on R2 under `component-publisher/<name>` (emptied first).
 */
function onShare<T>(name: string, f: (s: Share) => Promise<T>, over: Partial<ShareOptions> = {}): Promise<T> {
  const objects = (env as unknown as { SHARE: DurableObjectNamespace }).SHARE;
  return runInDurableObject(objects.getByName(`component/publisher-${name}`), async (_obj, state: DurableObjectState) => {
    const sql = state.storage.sql;
    migrate(sql);
    for (const t of ["dirent", "extent", "xattr", "job", "upload", "lock", "inode", "meta"]) sql.exec(`DELETE FROM ${t}`);
    const prefix = `component-publisher/${name}`;
    for (let page = await BUCKET.list({ prefix: `${prefix}/` }); ; ) {
      if (page.objects.length) await BUCKET.delete(page.objects.map((o) => o.key));
      if (!page.truncated) break;
      page = await BUCKET.list({ prefix: `${prefix}/`, cursor: page.cursor });
    }
    const opts = optionsFor(prefix, over);
    // As ShareFs's constructor builds them.
    const ns = new Namespace(sql, opts);
    const clock = new ShareClock({ get: () => ns.meta("clock_ns") as string | null, set: (v) => ns.setMeta("clock_ns", v) });
    const journal = new Journal(sql, (n) => ns.setMeta("journal_bytes", n), (ns.meta("journal_bytes") as number | null) ?? 0);
    const jobs = new Jobs(sql);
    const faulty = new FaultyBucket(BUCKET);
    const bucket = faulty.asBucket();
    const reads = new ReadPath(sql, opts, {
      ns,
      journal,
      bucket: () => bucket,
      hold: () => () => {},
      afterReply: (_what, g) => void setTimeout(g, 0),
      log: (m) => s.logs.push(m),
      changedInR2: async () => {},
    });
    const scheduledByCreate = new Set<number>();
    const s = {
      sql,
      prefix,
      ns,
      journal,
      jobs,
      faulty,
      now: T0,
      advance(ms: number) {
        s.now += ms;
      },
      published: [],
      logs: [],
      held: 0,
      reserved: [],
      duringRead: null,
      key: (n: string) => `${prefix}/${n}`,
      get: (ino: number) => ns.get(ino)!,
    } as unknown as Share;
    s.publisher = new Publisher({
      ns,
      journal,
      jobs,
      bucket: () => bucket,
      read: async (file, off, into) => {
        const n = await reads.readContent(file, off, into);
        const during = s.duringRead;
        s.duringRead = null;
        await during?.(file);
        return n;
      },
      reserve: async (n) => {
        s.held += n;
        s.reserved.push(n);
        return () => void (s.held -= n);
      },
      log: (m) => s.logs.push(m),
      now: () => s.now,
      published: (oldKey, key, etag, body) => s.published.push({ oldKey, key, etag, body: body.slice() }),
    });
    const publisher = s.publisher;
    const removal = new Removal({
      ns,
      journal,
      locks: new LockTable(sql, { perSession: 100, perInode: 100, perShare: 1000 }),
      xattrs: new Xattrs(sql),
      publisher,
      forgotten: (ino) => scheduledByCreate.delete(ino),
    });
    const c: FsContext = {
      ns,
      journal,
      publisher,
      cache: reads.cache,
      readahead: reads.readahead,
      removal,
      opts,
      scheduledByCreate,
      tick: () => clock.tick(),
      get: (ino) => ns.get(ino)!,
      // Nothing in R2 under this prefix but what the publisher puts: no listing to do.
      refresh: async () => {},
    };
    s.changes = new Changes(c);
    s.writes = new Writes(c);
    s.opens = new Opens(c);
    s.file = async (n: string, content?: Uint8Array) => {
      const node = await s.changes.create(ROOT_INO, bytes(n), 0o644, UID, GID);
      if (content) s.writes.write(node.ino, 0, content, false, UID);
      return ns.get(node.ino)!;
    };
    return f(s);
  });
}

/** The object at `key`: its bytes, etag and custom metadata, or null. */
async function object(key: string): Promise<{ body: Uint8Array; etag: string; meta: Record<string, string> } | null> {
  const o = await BUCKET.get(key);
  if (o === null) return null;
  return { body: new Uint8Array(await o.arrayBuffer()), etag: o.etag, meta: o.customMetadata ?? {} };
}

/** Extent rows the journal holds for a file. */
const extents = (s: Share, ino: number) => s.sql.exec(`SELECT count(*) AS n FROM extent WHERE ino = ?`, ino).one().n as number;

/** A file that is published and clean: created, written, run at its publish time. */
async function publishedFile(s: Share, name: string, content: Uint8Array): Promise<Inode> {
  const f = await s.file(name, content);
  s.advance(DELAY);
  await s.publisher.runDue();
  const node = s.get(f.ino);
  expect(node.dirty, `${name} published`).toBe(false);
  return node;
}

describe("scheduling", () => {
  it("schedule sets a publish time and only ever moves it earlier", async () => {
    await onShare("schedule", async (s) => {
      const f = await s.file("a");
      s.ns.update(f.ino, { publish_after: null });
      const e0 = s.publisher.epoch;
      s.publisher.schedule(f.ino, 500);
      expect(s.get(f.ino).publishAfter, "none set: set").toBe(T0 + 500);
      expect(s.publisher.epoch, "a new time moves the epoch (the alarm may need to be earlier)").toBeGreaterThan(e0);
      const e1 = s.publisher.epoch;
      s.publisher.schedule(f.ino, 2000);
      expect(s.get(f.ino).publishAfter, "a later time keeps the earlier one").toBe(T0 + 500);
      expect(s.publisher.epoch, "nothing changed: the epoch stays").toBe(e1);
      s.publisher.schedule(f.ino, 100);
      expect(s.get(f.ino).publishAfter, "an earlier time replaces it").toBe(T0 + 100);
      s.advance(1000);
      s.publisher.schedule(f.ino, 0);
      expect(s.get(f.ino).publishAfter, "even 'now' is later than a time already past: kept").toBe(T0 + 100);
    });
  });

  it("scheduleNew gives the create's publish time without writing a row", async () => {
    await onShare("schedule-new", async (s) => {
      s.advance(1234);
      const e0 = s.publisher.epoch;
      const before = s.sql.exec(`SELECT count(*) AS n FROM inode WHERE publish_after IS NOT NULL`).one().n;
      expect(s.publisher.scheduleNew(DELAY)).toBe(T0 + 1234 + DELAY);
      expect(s.publisher.epoch).toBeGreaterThan(e0);
      expect(s.sql.exec(`SELECT count(*) AS n FROM inode WHERE publish_after IS NOT NULL`).one().n).toBe(before);
      const f = await s.file("created");
      expect(s.get(f.ino).publishAfter, "a create carries it in its own row").toBe(T0 + 1234 + DELAY);
    });
  });

  it("scheduleAfterClose keeps a time with at least half the delay left, else moves it to a full delay after the close", async () => {
    await onShare("schedule-after-close", async (s) => {
      const D = 1000;
      const f = await s.file("f");
      s.ns.update(f.ino, { publish_after: T0 + D });
      s.advance(400); // 600 ms left: at least half
      s.publisher.scheduleAfterClose(f.ino, D);
      expect(s.get(f.ino).publishAfter, "600 of 1000 ms left: kept").toBe(T0 + D);
      s.advance(100); // 500 left: exactly half
      s.publisher.scheduleAfterClose(f.ino, D);
      expect(s.get(f.ino).publishAfter, "500 of 1000 ms left: kept").toBe(T0 + D);
      s.advance(1); // 499 left
      s.publisher.scheduleAfterClose(f.ino, D);
      expect(s.get(f.ino).publishAfter, "less than half left: moved later, a full delay after the close").toBe(T0 + 501 + D);
      s.ns.update(f.ino, { publish_after: T0 + 10 * D });
      s.publisher.scheduleAfterClose(f.ino, D);
      expect(s.get(f.ino).publishAfter, "a time later than a full delay is kept too (only 'half left' is asked)").toBe(T0 + 10 * D);
      s.ns.update(f.ino, { publish_after: null });
      s.publisher.scheduleAfterClose(f.ino, D);
      expect(s.get(f.ino).publishAfter, "none set: a full delay after the close").toBe(T0 + 501 + D);
    });
  });

  it("nextWakeup is the earliest of the publishes and the jobs (upload claims not counted)", async () => {
    await onShare("next-wakeup", async (s) => {
      expect(s.publisher.nextWakeup(), "nothing to do").toBeNull();
      const a = await s.file("a");
      const b = await s.file("b");
      s.ns.update(a.ino, { publish_after: T0 + 5000 });
      s.ns.update(b.ino, { publish_after: T0 + 3000 });
      expect(s.publisher.nextWakeup()).toBe(T0 + 3000);
      s.jobs.claimUpload(s.key("in-flight"), a.ino);
      expect(s.publisher.nextWakeup(), "an upload in flight is not due").toBe(T0 + 3000);
      s.jobs.due(Number.MAX_SAFE_INTEGER, 10).forEach((j) => s.jobs.drop(j.id));
      // A deletion is due at once; one that failed waits for its retry.
      s.faulty.set([{ method: "delete", key: s.key("old"), times: 1 }]);
      s.publisher.deleteKey(s.key("old"));
      expect(s.publisher.nextWakeup(), "a new deletion job is due now").toBeLessThanOrEqual(s.now);
      await s.publisher.deletions.run(s.now, 10);
      expect(s.publisher.stats.failures, "the failed delete is counted").toBe(1);
      expect(s.publisher.nextWakeup(), "the failed deletion, retried a second later, is the earliest").toBe(T0 + 1000);
      s.advance(1000);
      await s.publisher.runDue();
      expect(s.jobs.count(), "the retry ran").toBe(0);
      expect(s.publisher.stats.deletes).toBe(1);
      expect(s.publisher.nextWakeup(), "back to the publishes").toBe(T0 + 3000);
    });
  });
});

describe("runDue", () => {
  it("publishes what is due, with its bytes and metadata, and leaves the file clean; not what is not due", async () => {
    await onShare("run-due", async (s) => {
      const content = bytes("the first file's bytes\n");
      const a = await s.file("a.txt", content);
      s.writes.setattr(a.ino, { mtime: { sec: 1_700_000_000, nsec: 5 }, atime: { sec: 1_700_000_001, nsec: 0 } }, UID);
      s.advance(100);
      const b = await s.file("b.txt", bytes("not yet"));
      expect(s.publisher.nextWakeup()).toBe(T0 + DELAY);
      s.advance(DELAY - 100 - 1);
      await s.publisher.runDue();
      expect(await BUCKET.head(s.key("a.txt")), "1 ms early: nothing").toBeNull();
      s.advance(1);
      await s.publisher.runDue();

      const obj = await object(s.key("a.txt"));
      expect(obj, "a.txt is at its key").not.toBeNull();
      expect(text(obj!.body)).toBe(text(content));
      const node = s.get(a.ino);
      expect(obj!.meta).toEqual({
        mode: String(S_IF.REG | 0o644),
        uid: String(UID),
        gid: String(GID),
        mtime: "1700000000.000000005",
        atime: "1700000001",
        ctime: s3fsTime(node.ctime),
      });
      expect(node).toMatchObject({ dirty: false, publishAfter: null, key: s.key("a.txt"), etag: obj!.etag, baseLen: content.byteLength, fromR2: true });
      expect(s.journal.fileBytes(a.ino), "the journal of a published file is cleared").toBe(0);
      expect(extents(s, a.ino), "no extent rows left").toBe(0);
      expect(s.published).toHaveLength(1);
      expect(s.published[0]).toMatchObject({ oldKey: null, key: s.key("a.txt"), etag: obj!.etag });
      expect(text(s.published[0]!.body)).toBe(text(content));
      expect(s.reserved, "the put's body was taken from the budget").toContain(content.byteLength);
      expect(s.held, "and given back").toBe(0);
      expect(s.jobs.count(), "its upload claim is dropped").toBe(0);

      expect(await BUCKET.head(s.key("b.txt")), "b.txt is not due yet").toBeNull();
      expect(s.get(b.ino)).toMatchObject({ dirty: true, publishAfter: T0 + 100 + DELAY, key: null });
      expect(s.journal.fileBytes(b.ino)).toBe(7);
      expect(s.publisher.stats.puts).toBe(1);

      expect(s.publisher.nextWakeup()).toBe(T0 + 100 + DELAY);
      s.advance(100);
      await s.publisher.runDue();
      expect(text((await object(s.key("b.txt")))!.body)).toBe("not yet");
      expect(s.get(b.ino).dirty).toBe(false);
      expect(s.publisher.nextWakeup(), "nothing left").toBeNull();
    });
  });

  it("waits for the close of a file still open with a small journal", async () => {
    await onShare("open-file", async (s) => {
      const f = await s.file("open.txt", bytes("still writing"));
      s.opens.opened(f.ino);
      s.advance(DELAY);
      await s.publisher.runDue();
      expect(await BUCKET.head(s.key("open.txt")), "open: not published").toBeNull();
      expect(s.get(f.ino)).toMatchObject({ dirty: true, publishAfter: null });
      s.opens.closed(f.ino);
      expect(s.get(f.ino).publishAfter, "the close schedules it").toBe(s.now + DELAY);
      s.advance(DELAY);
      await s.publisher.runDue();
      expect(text((await object(s.key("open.txt")))!.body)).toBe("still writing");
      expect(s.get(f.ino).dirty).toBe(false);
    });
  });

  it("publishes a directory as a marker and a symlink as its target", async () => {
    await onShare("dir-link", async (s) => {
      const d = await s.changes.mkdir(ROOT_INO, bytes("d"), 0o750, UID, GID);
      const l = await s.changes.symlink(d.ino, bytes("ln"), bytes("../somewhere"), UID, GID);
      s.advance(DELAY);
      await s.publisher.runDue();
      const marker = await object(s.key("d/"));
      expect(marker?.body.byteLength, "d/ is an empty marker").toBe(0);
      expect(marker!.meta.mode).toBe(String(S_IF.DIR | 0o750));
      const link = await object(s.key("d/ln"));
      expect(text(link!.body)).toBe("../somewhere");
      expect(link!.meta.mode).toBe(String(S_IF.LNK | 0o777));
      expect(s.get(d.ino).dirty || s.get(l.ino).dirty).toBe(false);
      expect(s.published, "published names regular files' bodies only").toHaveLength(0);
    });
  });
});

describe("changes during a publish", () => {
  it("a file written while its publish ran is published again, at most once a second per key", async () => {
    await onShare("generation", async (s) => {
      const f = await s.file("g.txt", bytes("version one"));
      s.advance(DELAY);
      s.duringRead = (file) => {
        s.writes.write(file.ino, 0, bytes("VERSION TWO!"), false, UID);
      };
      await s.publisher.runDue();
      const first = await object(s.key("g.txt"));
      expect(text(first!.body), "the object holds the snapshot read").toBe("version one");
      const node = s.get(f.ino);
      expect(node, "still dirty: the write came after the snapshot").toMatchObject({ dirty: true, key: s.key("g.txt"), etag: first!.etag });
      expect(node.baseLen, "the object holds the snapshot's bytes").toBe(11);
      expect(s.journal.fileBytes(f.ino), "the write's bytes are still in the journal").toBe(12);
      expect(node.publishAfter, "rescheduled").toBe(s.now + DELAY);

      // Due again after DELAY, but the key was put less than a second ago.
      s.advance(DELAY);
      await s.publisher.runDue();
      expect((await object(s.key("g.txt")))!.etag, "not within a second of the last put").toBe(first!.etag);
      expect(s.get(f.ino).publishAfter, "moved to a second after that put").toBe(T0 + DELAY + 1000);

      s.advance(1000 - DELAY);
      await s.publisher.runDue();
      const second = await object(s.key("g.txt"));
      expect(text(second!.body)).toBe("VERSION TWO!");
      expect(s.get(f.ino)).toMatchObject({ dirty: false, publishAfter: null, etag: second!.etag, baseLen: 12 });
      expect(s.journal.fileBytes(f.ino)).toBe(0);
      expect(s.publisher.stats.puts).toBe(2);
      expect(s.jobs.count(), "the object was replaced in place: nothing to delete").toBe(0);
    });
  });

  it("a file truncated and written past the cut while its publish ran: the bytes past the cut are not taken from the object", async () => {
    await onShare("truncated-during", async (s) => {
      const f = await publishedFile(s, "t.bin", bytes("0123456789"));
      s.writes.write(f.ino, 0, bytes("ab"), false, UID);
      s.publisher.schedule(f.ino, 0);
      s.advance(1000);
      s.duringRead = (file) => {
        s.writes.setattr(file.ino, { size: 4 }, UID);
        s.writes.write(file.ino, 8, bytes("XY"), false, UID);
      };
      await s.publisher.runDue();
      expect(text((await object(s.key("t.bin")))!.body), "the snapshot").toBe("ab23456789");
      expect(s.get(f.ino)).toMatchObject({ dirty: true, size: 10, baseLen: 4 });
      s.advance(1000);
      await s.publisher.runDue();
      expect(text((await object(s.key("t.bin")))!.body), "4..8 are the truncate's hole, not the snapshot's bytes").toBe("ab23\0\0\0\0XY");
      expect(s.get(f.ino).dirty).toBe(false);
    });
  });

  it("a file unlinked while its publish ran: the object that arrived is deleted", async () => {
    await onShare("unlinked-during", async (s) => {
      await s.file("brief.txt", bytes("here and gone"));
      s.advance(DELAY);
      s.duringRead = () => s.changes.unlink(ROOT_INO, bytes("brief.txt"), false);
      await s.publisher.runDue();
      expect(await BUCKET.head(s.key("brief.txt")), "the put landed and its deletion ran").toBeNull();
      expect(s.publisher.stats).toMatchObject({ puts: 1, deletes: 1 });
      expect(s.jobs.count()).toBe(0);
    });
  });
});

describe("deletions", () => {
  it("a rename after publishing queues the old key's deletion with its etag; runDue deletes it", async () => {
    await onShare("rename", async (s) => {
      const f = await publishedFile(s, "before.txt", bytes("moving bytes"));
      const oldEtag = f.etag!;
      await s.changes.rename(ROOT_INO, bytes("before.txt"), ROOT_INO, bytes("after.txt"));
      expect(s.get(f.ino)).toMatchObject({ dirty: true, key: s.key("before.txt"), publishAfter: s.now + DELAY });
      s.advance(DELAY);
      await s.publisher.publish(f.ino);
      // The content came from the old object (nothing in the journal).
      expect(text((await object(s.key("after.txt")))!.body)).toBe("moving bytes");
      expect(s.get(f.ino)).toMatchObject({ dirty: false, key: s.key("after.txt") });
      expect(
        s.jobs.due(s.now, 10).map((j) => ({ kind: j.kind, key: j.key, etag: j.etag })),
        "the old key's deletion is queued, with the etag it had",
      ).toEqual([{ kind: "delete", key: s.key("before.txt"), etag: oldEtag }]);
      expect(await BUCKET.head(s.key("before.txt")), "not deleted before the job runs").not.toBeNull();
      expect(s.published.at(-1)).toMatchObject({ oldKey: s.key("before.txt"), key: s.key("after.txt") });

      await s.publisher.runDue();
      expect(await BUCKET.head(s.key("before.txt")), "the job deleted it").toBeNull();
      expect(await BUCKET.head(s.key("after.txt"))).not.toBeNull();
      expect(s.jobs.count()).toBe(0);
      expect(s.publisher.stats.deletes).toBe(1);
    });
  });

  it("an unlink after publishing queues the key's deletion; runDue deletes it", async () => {
    await onShare("unlink", async (s) => {
      const f = await publishedFile(s, "doomed.txt", bytes("short-lived"));
      await s.changes.unlink(ROOT_INO, bytes("doomed.txt"), false);
      expect(s.ns.get(f.ino), "the inode went").toBeNull();
      expect(s.jobs.due(s.now, 10).map((j) => ({ kind: j.kind, key: j.key, etag: j.etag }))).toEqual([
        { kind: "delete", key: s.key("doomed.txt"), etag: f.etag },
      ]);
      expect(s.publisher.nextWakeup(), "due at once").toBeLessThanOrEqual(s.now);
      await s.publisher.runDue();
      expect(await BUCKET.head(s.key("doomed.txt"))).toBeNull();
      expect(s.jobs.count()).toBe(0);
      expect(s.publisher.stats.deletes).toBe(1);
    });
  });

  it("a deletion with an etag leaves alone an object another tool put at that key since; one without deletes it", async () => {
    await onShare("etag-guard", async (s) => {
      const f = await publishedFile(s, "shared.txt", bytes("ours"));
      const theirs = await BUCKET.put(s.key("shared.txt"), "another tool's");
      expect(theirs!.etag).not.toBe(f.etag);
      await s.changes.unlink(ROOT_INO, bytes("shared.txt"), false);
      expect(s.jobs.due(s.now, 10)[0]).toMatchObject({ key: s.key("shared.txt"), etag: f.etag });
      await s.publisher.runDue();
      const left = await object(s.key("shared.txt"));
      expect(left && text(left.body), "another tool's object is kept").toBe("another tool's");
      expect(s.jobs.count(), "the job is done all the same").toBe(0);
      expect(s.publisher.stats.deletes).toBe(0);

      s.publisher.deleteKey(s.key("shared.txt"));
      await s.publisher.runDue();
      expect(await BUCKET.head(s.key("shared.txt")), "with no etag, whatever is there goes").toBeNull();
      expect(s.publisher.stats.deletes).toBe(1);
    });
  });

  it("never deletes an object an inode still publishes at", async () => {
    await onShare("in-use", async (s) => {
      const f = await publishedFile(s, "kept.txt", bytes("in use"));
      s.publisher.deleteKey(f.key!, f.etag);
      await s.publisher.runDue();
      expect(await BUCKET.head(f.key!), "the inode's object stays").not.toBeNull();
      expect(s.jobs.count()).toBe(0);
    });
  });
});

describe("multipart", () => {
  it("a file larger than the threshold goes up as a multipart upload; one at the threshold as one put", async () => {
    const threshold = 64 * KiB;
    await onShare(
      "multipart",
      async (s) => {
        const big = noise(200 * KiB, 7);
        const edge = noise(threshold, 8);
        const b = await s.file("big.bin", big);
        const e = await s.file("edge.bin", edge);
        s.advance(DELAY);
        await s.publisher.runDue();
        const calls = (k: string) => s.faulty.calls.filter((c) => c.key === k).map((c) => c.method);
        expect(calls(s.key("big.bin")), "200 KiB, past 64 KiB: multipart").toEqual(expect.arrayContaining(["createMultipartUpload", "uploadPart", "complete"]));
        expect(calls(s.key("big.bin")), "no plain put of the large file").not.toContain("put");
        expect(calls(s.key("edge.bin")), "exactly the threshold: one put").toEqual(["put"]);
        expect(s.publisher.stats).toMatchObject({ multiparts: 1, puts: 1 });

        const obj = await object(s.key("big.bin"));
        expect(obj!.body.byteLength).toBe(big.byteLength);
        expect(obj!.body.every((x, i) => x === big[i]), "the multipart object holds the file's bytes").toBe(true);
        const node = s.get(b.ino);
        expect(obj!.meta).toMatchObject({ mode: String(S_IF.REG | 0o644), uid: String(UID), mtime: s3fsTime(node.mtime) });
        expect(node).toMatchObject({ dirty: false, key: s.key("big.bin"), etag: obj!.etag, baseLen: big.byteLength });
        expect(s.jobs.upload(b.ino), "the upload's progress row is gone").toBeNull();
        expect(s.journal.fileBytes(b.ino)).toBe(0);
        expect(s.held).toBe(0);
        expect(s.published.map((p) => p.key), "published names one-put bodies only").toEqual([s.key("edge.bin")]);
        expect((await object(s.key("edge.bin")))!.body.byteLength).toBe(threshold);
        expect(s.get(e.ino).dirty).toBe(false);
      },
      { multipartThreshold: threshold },
    );
  });
});

describe("publishAll", () => {
  it("leaves nothing dirty and no job", async () => {
    await onShare("publish-all", async (s) => {
      await publishedFile(s, "before-move.txt", bytes("moved"));
      await publishedFile(s, "gone.txt", bytes("unlinked"));
      await s.changes.rename(ROOT_INO, bytes("before-move.txt"), ROOT_INO, bytes("moved.txt"));
      await s.changes.unlink(ROOT_INO, bytes("gone.txt"), false);
      await s.file("new.txt", bytes("never published"));
      const open = await s.file("open.txt", bytes("open for writing"));
      s.opens.opened(open.ino);
      const d = await s.changes.mkdir(ROOT_INO, bytes("d"), 0o755, UID, GID);
      const x = await s.changes.create(d.ino, bytes("x"), 0o600, UID, GID);
      s.writes.write(x.ino, 0, bytes("deeper"), false, UID);
      await s.changes.symlink(ROOT_INO, bytes("ln"), bytes("d/x"), UID, GID);
      expect(s.ns.dirtyInodes().length).toBeGreaterThan(0);
      expect(s.jobs.count()).toBeGreaterThan(0);

      await s.publisher.publishAll(); // no time passes on the test's clock
      expect(s.ns.dirtyInodes(), "nothing dirty").toEqual([]);
      expect(s.jobs.count(), "no job").toBe(0);
      const keys = (await BUCKET.list({ prefix: `${s.prefix}/` })).objects.map((o) => o.key.slice(s.prefix.length + 1)).sort();
      expect(keys).toEqual(["d/", "d/x", "ln", "moved.txt", "new.txt", "open.txt"]);
      expect(text((await object(s.key("open.txt")))!.body), "an open file too").toBe("open for writing");
      expect(text((await object(s.key("moved.txt")))!.body)).toBe("moved");
    });
  });
});

describe("failures", () => {
  it("a failed put is retried with backoff, counted, and the file stays dirty until it lands", async () => {
    await onShare("put-fails", async (s) => {
      const f = await s.file("flaky.txt", bytes("eventually"));
      const key = s.key("flaky.txt");
      s.faulty.set([{ method: "put", key, times: 2 }]);
      const puts = () => s.faulty.calls.filter((c) => c.method === "put" && c.key === key).length;
      s.advance(DELAY);
      const t1 = s.now;
      await s.publisher.runDue();
      expect(s.publisher.stats.failures).toBe(1);
      expect(s.get(f.ino)).toMatchObject({ dirty: true, key: null, publishAfter: t1 + 1000 });
      expect(s.journal.fileBytes(f.ino), "the journal keeps the bytes").toBe(10);
      expect(s.logs.some((l) => l.includes("attempt 1") && l.includes("injected R2 failure"))).toBe(true);
      expect(s.held, "the failed put gave its budget back").toBe(0);
      expect(s.jobs.count(), "and its upload claim").toBe(0);

      s.advance(999);
      await s.publisher.runDue();
      expect(puts(), "not retried before its time").toBe(1);

      s.advance(1);
      await s.publisher.runDue();
      expect(puts()).toBe(2);
      expect(s.publisher.stats.failures).toBe(2);
      expect(s.get(f.ino).publishAfter, "the second failure waits twice as long").toBe(t1 + 1000 + 2000);
      expect(s.get(f.ino).dirty).toBe(true);

      s.advance(2000);
      await s.publisher.runDue();
      expect(text((await object(key))!.body)).toBe("eventually");
      expect(s.get(f.ino)).toMatchObject({ dirty: false, publishAfter: null });
      expect(s.journal.fileBytes(f.ino)).toBe(0);
      expect(s.publisher.stats).toMatchObject({ failures: 2, puts: 1 });

      // A success starts the backoff over.
      s.writes.write(f.ino, 0, bytes("E"), false, UID);
      s.publisher.schedule(f.ino, 0);
      s.advance(1000);
      s.faulty.set([{ method: "put", key, times: 1 }]);
      await s.publisher.runDue();
      expect(s.publisher.stats.failures).toBe(3);
      expect(s.get(f.ino).publishAfter, "one second again after a success").toBe(s.now + 1000);
    });
  });
});
