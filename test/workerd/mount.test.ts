// What Linux sends for mount, ls -la, stat, readlink, cat and df
// (test/fixtures/captures/linux61-read), against objects put with the R2
// binding.

import { beforeAll, describe, expect, it } from "vitest";
import { DT, ERRNO, NOFID, NONUNAME, QT, S_IF, V9FS_MAGIC } from "../../protocol/index.ts";
import { BUCKET, diff, mount, noise, open, parseDirents, put, readFile, text } from "./support/gateway.ts";

const A200K = noise(200_000, 7);

// Every object of this file is put before the first listing: a listing is
// trusted for the revalidation time, so later puts would not show at once.
beforeAll(async () => {
  await put("main", "hello.txt", "hi there\n");
  // A symlink as s3fs stores one: mode S_IFLNK|0777 in decimal, target as content.
  await put("main", "link", "hello.txt", { mode: String(0o120777) });
  await put("main", "dir/a200k.txt", A200K);
  for (let i = 1; i <= 40; i++) await put("main", `dir/sub/e${i}`, `entry ${i}\n`);
  await BUCKET.put("main/tree/empty/", "");
  await put("main", "tree/a/b/c.txt", "deep\n");
  await put("main", "tree/a/top.txt", "top\n");
  await put("main", "meta/s3fs", "x", { mode: "33261", uid: "1001", gid: "1002", mtime: "1700000000" });
  await put("main", "meta/rclone", "x", { mode: "0100600", uid: "7", gid: "8", mtime: "2023-11-14T22:13:20.123456789Z" });
  await put("main", "meta/plain", "x");
  await put("main", "odd/ok.txt", "ok");
  await put("main", "odd/empty//seg", "x");
  await put("main", "odd/dots/../up", "x");
  await put("main", `odd/${"n".repeat(256)}`, "x");
  await put("main", "odd/both", "file");
  await put("main", "odd/both/inner", "inner");
  await put("main", "ver/f", "one");
  await put("main", "proj/src/x.c", "int x;\n");
  await put("main", "secret.txt", "no");
});

