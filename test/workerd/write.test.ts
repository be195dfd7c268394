// The 9P2000.L write path, each behaviour a test: what a guest does to a dev
// share, checked through 9P and, once published, in R2.

import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type AnyRequestInit, ERRNO, LOCK_STATUS, LOCK_TYPE, QT, S_IF, STATS } from "../../protocol/index.ts";
import {
  cat,
  clunk,
  create,
  getattr,
  mkdir,
  openFile,
  readAt,
  rename,
  setattr,
  unlink,
  utf8,
  walkTo,
  writeAt,
  writeFile,
} from "./support/fs.ts";
import { BUCKET, diff, mount, noise, shareObject, sleep } from "./support/gateway.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("writing files", () => {
  it("overwrites in the middle", async () => {
    const { client: c } = await mount();
    await writeFile(c, "mid.txt", "0123456789");
    const fid = await openFile(c, "mid.txt");
    await writeAt(c, fid, 3, "abc");
    await clunk(c, fid);
    expect(utf8(await cat(c, "mid.txt"))).toBe("012abc6789");
  });

  it("appends at the real end of file with O_APPEND, whatever the offset", async () => {
    const { client: c } = await mount();
    await writeFile(c, "log.txt", "one\n");
    const fid = await openFile(c, "log.txt", 1 | 0x400);
    await writeAt(c, fid, 0, "two\n");
    await writeAt(c, fid, 0, "three\n");
    await clunk(c, fid);
    expect(utf8(await cat(c, "log.txt"))).toBe("one\ntwo\nthree\n");
  });

  it("reads zeros in the hole of a sparse write past EOF", async () => {
    const { client: c } = await mount();
    const fid = await create(c, "sparse.bin");
    await writeAt(c, fid, 0, "ab");
    await writeAt(c, fid, 10000, "cd");
    await clunk(c, fid);
    const got = await cat(c, "sparse.bin");
    expect(got.byteLength).toBe(10002);
    expect(utf8(got.subarray(0, 2))).toBe("ab");
    expect(got.subarray(2, 10000).every((b) => b === 0)).toBe(true);
    expect(utf8(got.subarray(10000))).toBe("cd");
  });

  it("truncates down and up, reading zeros where old bytes were", async () => {
    const { client: c } = await mount();
    await writeFile(c, "trunc.txt", "abcdefghij");
    await shareObject().publishAll(); // the old bytes are in R2 now
    await setattr(c, "trunc.txt", { valid: 0x8, size: 4 });
    expect(utf8(await cat(c, "trunc.txt"))).toBe("abcd");
    await setattr(c, "trunc.txt", { valid: 0x8, size: 8 });
    expect(await cat(c, "trunc.txt")).toEqual(new Uint8Array([97, 98, 99, 100, 0, 0, 0, 0]));
    await shareObject().publishAll();
    const obj = await BUCKET.get("main/trunc.txt");
    expect(new Uint8Array(await obj!.arrayBuffer())).toEqual(new Uint8Array([97, 98, 99, 100, 0, 0, 0, 0]));
  });

  it("gives mtime and ctime a new, larger value on every change, even within one millisecond", async () => {
    const { client: c } = await mount();
    const fid = await create(c, "times.txt");
    const seen: bigint[] = [];
    for (let i = 0; i < 5; i++) {
      await writeAt(c, fid, i, "x");
      const a = await c.request({ type: "Tgetattr", fid, request_mask: STATS.ALL });
      seen.push(a.mtime_sec * 1_000_000_000n + a.mtime_nsec);
    }
    await clunk(c, fid);
    for (let i = 1; i < seen.length; i++) expect(seen[i]! > seen[i - 1]!).toBe(true);
  });

  it("writes and reads back a large file in many messages", async () => {
    const { client: c } = await mount("main", 1 << 20);
    const data = noise(3 << 20, 21);
    await writeFile(c, "large.bin", data);
    expect(diff(await cat(c, "large.bin"), data)).toBe("equal");
  });
});

