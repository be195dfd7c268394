// POSIX byte-range locks as a hostile client would use them: a lock the
// fid's open mode does not allow, locks past the caps, and many locks held
// while others lock, unlock and stat.

import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type Client, ERRNO, LOCK_STATUS, LOCK_TYPE } from "../../protocol/index.ts";
import type { ShareFs } from "../../storage/share-fs.ts";
import type { ShareObject } from "../../worker/share-object.ts";
import { clunk, getattr, mkdir, openFile, walkTo, writeFile } from "./support/fs.ts";
import { BUCKET, listDir, mount, put, resumable, resume, shareObject, sleep } from "./support/gateway.ts";

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_RDWR = 2;

/** Tlock, non-blocking unless `flags` says so. */
function lock(c: Client, fid: number, type: number, start = 0, length = 0, owner = { proc: 1, client: "host" }, flags = 0) {
  return c.request({
    type: "Tlock",
    fid,
    lock_type: type,
    flags,
    start: BigInt(start),
    length: BigInt(length),
    proc_id: owner.proc,
    client_id: owner.client,
  });
}

function getlock(c: Client, fid: number, type: number, start = 0, length = 0, owner = { proc: 1, client: "host" }) {
  return c.request({ type: "Tgetlock", fid, lock_type: type, start: BigInt(start), length: BigInt(length), proc_id: owner.proc, client_id: owner.client });
}

describe("a lock needs a fid open in a mode that allows it", () => {
  it("refuses a write lock on a fid open for reading and a read lock on one open for writing (EBADF)", async () => {
    const { client: a } = await mount();
    const { client: b } = await mount();
    await writeFile(a, "modes.txt", "0123456789");
    const ro = await openFile(a, "modes.txt", O_RDONLY);
    const wo = await openFile(a, "modes.txt", O_WRONLY);
    const rw = await openFile(a, "modes.txt", O_RDWR);
    await expect(lock(a, ro, LOCK_TYPE.WRLCK)).rejects.toMatchObject({ errno: ERRNO.EBADF });
    await expect(lock(a, wo, LOCK_TYPE.RDLCK)).rejects.toMatchObject({ errno: ERRNO.EBADF });
    // The refused write lock left nothing: another session takes the whole file.
    const other = await openFile(b, "modes.txt", O_RDWR);
    expect((await lock(b, other, LOCK_TYPE.WRLCK, 0, 0, { proc: 9, client: "b" })).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(b, other, LOCK_TYPE.UNLCK, 0, 0, { proc: 9, client: "b" })).status).toBe(LOCK_STATUS.SUCCESS);
    // What each mode allows.
    expect((await lock(a, ro, LOCK_TYPE.RDLCK, 0, 2)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(a, wo, LOCK_TYPE.WRLCK, 4, 2)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(a, rw, LOCK_TYPE.RDLCK, 8, 1)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(a, rw, LOCK_TYPE.WRLCK, 8, 1)).status).toBe(LOCK_STATUS.SUCCESS);
    // Unlocking is allowed on any open fid, whatever its mode (fs/locks.c
    // check_fmode_for_setlk checks only F_RDLCK and F_WRLCK).
    expect((await lock(a, ro, LOCK_TYPE.UNLCK, 4, 2)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(a, wo, LOCK_TYPE.UNLCK, 0, 2)).status).toBe(LOCK_STATUS.SUCCESS);
    // Tgetlock is a query: any open fid may ask about either type.
    expect((await getlock(b, other, LOCK_TYPE.WRLCK)).lock_type).toBe(LOCK_TYPE.WRLCK);
    const rdOnly = await openFile(b, "modes.txt", O_RDONLY);
    expect((await getlock(b, rdOnly, LOCK_TYPE.WRLCK, 0, 8, { proc: 9, client: "b" })).lock_type).toBe(LOCK_TYPE.UNLCK);
  });

  it("refuses every lock request and query on a fid that is not open (EBADF)", async () => {
    const { client: c } = await mount();
    await writeFile(c, "unopened.txt", "x");
    const fid = await walkTo(c, "unopened.txt");
    for (const t of [LOCK_TYPE.RDLCK, LOCK_TYPE.WRLCK, LOCK_TYPE.UNLCK]) {
      await expect(lock(c, fid, t)).rejects.toMatchObject({ errno: ERRNO.EBADF });
    }
    await expect(getlock(c, fid, LOCK_TYPE.WRLCK)).rejects.toMatchObject({ errno: ERRNO.EBADF });
  });

  it("refuses a lock whose client_id is over 255 bytes (every entry keeps it)", async () => {
    const { client: c } = await mount();
    await writeFile(c, "long-id.txt", "x");
    const fid = await openFile(c, "long-id.txt", O_RDWR);
    await expect(lock(c, fid, LOCK_TYPE.WRLCK, 0, 0, { proc: 1, client: "h".repeat(256) })).rejects.toMatchObject({ errno: ERRNO.EINVAL });
    expect((await lock(c, fid, LOCK_TYPE.WRLCK, 0, 0, { proc: 1, client: "h".repeat(255) })).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await getlock(c, fid, LOCK_TYPE.WRLCK, 0, 0, { proc: 2, client: "h".repeat(255) })).client_id).toEqual(new TextEncoder().encode("h".repeat(255)));
  });

  it("gives no write lock on a read-only share, where no fid can be open for writing", async () => {
    await put("ro", "locked.txt", "read me");
    const { client: a } = await mount("ro");
    const { client: b } = await mount("ro");
    const fa = await openFile(a, "locked.txt", O_RDONLY);
    await expect(openFile(a, "locked.txt", O_RDWR)).rejects.toMatchObject({ errno: ERRNO.EROFS });
    await expect(lock(a, fa, LOCK_TYPE.WRLCK)).rejects.toMatchObject({ errno: ERRNO.EBADF });
    // Read locks are shared: a reader blocks no other reader.
    const fb = await openFile(b, "locked.txt", O_RDONLY);
    expect((await lock(a, fa, LOCK_TYPE.RDLCK)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(b, fb, LOCK_TYPE.RDLCK, 0, 0, { proc: 2, client: "b" })).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await getlock(b, fb, LOCK_TYPE.WRLCK, 0, 0, { proc: 2, client: "b" })).lock_type).toBe(LOCK_TYPE.RDLCK);
  });
});