describe("the Linux mount sequence", () => {
  it("mounts, lists, stats, reads links and files, and reports statfs", async () => {
    const { client: c } = await open();
    // mount: Tversion, Tattach as nobody with n_uname none, Tgetattr(0x7ff).
    expect(await c.version(1048576)).toEqual({ msize: 1048576, version: "9P2000.L" });
    const root = await c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "nobody", aname: "", n_uname: NONUNAME });
    expect(root.qid.type).toBe(QT.DIR);
    const ga = await c.request({ type: "Tgetattr", fid: 0, request_mask: 0x7ffn });
    expect(ga.mode & 0o170000).toBe(S_IF.DIR);
    expect(ga.qid).toEqual(root.qid);
    // access=client: a second attach for uid 0.
    await c.request({ type: "Tattach", fid: 1, afid: NOFID, uname: "", aname: "", n_uname: 0 });

    // ls -la: clone, Tlopen(0x18800), Treaddir until empty, per-entry walk+getattr.
    await c.request({ type: "Twalk", fid: 1, newfid: 2, wnames: [] });
    const lo = await c.request({ type: "Tlopen", fid: 2, flags: 0x18800 });
    expect(lo.iounit % 4096).toBe(0);
    expect(lo.iounit).toBeLessThanOrEqual(1048576 - 24);
    const rd = await c.request({ type: "Treaddir", fid: 2, offset: 0n, count: 1048576 - 24 });
    const ents = parseDirents(rd.data);
    expect(ents.map((e) => [e.name, e.type]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1))).toEqual([
      [".", DT.DIR],
      ["..", DT.DIR],
      ["dir", DT.DIR],
      ["hello.txt", DT.REG],
      ["link", DT.LNK],
      ["meta", DT.DIR],
      ["odd", DT.DIR],
      ["proj", DT.DIR],
      ["secret.txt", DT.REG],
      ["tree", DT.DIR],
      ["ver", DT.DIR],
    ].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)));
    const end = await c.request({ type: "Treaddir", fid: 2, offset: ents.at(-1)!.offset, count: 65512 });
    expect(end.data.byteLength).toBe(0);
    for (const e of ents.slice(2)) {
      const w = await c.request({ type: "Twalk", fid: 1, newfid: 3, wnames: [e.name] });
      expect(w.qids[0]!.path).toBe(e.path);
      const a = await c.request({ type: "Tgetattr", fid: 3, request_mask: 0x17ffn });
      expect(a.qid.path).toBe(e.path);
      // ls calls getxattr: answered quickly, ENODATA.
      await expect(c.request({ type: "Txattrwalk", fid: 3, newfid: 4, name: "security.selinux" })).rejects.toMatchObject({
        errno: ERRNO.ENODATA,
      });
      await c.request({ type: "Tclunk", fid: 3 });
    }
    await c.request({ type: "Tclunk", fid: 2 });

    // stat + readlink of the symlink.
    const l = await c.request({ type: "Twalk", fid: 1, newfid: 2, wnames: ["link"] });
    expect(l.qids[0]!.type).toBe(QT.SYMLINK);
    expect(text((await c.request({ type: "Treadlink", fid: 2 })).target)).toBe("hello.txt");
    await c.request({ type: "Tclunk", fid: 2 });

    // cat hello.txt: Tlopen(0x8000), Tread until 0.
    await c.request({ type: "Twalk", fid: 1, newfid: 2, wnames: ["hello.txt"] });
    await c.request({ type: "Tlopen", fid: 2, flags: 0x8000 });
    const r1 = await c.request({ type: "Tread", fid: 2, offset: 0n, count: 1048552 });
    expect(text(r1.data)).toBe("hi there\n");
    expect((await c.request({ type: "Tread", fid: 2, offset: 9n, count: 1048552 })).data.byteLength).toBe(0);
    await c.request({ type: "Tclunk", fid: 2 });

    // cat dir/a200k.txt the way the capture's client split it: 65512 + 24.
    await c.request({ type: "Twalk", fid: 1, newfid: 2, wnames: ["dir", "a200k.txt"] });
    await c.request({ type: "Tlopen", fid: 2, flags: 0x8000 });
    const got = new Uint8Array(200_000);
    let off = 0;
    for (const count of [65512, 24, 65512, 24, 65512, 24, 65512, 24, 65512]) {
      const r = await c.request({ type: "Tread", fid: 2, offset: BigInt(off), count });
      got.set(r.data, off);
      off += r.data.byteLength;
    }
    expect(off).toBe(200_000);
    expect(diff(got, A200K)).toBe("equal");
    await c.request({ type: "Tclunk", fid: 2 });

    // df
    const sf = await c.request({ type: "Tstatfs", fid: 1 });
    expect(sf).toMatchObject({ fs_type: V9FS_MAGIC, bsize: 4096, namelen: 255 });
    expect(sf.blocks).toBe(BigInt(2 ** 40 / 4096));
    // Used: the regular files of the directories listed so far (the root's
    // hello.txt and secret.txt, dir's a200k.txt), in 4 KiB blocks.
    expect(sf.blocks - sf.bfree).toBe(BigInt(Math.ceil((9 + 2 + 200_000) / 4096)));
    // Available: what a write may use now, bounded by the journal's headroom (4 GiB by default).
    expect(sf.bavail).toBe(BigInt(Math.min(Number(sf.bfree), (4 * 2 ** 30) / 4096)));
  });
});