describe("names", () => {
  it("renames over an existing file while another session reads it: it sees old or new, never neither", async () => {
    const { client: a } = await mount();
    const { client: b } = await mount();
    await writeFile(a, "target.txt", "old content");
    await writeFile(a, "incoming.txt", "new content");
    let reading = true;
    const seen = new Set<string>();
    // The name always resolves (the rename is atomic). A fid walked to the old
    // file just before the rename may find it gone at Tlopen (walk and open
    // are two messages in 9P, and a walked fid does not pin an inode): that
    // is ESTALE at the open, on which Linux's VFS looks the path up again
    // and retries (retry_estale, fs/namei.c). Never an error at the walk.
    const reader = (async () => {
      while (reading) {
        let fid: number;
        try {
          fid = await walkTo(b, "target.txt");
        } catch (e) {
          seen.add(`walk error ${(e as Error).message}`);
          continue;
        }
        try {
          await b.request({ type: "Tlopen", fid, flags: 0 });
          seen.add(utf8((await b.request({ type: "Tread", fid, offset: 0n, count: 100 })).data));
        } catch (e) {
          if ((e as { errno?: number }).errno !== ERRNO.ESTALE) seen.add(`error ${(e as Error).message}`);
        }
        await clunk(b, fid);
      }
    })();
    await sleep(20);
    await rename(a, "incoming.txt", "target.txt");
    await sleep(20);
    reading = false;
    await reader;
    expect([...seen].filter((s) => s !== "old content" && s !== "new content")).toEqual([]);
    expect(seen.has("new content")).toBe(true);
    await expect(walkTo(a, "incoming.txt")).rejects.toMatchObject({ errno: ERRNO.ENOENT });
  });

  it("renames a directory holding 1,000 files, and R2 follows", { timeout: 120_000 }, async () => {
    const { client: c } = await mount();
    await mkdir(c, "bulk");
    for (let i = 0; i < 1000; i++) await writeFile(c, `bulk/f${i}.txt`, `file ${i}`);
    await shareObject().publishAll();
    expect((await BUCKET.list({ prefix: "main/bulk/" })).objects.length).toBeGreaterThan(999);
    const before = await getattr(c, "bulk/f500.txt");
    await rename(c, "bulk", "moved");
    const after = await getattr(c, "moved/f500.txt");
    expect(after.qid.path).toBe(before.qid.path);
    expect(utf8(await cat(c, "moved/f999.txt"))).toBe("file 999");
    await shareObject().publishAll();
    const moved = [];
    let cursor: string | undefined;
    do {
      const page = await BUCKET.list({ prefix: "main/moved/", cursor });
      moved.push(...page.objects);
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    expect(moved.filter((o) => /f\d+\.txt$/.test(o.key)).length).toBe(1000);
    expect((await BUCKET.list({ prefix: "main/bulk/" })).objects.length).toBe(0);
    expect(utf8(new Uint8Array(await (await BUCKET.get("main/moved/f7.txt"))!.arrayBuffer()))).toBe("file 7");
  });

  it("keeps an unlinked file readable and writable until its last clunk, then removes its object", async () => {
    const { client: c } = await mount();
    await writeFile(c, "doomed.txt", "still here");
    await shareObject().publishAll();
    const fid = await openFile(c, "doomed.txt");
    await unlink(c, "doomed.txt");
    await expect(walkTo(c, "doomed.txt")).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    expect(utf8(await readAt(c, fid, 0, 100))).toBe("still here");
    await writeAt(c, fid, 0, "STILL");
    expect(utf8(await readAt(c, fid, 0, 100))).toBe("STILL here");
    await clunk(c, fid);
    await shareObject().publishAll();
    expect(await BUCKET.head("main/doomed.txt")).toBeNull();
  });

  it("makes a hard link that shares qid.path, with nlink 2", async () => {
    const { client: c } = await mount();
    await writeFile(c, "orig.txt", "shared");
    const dir = await walkTo(c, "");
    const file = await walkTo(c, "orig.txt");
    await c.request({ type: "Tlink", dfid: dir, fid: file, name: "hard.txt" });
    await clunk(c, dir);
    await clunk(c, file);
    const a = await getattr(c, "orig.txt");
    const b = await getattr(c, "hard.txt");
    expect(b.qid.path).toBe(a.qid.path);
    expect(a.nlink).toBe(2n);
    await unlink(c, "orig.txt");
    expect(utf8(await cat(c, "hard.txt"))).toBe("shared");
    expect((await getattr(c, "hard.txt")).nlink).toBe(1n);
  });

  it("makes symlinks and reads them back, as s3fs-style objects in R2", async () => {
    const { client: c } = await mount();
    const dir = await walkTo(c, "");
    const r = await c.request({ type: "Tsymlink", fid: dir, name: "ln", symtgt: "../some/where", gid: 0 });
    expect(r.qid.type).toBe(QT.SYMLINK);
    await clunk(c, dir);
    const ln = await walkTo(c, "ln");
    expect(utf8((await c.request({ type: "Treadlink", fid: ln })).target)).toBe("../some/where");
    await clunk(c, ln);
    await shareObject().publishAll();
    const obj = await BUCKET.get("main/ln");
    expect(utf8(new Uint8Array(await obj!.arrayBuffer()))).toBe("../some/where");
    expect(Number(obj!.customMetadata!.mode) & 0o170000).toBe(S_IF.LNK);
  });

  it("refuses names with '/', '.', '..', NUL and bad UTF-8, and existing names", async () => {
    const { client: c } = await mount();
    await writeFile(c, "exists.txt", "x");
    const dir = await walkTo(c, "");
    for (const [name, errno] of [
      ["a/b", ERRNO.EINVAL],
      [".", ERRNO.EINVAL],
      ["..", ERRNO.EINVAL],
      ["a\0b", ERRNO.EINVAL],
      [new Uint8Array([0xff, 0xfe]), ERRNO.EILSEQ],
      ["x".repeat(256), ERRNO.ENAMETOOLONG],
      ["exists.txt", ERRNO.EEXIST],
    ] as const) {
      await expect(c.request({ type: "Tmkdir", dfid: dir, name, mode: 0o755, gid: 0 })).rejects.toMatchObject({ errno });
    }
    await clunk(c, dir);
  });

  it("removes directories only when empty", async () => {
    const { client: c } = await mount();
    await mkdir(c, "full");
    await writeFile(c, "full/x", "x");
    await expect(unlink(c, "full", true)).rejects.toMatchObject({ errno: ERRNO.ENOTEMPTY });
    await expect(unlink(c, "full", false)).rejects.toMatchObject({ errno: ERRNO.EISDIR });
    await unlink(c, "full/x");
    await unlink(c, "full", true);
    await expect(walkTo(c, "full")).rejects.toMatchObject({ errno: ERRNO.ENOENT });
  });
});

describe("attributes", () => {
  it("chmod, chown and utimes change what getattr reports, and R2 metadata once published", async () => {
    const { client: c } = await mount();
    await writeFile(c, "attrs.txt", "a");
    await setattr(c, "attrs.txt", { valid: 0x1 | 0x2 | 0x4, mode: 0o100600, uid: 1234, gid: 5678 });
    await setattr(c, "attrs.txt", { valid: 0x10 | 0x20 | 0x80 | 0x100, atime: [1000, 5], mtime: [2000, 6] });
    const a = await getattr(c, "attrs.txt");
    expect(a).toMatchObject({ mode: 0o100600, uid: 1234, gid: 5678, atime_sec: 1000n, atime_nsec: 5n, mtime_sec: 2000n, mtime_nsec: 6n });
    await shareObject().publishAll();
    expect((await BUCKET.head("main/attrs.txt"))!.customMetadata).toMatchObject({
      mode: String(0o100600),
      uid: "1234",
      gid: "5678",
      mtime: "2000.000000006",
      atime: "1000.000000005",
    });
  });

  it("sets, gets, lists and removes extended attributes", async () => {
    const { client: c } = await mount();
    await writeFile(c, "x.txt", "x");
    const setx = async (name: string, value: string, flags = 0) => {
      const fid = await walkTo(c, "x.txt");
      await c.request({ type: "Txattrcreate", fid, name, attr_size: BigInt(value.length), flags });
      if (value.length) await c.request({ type: "Twrite", fid, offset: 0n, data: bytes(value) });
      await clunk(c, fid);
    };
    const getx = async (name: string) => {
      const fid = await walkTo(c, "x.txt");
      const x = c.allocFid();
      try {
        const r = await c.request({ type: "Txattrwalk", fid, newfid: x, name });
        const d = await c.request({ type: "Tread", fid: x, offset: 0n, count: Number(r.size) });
        await clunk(c, x);
        return utf8(d.data);
      } finally {
        await clunk(c, fid);
      }
    };
    await setx("user.one", "1");
    await setx("user.two", "22");
    expect(await getx("user.two")).toBe("22");
    expect(await getx("")).toBe("user.one\0user.two\0");
    await expect(setx("user.one", "again", 1)).rejects.toMatchObject({ errno: ERRNO.EEXIST });
    await setx("user.one", "");
    expect(await getx("")).toBe("user.two\0");
    await expect(getx("user.one")).rejects.toMatchObject({ errno: ERRNO.ENODATA });
  });
});

describe("locks", () => {
  it("blocks another session's conflicting lock until the holder unlocks", async () => {
    const { client: a } = await mount();
    const { client: b } = await mount();
    await writeFile(a, "lockme", "x");
    const fa = await openFile(a, "lockme");
    const fb = await openFile(b, "lockme");
    const lock = (c: typeof a, fid: number, type: number, flags = 0) =>
      c.request({ type: "Tlock", fid, lock_type: type, flags, start: 0n, length: 0n, proc_id: 1, client_id: "host" });
    expect((await lock(a, fa, LOCK_TYPE.WRLCK)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(b, fb, LOCK_TYPE.RDLCK)).status).toBe(LOCK_STATUS.BLOCKED);
    const held = await b.request({ type: "Tgetlock", fid: fb, lock_type: LOCK_TYPE.RDLCK, start: 0n, length: 0n, proc_id: 1, client_id: "host" });
    expect(held.lock_type).toBe(LOCK_TYPE.WRLCK);
    let granted = false;
    const waiting = lock(b, fb, LOCK_TYPE.WRLCK, 1).then((r) => ((granted = true), r));
    await sleep(100);
    expect(granted).toBe(false);
    await lock(a, fa, LOCK_TYPE.UNLCK);
    expect((await waiting).status).toBe(LOCK_STATUS.SUCCESS);
    // Tflush cancels a blocked lock: it is never granted afterwards.
    const ac = new AbortController();
    const blocked = a.request(
      { type: "Tlock", fid: fa, lock_type: LOCK_TYPE.WRLCK, flags: 1, start: 0n, length: 0n, proc_id: 1, client_id: "host" },
      { signal: ac.signal },
    );
    await sleep(50);
    ac.abort(new Error("interrupted"));
    await expect(blocked).rejects.toThrow("interrupted");
    await lock(b, fb, LOCK_TYPE.UNLCK);
    const { client: c3 } = await mount();
    const f3 = await openFile(c3, "lockme");
    expect((await lock(c3, f3, LOCK_TYPE.WRLCK)).status).toBe(LOCK_STATUS.SUCCESS);
  });

  it("drops a session's locks when its socket closes", async () => {
    const a = await mount();
    const { client: b } = await mount();
    await writeFile(a.client, "lock2", "x");
    const fa = await openFile(a.client, "lock2");
    const fb = await openFile(b, "lock2");
    await a.client.request({ type: "Tlock", fid: fa, lock_type: LOCK_TYPE.WRLCK, flags: 0, start: 0n, length: 0n, proc_id: 1, client_id: "a" });
    const waiting = b.request({ type: "Tlock", fid: fb, lock_type: LOCK_TYPE.WRLCK, flags: 1, start: 0n, length: 0n, proc_id: 2, client_id: "b" });
    a.ws.close(1000);
    expect((await waiting).status).toBe(LOCK_STATUS.SUCCESS);
  });
});

describe("publishing to R2", () => {
  it("publishes a closed file after the delay, with its metadata, once", async () => {
    const { client: c } = await mount();
    await writeFile(c, "pub.txt", "published bytes", 0o640);
    expect(await BUCKET.head("main/pub.txt")).toBeNull();
    await sleep(300);
    const { runDurableObjectAlarm } = await import("cloudflare:test");
    await runDurableObjectAlarm(shareObject());
    const obj = await BUCKET.get("main/pub.txt");
    expect(utf8(new Uint8Array(await obj!.arrayBuffer()))).toBe("published bytes");
    // mount() attaches as "nobody" (n_uname none): new files are uid 65534.
    expect(obj!.customMetadata).toMatchObject({ mode: String(0o100640), uid: "65534" });
  });

  it("uploads a file written under a temporary name and renamed once, at its final key", async () => {
    const { client: c } = await mount();
    // What earlier tests left unpublished (files they hold open wait for their close) goes first.
    await shareObject().publishAll();
    await writeFile(c, ".tmp-save", "saved");
    await rename(c, ".tmp-save", "saved.txt");
    const before = (await shareObject().stats()).publish!.puts;
    await shareObject().publishAll();
    expect((await shareObject().stats()).publish!.puts - before).toBe(1);
    expect(await BUCKET.head("main/.tmp-save")).toBeNull();
    expect(utf8(new Uint8Array(await (await BUCKET.get("main/saved.txt"))!.arrayBuffer()))).toBe("saved");
  });

  it("publishes empty directories as dir/ markers and removes the marker with the directory", async () => {
    const { client: c } = await mount();
    await mkdir(c, "emptydir");
    await shareObject().publishAll();
    expect(await BUCKET.head("main/emptydir/")).not.toBeNull();
    await unlink(c, "emptydir", true);
    await shareObject().publishAll();
    expect(await BUCKET.head("main/emptydir/")).toBeNull();
  });

  it("keeps another tool's version under a conflict name when both changed a file", async () => {
    const { client: c } = await mount();
    await writeFile(c, "both.txt", "first");
    await shareObject().publishAll();
    const fid = await openFile(c, "both.txt");
    await writeAt(c, fid, 0, "ours!");
    await BUCKET.put("main/both.txt", "theirs");
    await clunk(c, fid);
    await shareObject().publishAll();
    expect(utf8(new Uint8Array(await (await BUCKET.get("main/both.txt"))!.arrayBuffer()))).toBe("ours!");
    const conflicts = (await BUCKET.list({ prefix: "main/both.txt.conflict-" })).objects;
    expect(conflicts).toHaveLength(1);
    expect(utf8(new Uint8Array(await (await BUCKET.get(conflicts[0]!.key))!.arrayBuffer()))).toBe("theirs");
  });

  it("deletes from R2 an object deleted through 9P", async () => {
    const { client: c } = await mount();
    await writeFile(c, "gone.txt", "x");
    await shareObject().publishAll();
    expect(await BUCKET.head("main/gone.txt")).not.toBeNull();
    await unlink(c, "gone.txt");
    await shareObject().publishAll();
    expect(await BUCKET.head("main/gone.txt")).toBeNull();
  });

  it("does not publish a file still open for writing when its create's publish time comes, but after its close", async () => {
    // The create schedules the publish (storage/changes.ts); one still open when
    // it is due waits for the close. With the default journal cap (4 GiB),
    // `journalCap >> 4` was 0 in 32-bit arithmetic, so the wait never held
    // and an open file was uploaded mid-write.
    const { client: c } = await mount();
    const fid = await create(c, "still-open.bin");
    await writeAt(c, fid, 0, "first half ");
    await sleep(300);
    const { runDurableObjectAlarm } = await import("cloudflare:test");
    await runDurableObjectAlarm(shareObject());
    expect(await BUCKET.head("main/still-open.bin")).toBeNull();
    await writeAt(c, fid, 11, "second half");
    await clunk(c, fid);
    await sleep(300);
    await runDurableObjectAlarm(shareObject());
    expect(utf8(new Uint8Array(await (await BUCKET.get("main/still-open.bin"))!.arrayBuffer()))).toBe("first half second half");
  });
});

describe("found by the real client", () => {
  it("keeps a hard link in another directory when that directory is listed from R2 again", async () => {
    const { client: c } = await mount();
    await mkdir(c, "hl");
    await mkdir(c, "hl/a");
    await mkdir(c, "hl/b");
    await writeFile(c, "hl/a/file", "linked");
    const dir = await walkTo(c, "hl/b");
    const file = await walkTo(c, "hl/a/file");
    await c.request({ type: "Tlink", dfid: dir, fid: file, name: "link" });
    await clunk(c, dir);
    await clunk(c, file);
    await shareObject().publishAll();
    await sleep(1100); // past the revalidation time: hl/b is listed again, and has no object "link"
    expect(utf8(await cat(c, "hl/b/link"))).toBe("linked");
    expect((await getattr(c, "hl/a/file")).nlink).toBe(2n);
  });

  it("keeps reading a file open across the publish of its own content", async () => {
    const { client: c } = await mount();
    const data = noise(200_000, 77);
    await writeFile(c, "pubread.bin", data);
    const fid = await openFile(c, "pubread.bin", 0);
    const first = await readAt(c, fid, 0, 1000);
    await shareObject().publishAll();
    await rename(c, "pubread.bin", "pubread2.bin");
    await shareObject().publishAll();
    const rest = await readAt(c, fid, 1000, data.byteLength - 1000);
    await clunk(c, fid);
    const got = new Uint8Array(data.byteLength);
    got.set(first);
    got.set(rest, 1000);
    expect(diff(got, data)).toBe("equal");
  });
});

describe("more requests", () => {
  it("makes FIFOs and sockets as metadata (device nodes: devices.test.ts)", async () => {
    const { client: c } = await mount();
    const dir = await walkTo(c, "");
    const fifo = await c.request({ type: "Tmknod", dfid: dir, name: "pipe", mode: 0o010644, major: 0, minor: 0, gid: 0 });
    expect(fifo.qid.type).toBe(0);
    expect((await getattr(c, "pipe")).mode).toBe(0o010644);
    await c.request({ type: "Tmknod", dfid: dir, name: "sock", mode: 0o140600, major: 0, minor: 0, gid: 0 });
    expect((await getattr(c, "sock")).mode).toBe(0o140600);
    await clunk(c, dir);
  });

  it("keeps a FIFO a FIFO once published and listed again, with nothing left over", async () => {
    const { client: c } = await mount();
    await mkdir(c, "fifos");
    const dir = await walkTo(c, "fifos");
    await c.request({ type: "Tmknod", dfid: dir, name: "p", mode: 0o010640, major: 0, minor: 0, gid: 0 });
    await clunk(c, dir);
    await shareObject().publishAll();
    expect((await BUCKET.head("main/fifos/p"))?.customMetadata?.mode).toBe(String(0o010640));
    await sleep(1100); // past dir_revalidate_ms: the next lookup lists R2 again
    expect((await getattr(c, "fifos/p")).mode).toBe(0o010640);
    const check = (await (await exports.default.fetch("http://gateway/v1/shares/main/check", { headers: { Authorization: "Bearer test-operator-token-0123456789abcdef" } })).json()) as { ok: boolean };
    expect(check).toMatchObject({ ok: true });
  });

  it("renames with Trename and removes with Tremove (the fallbacks of Linux)", async () => {
    const { client: c } = await mount();
    await writeFile(c, "old-name.txt", "x");
    const f = await walkTo(c, "old-name.txt");
    const d = await walkTo(c, "");
    await c.request({ type: "Trename", fid: f, dfid: d, name: "new-name.txt" });
    expect(utf8(await cat(c, "new-name.txt"))).toBe("x");
    await clunk(c, d);
    await c.request({ type: "Tremove", fid: f });
    await expect(walkTo(c, "new-name.txt")).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    // Tremove clunked the fid even so.
    await expect(c.request({ type: "Tclunk", fid: f })).rejects.toMatchObject({ errno: ERRNO.EBADF });
  });

  it("answers every change on a read-only share with EROFS and changes nothing", async () => {
    const { put } = await import("./support/gateway.ts");
    await put("ro", "keep.txt", "untouched");
    const { client: c } = await mount("ro");
    const dir = await walkTo(c, "");
    const file = await walkTo(c, "keep.txt");
    const attempts: AnyRequestInit[] = [
      { type: "Tlcreate", fid: await walkTo(c, ""), name: "n", flags: 1, mode: 0o644, gid: 0 },
      { type: "Tmkdir", dfid: dir, name: "d", mode: 0o755, gid: 0 },
      { type: "Tsymlink", fid: dir, name: "l", symtgt: "t", gid: 0 },
      { type: "Tmknod", dfid: dir, name: "p", mode: 0o010644, major: 0, minor: 0, gid: 0 },
      { type: "Tlink", dfid: dir, fid: file, name: "h" },
      { type: "Trenameat", olddirfid: dir, oldname: "keep.txt", newdirfid: dir, newname: "k2" },
      { type: "Trename", fid: file, dfid: dir, name: "k3" },
      { type: "Tunlinkat", dirfid: dir, name: "keep.txt", flags: 0 },
      { type: "Tsetattr", fid: file, valid: 0x1, mode: 0o600, uid: 0, gid: 0, size: 0n, atime_sec: 0n, atime_nsec: 0n, mtime_sec: 0n, mtime_nsec: 0n },
      { type: "Tsetattr", fid: file, valid: 0x8, mode: 0, uid: 0, gid: 0, size: 0n, atime_sec: 0n, atime_nsec: 0n, mtime_sec: 0n, mtime_nsec: 0n },
      { type: "Txattrcreate", fid: await walkTo(c, "keep.txt"), name: "user.x", attr_size: 1n, flags: 0 },
      { type: "Tlopen", fid: await walkTo(c, "keep.txt"), flags: 2 },
      { type: "Tlopen", fid: await walkTo(c, "keep.txt"), flags: 0x200 },
      { type: "Tremove", fid: await walkTo(c, "keep.txt") },
    ];
    for (const m of attempts) await expect(c.request(m as never), m.type).rejects.toMatchObject({ errno: ERRNO.EROFS });
    const rf = await openFile(c, "keep.txt", 0);
    await expect(c.request({ type: "Twrite", fid: rf, offset: 0n, data: bytes("x") })).rejects.toMatchObject({ errno: ERRNO.EROFS });
    expect(utf8(await cat(c, "keep.txt"))).toBe("untouched");
    expect((await getattr(c, "keep.txt")).mode).toBe(0o100644);
    expect((await BUCKET.list({ prefix: "ro/" })).objects.map((o) => o.key)).toEqual(["ro/keep.txt"]);
    expect((await shareObject("ro").stats()).journalBytes).toBe(0);
  });
});