/** The SQLite rows the share's lock table has read and written so far. */
function lockRows(): Promise<{ read: number; written: number }> {
  return runInDurableObject(shareObject(), (obj: ShareObject) => ({ ...(obj as unknown as { ready: { fs: ShareFs } }).ready.fs.locks.rows }));
}

const diffRows = (a: { read: number; written: number }, b: { read: number; written: number }) => ({ read: b.read - a.read, written: b.written - a.written });

const GETATTR_BASIC = 0x7ffn;

describe("many locks held", () => {
  it("costs a lock, an unlock and a bystander's getattr no more with 10,000 locks held than with 10", { timeout: 600_000 }, async () => {
    const { client: a } = await mount(); // takes one-byte locks at even offsets
    const { client: b } = await mount(); // a bystander on the same file
    const x = await mount(); // another session that holds one lock and leaves
    await writeFile(a, "crowded.bin", "x");
    const fa = await openFile(a, "crowded.bin", O_RDWR);
    const fb = await openFile(b, "crowded.bin", O_RDWR);
    const fx = await openFile(x.client, "crowded.bin", O_RDWR);
    const bystander = { proc: 7, client: "bystander" };
    let held = 0;
    const holdUpTo = async (n: number) => {
      while (held < n) {
        const from = held;
        const batch = Math.min(256, n - from);
        const got = await Promise.all(Array.from({ length: batch }, (_, i) => lock(a, fa, LOCK_TYPE.WRLCK, 2 * (from + i), 1)));
        expect(got.every((r) => r.status === LOCK_STATUS.SUCCESS)).toBe(true);
        held += batch;
      }
      // Each is a lock of its own: the last byte is held, the gap after it is free.
      expect((await getlock(b, fb, LOCK_TYPE.RDLCK, 2 * (n - 1), 1, bystander)).lock_type).toBe(LOCK_TYPE.WRLCK);
      expect((await getlock(b, fb, LOCK_TYPE.WRLCK, 2 * n - 1, 1, bystander)).lock_type).toBe(LOCK_TYPE.UNLCK);
    };
    const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
      const t = performance.now();
      const r = await f();
      return [r, performance.now() - t];
    };
    const probe = async (n: number) => {
      await holdUpTo(n);
      const far = 4 * n + 1_000_000;
      const mid = 2 * (n >> 1);
      const r0 = await lockRows();
      const [l, lockMs] = await timed(() => lock(b, fb, LOCK_TYPE.WRLCK, far, 10, bystander));
      expect(l.status).toBe(LOCK_STATUS.SUCCESS);
      const r1 = await lockRows();
      const [, unlockMs] = await timed(() => lock(b, fb, LOCK_TYPE.UNLCK, far, 10, bystander));
      const r2 = await lockRows();
      // The holder gives one byte back in the middle and takes it again.
      await lock(a, fa, LOCK_TYPE.UNLCK, mid, 1);
      const r3 = await lockRows();
      expect((await lock(a, fa, LOCK_TYPE.WRLCK, mid, 1)).status).toBe(LOCK_STATUS.SUCCESS);
      const r4 = await lockRows();
      const [, getattrMs] = await timed(() => b.request({ type: "Tgetattr", fid: fb, request_mask: GETATTR_BASIC }));
      // A burst of 100 lock requests from the holder, and a getattr behind it.
      const burst = Array.from({ length: 50 }, (_, i) => [
        lock(a, fa, LOCK_TYPE.UNLCK, 2 * i, 1),
        lock(a, fa, LOCK_TYPE.WRLCK, 2 * i, 1),
      ]).flat();
      const [, behindMs] = await timed(() => b.request({ type: "Tgetattr", fid: fb, request_mask: GETATTR_BASIC }));
      await Promise.all(burst);
      console.log(
        `locks: ${n} held: bystander lock ${lockMs.toFixed(2)} ms, unlock ${unlockMs.toFixed(2)} ms, ` +
          `getattr ${getattrMs.toFixed(2)} ms, getattr behind a burst of 100 Tlocks ${behindMs.toFixed(2)} ms`,
      );
      return { lock: diffRows(r0, r1), unlock: diffRows(r1, r2), splitUnlock: diffRows(r2, r3), relock: diffRows(r3, r4) };
    };
    // The first lock of each session counts what it holds (once).
    await lock(x.client, fx, LOCK_TYPE.WRLCK, 1, 1, { proc: 3, client: "x" });
    await lock(b, fb, LOCK_TYPE.WRLCK, 1 << 30, 1, bystander);
    await lock(b, fb, LOCK_TYPE.UNLCK, 1 << 30, 1, bystander);
    const few = await probe(10);
    expect(few.lock.written).toBeGreaterThan(0);
    // SQLite rows per request do not grow with the locks held.
    expect(await probe(1000)).toEqual(few);
    expect(await probe(10_000)).toEqual(few);
    // A session that ends drops its own rows only.
    const before = await lockRows();
    x.ws.close(1000);
    for (let i = 0; i < 200 && (await getlock(b, fb, LOCK_TYPE.WRLCK, 1, 1, bystander)).lock_type !== LOCK_TYPE.UNLCK; i++) await sleep(10);
    expect((await getlock(b, fb, LOCK_TYPE.WRLCK, 1, 1, bystander)).lock_type).toBe(LOCK_TYPE.UNLCK);
    const drop = diffRows(before, await lockRows());
    expect(drop.read).toBeLessThanOrEqual(4);
    expect(drop.written).toBeLessThanOrEqual(4);
  });
});