describe("reading objects put with the R2 binding", () => {
  it("shows nested directories from key prefixes and from dir/ markers", async () => {
    const { client: c } = await mount();
    const { listDir } = await import("./support/gateway.ts");
    expect((await listDir(c, "tree")).entries.map((e) => e.name).sort()).toEqual([".", "..", "a", "empty"]);
    expect((await listDir(c, "tree/empty")).entries.map((e) => e.name)).toEqual([".", ".."]);
    expect((await listDir(c, "tree/a")).entries.map((e) => e.name).sort()).toEqual([".", "..", "b", "top.txt"]);
    expect(text(await readFile(c, "tree/a/b/c.txt"))).toBe("deep\n");
  });

  it("reads owner, mode and mtime from s3fs and rclone metadata, and defaults otherwise", async () => {
    const { client: c } = await mount();
    const attr = async (name: string) => {
      const fid = c.allocFid();
      await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: ["meta", name] });
      return c.request({ type: "Tgetattr", fid, request_mask: 0x3fffn });
    };
    expect(await attr("s3fs")).toMatchObject({ mode: 0o100755, uid: 1001, gid: 1002, mtime_sec: 1700000000n, mtime_nsec: 0n });
    expect(await attr("rclone")).toMatchObject({
      mode: 0o100600,
      uid: 7,
      gid: 8,
      mtime_sec: 1700000000n,
      mtime_nsec: 123456789n,
    });
    // The test share's defaults: uid/gid 1000, mode 0644; mtime from the upload.
    const plain = await attr("plain");
    expect(plain).toMatchObject({ mode: 0o100644, uid: 1000, gid: 1000, size: 1n, blocks: 1n });
    expect(Number(plain.mtime_sec)).toBeGreaterThan(1_700_000_000);
    expect(plain.qid.version).not.toBe(0);
  });

  it("leaves out keys that make no valid name, and shows a key that is also a prefix as the directory", async () => {
    const { client: c } = await mount();
    const { listDir } = await import("./support/gateway.ts");
    const names = (await listDir(c, "odd")).entries.map((e) => e.name).sort();
    expect(names).toEqual([".", "..", "both", "dots", "empty", "ok.txt"]);
    expect((await listDir(c, "odd/empty")).entries.map((e) => e.name)).toEqual([".", ".."]);
    expect((await listDir(c, "odd/dots")).entries.map((e) => e.name)).toEqual([".", ".."]);
    expect(text(await readFile(c, "odd/both/inner"))).toBe("inner");
  });

  it("gives a changed object a new nonzero qid.version, and an open fid ESTALE", async () => {
    const { client: c } = await mount();
    const fid = c.allocFid();
    const w1 = await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: ["ver", "f"] });
    await c.request({ type: "Tlopen", fid, flags: 0 });
    await put("main", "ver/f", "two!");
    // A read pinned to the old content fails instead of mixing versions.
    await expect(c.request({ type: "Tread", fid, offset: 0n, count: 100 })).rejects.toMatchObject({ errno: ERRNO.ESTALE });
    const w2 = await c.request({ type: "Twalk", fid: 0, newfid: c.allocFid(), wnames: ["ver", "f"] });
    expect(w2.qids[1]!.path).toBe(w1.qids[1]!.path);
    expect(w2.qids[1]!.version).not.toBe(w1.qids[1]!.version);
    expect(w2.qids[1]!.version).not.toBe(0);
    expect(text(await readFile(c, "ver/f"))).toBe("two!");
  });

  it("attaches to a subdirectory named by aname, and never walks above it", async () => {
    const { client: c } = await open();
    await c.version(65536);
    const r = await c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "/proj", n_uname: 1000 });
    const w = await c.request({ type: "Twalk", fid: 0, newfid: 1, wnames: ["..", "..", "src"] });
    expect(w.qids.map((q) => q.path)).toEqual([r.qid.path, r.qid.path, w.qids[2]!.path]);
    // ".." stays at the attach point; the share's secret.txt is not found
    // there: a short Rwalk (walk(5)), and fid 2 is not created.
    const up = await c.request({ type: "Twalk", fid: 0, newfid: 2, wnames: ["..", "secret.txt"] });
    expect(up.qids.map((q) => q.path)).toEqual([r.qid.path]);
    await expect(c.request({ type: "Tclunk", fid: 2 })).rejects.toMatchObject({ errno: ERRNO.EBADF });
    await expect(
      c.request({ type: "Tattach", fid: 5, afid: NOFID, uname: "", aname: "nope", n_uname: 0 }),
    ).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    await expect(
      c.request({ type: "Tattach", fid: 5, afid: NOFID, uname: "", aname: "secret.txt", n_uname: 0 }),
    ).rejects.toMatchObject({ errno: ERRNO.ENOTDIR });
  });

  it("answers Tauth with ENOENT (no authentication inside 9P), as diod's clients expect", async () => {
    const { client: c } = await open();
    await c.version(65536);
    await expect(c.request({ type: "Tauth", afid: 1, uname: "", aname: "", n_uname: 0 })).rejects.toMatchObject({
      errno: ERRNO.ENOENT,
    });
  });
});

