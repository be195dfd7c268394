// A file at EDGE9P.max_file_bytes (2 MiB here): up to it works, past it
// answers EFBIG, and a write that crosses it is cut short at it, as Linux
// does at s_maxbytes; a hole past the 1 MiB journal cap answers ENOSPC.

import { describe, expect, it } from "vitest";
import { ERRNO, NOFID, decode, encode } from "../../protocol/index.ts";
import { cat, clunk, create, getattr, openFile, setattr, unlink } from "../workerd/support/fs.ts";
import { BUCKET, diff, mount, noise, rawSession, shareObject, unchangedStat } from "../workerd/support/gateway.ts";

const MiB = 1 << 20;
/** test/workerd-limits/wrangler.toml max_file_bytes */
const LIMIT = 2 * MiB;
const SIZE = 0x8;
const APPEND = 0o2000;

const journal = async () => (await shareObject().stats()).journalBytes;
const sizeOf = async (c: Parameters<typeof getattr>[0], path: string) => Number((await getattr(c, path)).size);

describe("max_file_bytes", () => {
  it("takes a file of exactly max_file_bytes, cuts a write crossing it short, and answers EFBIG past it", { timeout: 30_000 }, async () => {
    const { client: c } = await mount("main", 65536);
    const data = noise(LIMIT, 11);
    // The journal holds 1 MiB: write the first half, publish, then the rest.
    let fid = await create(c, "limit.bin");
    for (let off = 0; off < MiB; off += 32768) {
      await c.request({ type: "Twrite", fid, offset: BigInt(off), data: data.subarray(off, off + 32768) });
    }
    await clunk(c, fid);
    await shareObject().publishAll();
    fid = await openFile(c, "limit.bin");
    for (let off = MiB; off < LIMIT - 4096; off += 32768) {
      await c.request({ type: "Twrite", fid, offset: BigInt(off), data: data.subarray(off, Math.min(off + 32768, LIMIT - 4096)) });
    }
    // 8 KiB at 4 KiB before the limit: the first 4 KiB are written (generic_write_checks shortens it).
    const crossing = new Uint8Array(8192);
    crossing.set(data.subarray(LIMIT - 4096));
    crossing.fill(0xee, 4096);
    expect(await c.request({ type: "Twrite", fid, offset: BigInt(LIMIT - 4096), data: crossing })).toMatchObject({ count: 4096 });
    expect(await sizeOf(c, "limit.bin")).toBe(LIMIT);
    const held = await journal();
    // At the limit and beyond: EFBIG, and nothing changes.
    for (const offset of [LIMIT, LIMIT + 1, 2 ** 52]) {
      await expect(c.request({ type: "Twrite", fid, offset: BigInt(offset), data: new Uint8Array(1) })).rejects.toMatchObject({
        errno: ERRNO.EFBIG,
      });
    }
    // A write of nothing succeeds anywhere (generic_write_checks returns before the limits).
    expect(await c.request({ type: "Twrite", fid, offset: BigInt(LIMIT + 5), data: new Uint8Array(0) })).toMatchObject({ count: 0 });
    // O_APPEND writes at the end: the limit.
    const app = await openFile(c, "limit.bin", 1 | APPEND);
    await expect(c.request({ type: "Twrite", fid: app, offset: 0n, data: new Uint8Array(1) })).rejects.toMatchObject({ errno: ERRNO.EFBIG });
    await clunk(c, app);
    // Truncating: to the limit is fine, one byte past it is not (inode_newsize_ok).
    await setattr(c, "limit.bin", { valid: SIZE, size: LIMIT });
    await expect(setattr(c, "limit.bin", { valid: SIZE, size: LIMIT + 1 })).rejects.toMatchObject({ errno: ERRNO.EFBIG });
    await expect(setattr(c, "limit.bin", { valid: SIZE, size: 2 ** 53 - 1 })).rejects.toMatchObject({ errno: ERRNO.EFBIG });
    expect(await sizeOf(c, "limit.bin")).toBe(LIMIT);
    expect(await journal()).toBe(held);
    expect(diff(await cat(c, "limit.bin"), data)).toBe("equal");
    // (Kept open until here: a closed file is published after publish_delay_ms.)
    await clunk(c, fid);
    await shareObject().publishAll();
    expect(diff(new Uint8Array(await (await BUCKET.get("main/limit.bin"))!.arrayBuffer()), data)).toBe("equal");
    expect(await journal()).toBe(0);
  });

  it("answers a truncate or a write that leaves a hole past the journal cap with ENOSPC, changing nothing", async () => {
    const { client: c } = await mount("main", 65536);
    await shareObject().publishAll();
    const fid = await create(c, "hole.bin");
    await expect(setattr(c, "hole.bin", { valid: SIZE, size: MiB + 4096 })).rejects.toMatchObject({ errno: ERRNO.ENOSPC });
    expect(await sizeOf(c, "hole.bin")).toBe(0);
    expect(await journal()).toBe(0);
    await setattr(c, "hole.bin", { valid: SIZE, size: 512 * 1024 });
    expect(await journal()).toBe(512 * 1024);
    // 32 KiB at 1 MiB: the bytes and the 512 KiB gap before them pass the cap.
    await expect(c.request({ type: "Twrite", fid, offset: BigInt(MiB), data: new Uint8Array(32768) })).rejects.toMatchObject({
      errno: ERRNO.ENOSPC,
    });
    expect(await sizeOf(c, "hole.bin")).toBe(512 * 1024);
    // Filling the hole costs nothing more, even with the journal near its cap.
    await setattr(c, "hole.bin", { valid: SIZE, size: MiB });
    expect(await c.request({ type: "Twrite", fid, offset: 0n, data: noise(32768, 2) })).toMatchObject({ count: 32768 });
    expect(await journal()).toBe(MiB);
    await clunk(c, fid);
    await unlink(c, "hole.bin");
    expect(await journal()).toBe(0);
  });
});