describe("locks in SQLite", () => {
  it("keeps a resumable session's locks across a restart of the object", async () => {
    const a = await resumable();
    await writeFile(a.client, "kept.txt", "x");
    const fa = await openFile(a.client, "kept.txt", O_RDWR);
    expect((await lock(a.client, fa, LOCK_TYPE.WRLCK, 10, 5)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(a.client, fa, LOCK_TYPE.RDLCK, 20, 0)).status).toBe(LOCK_STATUS.SUCCESS);
    await abortAllDurableObjects();
    const { client: b } = await mount();
    const fb = await openFile(b, "kept.txt", O_RDWR);
    const other = { proc: 5, client: "b" };
    expect((await lock(b, fb, LOCK_TYPE.RDLCK, 12, 1, other)).status).toBe(LOCK_STATUS.BLOCKED);
    expect((await lock(b, fb, LOCK_TYPE.RDLCK, 25, 1, other)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(b, fb, LOCK_TYPE.WRLCK, 30, 1, other)).status).toBe(LOCK_STATUS.BLOCKED);
    expect((await lock(b, fb, LOCK_TYPE.WRLCK, 15, 5, other)).status).toBe(LOCK_STATUS.SUCCESS);
    const { client: c } = await resume(a.token);
    expect((await lock(c, fa, LOCK_TYPE.UNLCK, 0, 0)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(b, fb, LOCK_TYPE.WRLCK, 0, 0, other)).status).toBe(LOCK_STATUS.SUCCESS);
  });

  it("takes over the locks of an object whose lock table has the first release's shape", async () => {
    const a = await resumable();
    await writeFile(a.client, "old-shape.txt", "x");
    const fa = await openFile(a.client, "old-shape.txt", O_RDWR);
    expect((await lock(a.client, fa, LOCK_TYPE.WRLCK, 0, 100)).status).toBe(LOCK_STATUS.SUCCESS);
    // The table as the first release created it, holding that lock.
    await runInDurableObject(shareObject(), (_o: unknown, state) => {
      const sql = state.storage.sql;
      const rows = sql.exec(`SELECT ino, sid, proc_id, client_id, type, start, end FROM lock`).toArray();
      sql.exec(`DROP TABLE lock`);
      sql.exec(`CREATE TABLE lock (ino INTEGER NOT NULL, sid TEXT NOT NULL, proc_id INTEGER NOT NULL, client_id BLOB NOT NULL, type INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL)`);
      sql.exec(`CREATE INDEX lock_ino ON lock (ino)`);
      for (const r of rows) sql.exec(`INSERT INTO lock VALUES (?, ?, ?, ?, ?, ?, ?)`, r.ino, r.sid, r.proc_id, r.client_id, r.type, r.start, r.end);
    });
    await abortAllDurableObjects();
    const { client: b } = await mount();
    const fb = await openFile(b, "old-shape.txt", O_RDWR);
    const other = { proc: 5, client: "b" };
    expect((await lock(b, fb, LOCK_TYPE.RDLCK, 50, 1, other)).status).toBe(LOCK_STATUS.BLOCKED);
    const { client: c } = await resume(a.token);
    expect((await lock(c, fa, LOCK_TYPE.UNLCK, 40, 20)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(b, fb, LOCK_TYPE.WRLCK, 50, 1, other)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(b, fb, LOCK_TYPE.RDLCK, 39, 1, other)).status).toBe(LOCK_STATUS.BLOCKED);
    expect((await lock(b, fb, LOCK_TYPE.RDLCK, 60, 1, other)).status).toBe(LOCK_STATUS.BLOCKED);
  });
});

describe("a locked file another tool deleted from R2", () => {
  it("loses its locks when a listing finds its object gone, as an unlink here would drop them, and queues no R2 delete", async () => {
    const { client: c } = await mount();
    await mkdir(c, "gone-dir");
    await writeFile(c, "gone-dir/locked.txt", "0123456789");
    await shareObject().publishAll();
    expect(await BUCKET.head("main/gone-dir/locked.txt")).not.toBeNull();
    const ino = Number((await getattr(c, "gone-dir/locked.txt")).qid.path);
    // Locked, then closed without an unlock: the locks stay the session's.
    const fid = await openFile(c, "gone-dir/locked.txt", O_RDWR);
    expect((await lock(c, fid, LOCK_TYPE.WRLCK, 0, 4)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(c, fid, LOCK_TYPE.RDLCK, 6, 0)).status).toBe(LOCK_STATUS.SUCCESS);
    await clunk(c, fid);
    const held = (ino: number) =>
      runInDurableObject(shareObject(), async (obj: ShareObject, state) => ({
        rows: state.storage.sql.exec(`SELECT count(*) AS n FROM lock WHERE ino = ?`, ino).one().n as number,
        // The importer never queues an R2 delete: the object is gone already.
        jobs: state.storage.sql.exec(`SELECT count(*) AS n FROM job WHERE key = 'main/gone-dir/locked.txt'`).one().n as number,
        conflict: (obj as unknown as { ready: { fs: ShareFs } }).ready.fs.lockConflict({
          ino,
          sid: "someone-else",
          procId: 9,
          clientId: new TextEncoder().encode("other"),
          type: LOCK_TYPE.WRLCK,
          start: 0,
          length: 0,
        }),
      }));
    expect(await held(ino)).toMatchObject({ rows: 2, jobs: 0 });
    // Another tool deletes the object; the directory is listed again past the revalidation time.
    await BUCKET.delete("main/gone-dir/locked.txt");
    await sleep(1100);
    expect((await listDir(c, "gone-dir")).entries.map((e) => e.name)).not.toContain("locked.txt");
    await expect(walkTo(c, "gone-dir/locked.txt")).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    expect(await held(ino)).toEqual({ rows: 0, jobs: 0, conflict: null });
  });
});