describe("max_file_bytes in 9P2000.u", () => {
  it("answers Twstat past the limit with EFBIG, renaming nothing, and cuts a Twrite crossing it short", async () => {
    const d = "9P2000.u" as const;
    const r = await rawSession();
    const ask = async (m: Parameters<typeof encode>[0]) => {
      r.send(encode(m, d));
      return decode(await r.next(), d);
    };
    await ask({ type: "Tversion", tag: 0xffff, msize: 65536, version: d });
    await ask({ type: "Tattach", tag: 1, fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
    const none = unchangedStat();
    // limit.bin (the test above) is published at the limit.
    await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["limit.bin"] });
    for (const length of [BigInt(LIMIT + 1), 2n ** 53n - 1n]) {
      const e = await ask({ type: "Twstat", tag: 2, fid: 1, stat: { ...none, name: "moved.bin", length } });
      expect(e.type === "Rerror" && e.errno).toBe(ERRNO.EFBIG);
    }
    const st = await ask({ type: "Tstat", tag: 3, fid: 1 });
    expect(st.type === "Rstat" && [new TextDecoder().decode(st.stat.name), st.stat.length]).toEqual(["limit.bin", BigInt(LIMIT)]);
    expect(await ask({ type: "Twstat", tag: 4, fid: 1, stat: { ...none, length: BigInt(LIMIT - 100) } })).toMatchObject({ type: "Rwstat" });
    expect(await ask({ type: "Topen", tag: 5, fid: 1, mode: 1 })).toMatchObject({ type: "Ropen" });
    expect(await ask({ type: "Twrite", tag: 6, fid: 1, offset: BigInt(LIMIT - 10), data: new Uint8Array(20).fill(7) })).toMatchObject({
      count: 10,
    });
    const past = await ask({ type: "Twrite", tag: 7, fid: 1, offset: BigInt(LIMIT), data: new Uint8Array(1) });
    expect(past.type === "Rerror" && past.errno).toBe(ERRNO.EFBIG);
    // A new file (Tcreate): the same limit for its first write.
    await ask({ type: "Twalk", tag: 8, fid: 0, newfid: 2, wnames: [] });
    expect(await ask({ type: "Tcreate", tag: 8, fid: 2, name: "created.bin", perm: 0o644, mode: 1, extension: "" })).toMatchObject({
      type: "Rcreate",
    });
    const far = await ask({ type: "Twrite", tag: 9, fid: 2, offset: 2n ** 52n, data: new Uint8Array(1) });
    expect(far.type === "Rerror" && far.errno).toBe(ERRNO.EFBIG);
    const st2 = await ask({ type: "Tstat", tag: 10, fid: 2 });
    expect(st2.type === "Rstat" && st2.stat.length).toBe(0n);
    r.ws.close(1000);
  });
});