describe("lock semantics", () => {
  it("agree with a byte-by-byte model through 3,000 random requests of three owners, also once reloaded from SQLite", async () => {
    await mount(); // the share's object is set up
    await runInDurableObject(shareObject(), async (obj: ShareObject, state) => {
      const { LockTable } = await import("../../storage/locks.ts");
      const locks = (obj as unknown as { ready: { fs: ShareFs } }).ready.fs.locks;
      const sql = state.storage.sql;
      const ino = 900_000_001; // no such file: the table does not care
      const N = 40; // cells 0..N-1 are bytes, cell N stands for [N, EOF)
      const owners = [
        { sid: "model-1", procId: 1, clientId: new TextEncoder().encode("h") },
        { sid: "model-1", procId: 2, clientId: new TextEncoder().encode("h") },
        { sid: "model-2", procId: 1, clientId: new TextEncoder().encode("h") },
      ];
      // model[o][cell]: -1 none, else the lock type.
      const model = owners.map(() => new Array<number>(N + 1).fill(-1));
      let x = 12345;
      const r = (n: number) => {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        return (x >>> 0) % n;
      };
      const cellsOf = (start: number, length: number) => {
        const out: number[] = [];
        for (let c = start; c < (length === 0 ? N + 1 : start + length); c++) out.push(c);
        return out;
      };
      const conflicts = (o: number, type: number, cells: number[]) =>
        model.some((m, p) => p !== o && cells.some((c) => m[c]! >= 0 && (m[c] === LOCK_TYPE.WRLCK || type === LOCK_TYPE.WRLCK)));
      /** The rows as runs of cells per owner, checking that each owner's are disjoint and merged. */
      const fromRows = () => {
        const got = owners.map(() => new Array<number>(N + 1).fill(-1));
        const rows = sql.exec(`SELECT sid, proc_id, type, start, end FROM lock WHERE ino = ? ORDER BY start`, ino).toArray();
        const last = owners.map(() => ({ end: -1, type: -1 }));
        for (const row of rows) {
          const o = owners.findIndex((w) => w.sid === row.sid && w.procId === row.proc_id);
          const start = row.start as number;
          const end = row.end as number;
          expect(start).toBeLessThan(end);
          expect(start, "an owner's entries are disjoint").toBeGreaterThanOrEqual(last[o]!.end);
          if (start === last[o]!.end) expect(row.type, "adjoining entries of one type are merged").not.toBe(last[o]!.type);
          last[o] = { end, type: row.type as number };
          for (let c = start; c < Math.min(end, N + 1); c++) got[o]![c] = row.type as number;
        }
        return got;
      };
      const check = (table: InstanceType<typeof LockTable>) => {
        for (let q = 0; q < 5; q++) {
          const o = r(3);
          const type = r(2);
          const start = r(N);
          const length = r(3) === 0 ? 0 : 1 + r(N - start);
          const c = table.conflict({ ino, ...owners[o]!, type, start, length });
          expect(c !== null).toBe(conflicts(o, type, cellsOf(start, length)));
          if (c) expect(c.type === LOCK_TYPE.WRLCK || type === LOCK_TYPE.WRLCK).toBe(true);
        }
      };
      for (let step = 0; step < 3000; step++) {
        const o = r(3);
        const type = [LOCK_TYPE.RDLCK, LOCK_TYPE.WRLCK, LOCK_TYPE.UNLCK][r(3)]!;
        let start = r(N);
        let length = r(4) === 0 ? 0 : 1 + r(Math.min(8, N - start));
        // A third of the time, exactly one of the owner's entries, or its neighbourhood.
        const mine = sql.exec(`SELECT start, end FROM lock WHERE ino = ? AND sid = ? AND proc_id = ?`, ino, owners[o]!.sid, owners[o]!.procId).toArray();
        if (mine.length > 0 && r(3) === 0) {
          const e = mine[r(mine.length)]!;
          start = Math.min(N - 1, Math.max(0, (e.start as number) + r(3) - 1));
          const end = Math.min((e.end as number) + r(3) - 1, N);
          length = end >= N ? 0 : Math.max(1, end - start);
        }
        const cells = cellsOf(start, length);
        const blocked = type !== LOCK_TYPE.UNLCK && conflicts(o, type, cells);
        const status = await locks.lock({ ino, ...owners[o]!, type, start, length }, false);
        expect(status).toBe(blocked ? LOCK_STATUS.BLOCKED : LOCK_STATUS.SUCCESS);
        if (!blocked) for (const c of cells) model[o]![c] = type === LOCK_TYPE.UNLCK ? -1 : type;
        expect(fromRows()).toEqual(model);
        check(locks);
        if (step % 500 === 499) check(new LockTable(sql, { perSession: 1e6, perInode: 1e6, perShare: 1e6 }));
      }
      locks.dropSession("model-1");
      model[0]!.fill(-1);
      model[1]!.fill(-1);
      expect(fromRows()).toEqual(model);
      check(locks);
      locks.dropInode(ino);
      expect(sql.exec(`SELECT count(*) AS n FROM lock WHERE ino = ?`, ino).one().n).toBe(0);
      expect(locks.conflict({ ino, ...owners[0]!, type: LOCK_TYPE.WRLCK, start: 0, length: 0 })).toBeNull();
    });
  });
});
