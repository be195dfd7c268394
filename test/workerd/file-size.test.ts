// How large a file may grow, and what its growth costs: sizes past
// EDGE9P.max_file_bytes answer EFBIG (as past Linux's s_maxbytes), a hole
// counts against the journal cap as the zeros its publish will upload, and
// the publisher never holds a part larger than the object's in-flight budget.

import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { type Client, ERRNO } from "../../protocol/index.ts";
import { migrate } from "../../storage/schema.ts";
import type { ShareFs } from "../../storage/share-fs.ts";
import type { ShareObject } from "../../worker/share-object.ts";
import { cat, clunk, create, getattr, openFile, setattr, unlink, walkTo, writeAt } from "./support/fs.ts";
import { BUCKET, mount, noise, put, shareObject } from "./support/gateway.ts";

const MiB = 1 << 20;
const SIZE = 0x8;
/** The test share's in-flight budget (test/workerd/wrangler.toml inflight_bytes). */
const INFLIGHT = 64 * MiB;

const journal = async () => (await shareObject().stats()).journalBytes;
const bavail = async (c: Client) => (await c.request({ type: "Tstatfs", fid: 0 })).bavail;
const sizeOf = async (c: Client, path: string) => Number((await getattr(c, path)).size);
/**
 * Figures compared across a test hold still only while nothing gets
 * published meanwhile: each test publishes what earlier ones left first,
 * and keeps its own file open (an open file waits for its close).
 */
const consistent = async () => {
  const r = (await shareObject().check("main"))!;
  expect(r.problems).toMatchObject({ journalMiscounts: 0, holeMiscounts: 0, journalTotalOff: 0 });
  expect(r.ok).toBe(true);
};

/** The share's filesystem inside its object (for what no 9P request can set up). */
function inObject<T>(f: (fs: ShareFs, sql: SqlStorage) => T | Promise<T>): Promise<T> {
  return runInDurableObject(shareObject(), async (obj: ShareObject, state) =>
    f((obj as unknown as { ready: { fs: ShareFs } }).ready.fs, state.storage.sql),
  );
}

// Before the root is first listed (a lookup of a missing name never lists it again).
beforeAll(async () => {
  await put("main", "big-object.bin", "small here");
});

describe("the largest file", () => {
  it("answers Tsetattr to size 2^53-1 with EFBIG and changes nothing", async () => {
    const { client: c } = await mount();
    await shareObject().publishAll();
    const fid = await create(c, "huge-setattr.bin");
    await writeAt(c, fid, 0, "12345");
    const before = await journal();
    for (const size of [2n ** 53n - 1n, 2n ** 52n, 2n ** 64n - 1n]) {
      await expect(
        c.request({
          type: "Tsetattr",
          fid,
          valid: SIZE,
          mode: 0,
          uid: 0,
          gid: 0,
          size,
          atime_sec: 0n,
          atime_nsec: 0n,
          mtime_sec: 0n,
          mtime_nsec: 0n,
        }),
      ).rejects.toMatchObject({ errno: ERRNO.EFBIG });
    }
    expect(await sizeOf(c, "huge-setattr.bin")).toBe(5);
    expect(await journal()).toBe(before);
    await consistent();
    await clunk(c, fid);
  });

  it("answers a Twrite at offset 2^52 with EFBIG and changes nothing", async () => {
    const { client: c } = await mount();
    await shareObject().publishAll();
    const fid = await create(c, "huge-write.bin");
    await writeAt(c, fid, 0, "abc");
    const before = await journal();
    const free = await bavail(c);
    await expect(c.request({ type: "Twrite", fid, offset: 2n ** 52n, data: new TextEncoder().encode("x") })).rejects.toMatchObject({
      errno: ERRNO.EFBIG,
    });
    expect(await sizeOf(c, "huge-write.bin")).toBe(3);
    expect(await journal()).toBe(before);
    expect(await bavail(c)).toBe(free);
    expect(new TextDecoder().decode(await cat(c, "huge-write.bin"))).toBe("abc");
    await clunk(c, fid);
  });

  it("answers a truncate up to 100 GB, past the 4 GiB journal cap, with ENOSPC and changes nothing", async () => {
    const { client: c } = await mount();
    await shareObject().publishAll();
    const fid = await create(c, "hundred-gb.bin");
    await writeAt(c, fid, 0, "start");
    const before = await journal();
    await expect(setattr(c, "hundred-gb.bin", { valid: SIZE, size: 100e9 })).rejects.toMatchObject({ errno: ERRNO.ENOSPC });
    // So is a write that would leave such a hole.
    await expect(c.request({ type: "Twrite", fid, offset: 100_000_000_000n, data: new Uint8Array(1) })).rejects.toMatchObject({
      errno: ERRNO.ENOSPC,
    });
    expect(await sizeOf(c, "hundred-gb.bin")).toBe(5);
    expect(await journal()).toBe(before);
    await consistent();
    await clunk(c, fid);
  });
});

describe("a hole counts against the journal as the zeros its publish uploads", () => {
  it("counts truncating up and writing past the end, and gives it back when published, truncated down or unlinked, also after a restart", async () => {
    let { client: c } = await mount();
    await shareObject().publishAll();
    const base = await journal();
    const free = await bavail(c);
    const fid = await create(c, "sparse.bin");
    await writeAt(c, fid, 0, noise(1000, 5));
    expect(await journal()).toBe(base + 1000);
    // Truncating up: the hole is published as zeros, so it counts.
    await setattr(c, "sparse.bin", { valid: SIZE, size: 3 * MiB });
    expect(await journal()).toBe(base + 3 * MiB);
    // df says so too.
    expect(Number(free - (await bavail(c)))).toBe((3 * MiB) / 4096);
    // A write past the end: its bytes and the gap before them.
    await writeAt(c, fid, 4 * MiB, "0123456789");
    expect(await journal()).toBe(base + 4 * MiB + 10);
    // Writing into the hole fills it: no byte counted twice.
    await writeAt(c, fid, MiB, noise(65536, 6));
    expect(await journal()).toBe(base + 4 * MiB + 10);
    await consistent();
    // Truncating down gives back the hole and bytes cut off.
    await setattr(c, "sparse.bin", { valid: SIZE, size: 2 * MiB });
    expect(await journal()).toBe(base + 2 * MiB);
    await setattr(c, "sparse.bin", { valid: SIZE, size: 500 });
    expect(await journal()).toBe(base + 500);
    await setattr(c, "sparse.bin", { valid: SIZE, size: 2 * MiB });
    expect(await journal()).toBe(base + 2 * MiB);
    await consistent();
    // Kept in SQLite: a restart finds the same count (looked at as the object
    // starts again, before the file, closed by the restart, is published).
    await abortAllDurableObjects();
    expect(await inObject((fs) => [fs.journal.bytes, fs.check().ok])).toEqual([base + 2 * MiB, true]);
    ({ client: c } = await mount());
    // Published: nothing of it is journal any more, and R2 holds the zeros.
    await shareObject().publishAll();
    expect(await journal()).toBe(base);
    const obj = new Uint8Array(await (await BUCKET.get("main/sparse.bin"))!.arrayBuffer());
    expect(obj.byteLength).toBe(2 * MiB);
    expect(obj.subarray(500).every((b) => b === 0)).toBe(true);
    // A published file: growing it counts, cutting it below what R2 holds gives it all back.
    const open = await openFile(c, "sparse.bin", 0);
    await setattr(c, "sparse.bin", { valid: SIZE, size: 3 * MiB });
    expect(await journal()).toBe(base + MiB);
    await setattr(c, "sparse.bin", { valid: SIZE, size: MiB });
    expect(await journal()).toBe(base);
    await setattr(c, "sparse.bin", { valid: SIZE, size: 2 * MiB });
    expect(await journal()).toBe(base + MiB);
    // Unlinked: gone with the file (here while open: at its last clunk).
    await unlink(c, "sparse.bin");
    expect(await journal()).toBe(base + MiB);
    await clunk(c, open);
    expect(await journal()).toBe(base);
    expect(await bavail(c)).toBe(free);
    await consistent();
  });

  it("recounts the hole when a publish finishes after the file changed under it", async () => {
    const { client: c } = await mount();
    await shareObject().publishAll();
    const base = await journal();
    const fid = await create(c, "changed-during.bin");
    await writeAt(c, fid, 0, noise(100, 7));
    await setattr(c, "changed-during.bin", { valid: SIZE, size: 2000 });
    expect(await journal()).toBe(base + 2000);
    const ino = Number((await getattr(c, "changed-during.bin")).qid.path);
    // The publish takes its snapshot (2000 bytes), then a write 1000 bytes past the end lands before it settles.
    await inObject(async (fs) => {
      const publishing = fs.publisher.publish(ino, true);
      fs.write(ino, 3000, new Uint8Array([1]), false, 0);
      await publishing;
    });
    // The object holds the first 2000 bytes; the journal the 100 bytes written
    // before (kept: the file changed meanwhile), the byte at 3000 and the 1000-byte gap.
    expect((await BUCKET.head("main/changed-during.bin"))!.size).toBe(2000);
    expect(await journal()).toBe(base + 100 + 1 + 1000);
    await consistent();
    await clunk(c, fid);
    await shareObject().publishAll();
    expect(await journal()).toBe(base);
    await consistent();
  });
});

describe("a share from before holes were counted", () => {
  it("counts the holes it already has when its schema gains the column", async () => {
    const { client: c } = await mount();
    await shareObject().publishAll();
    const base = await journal();
    const fid = await create(c, "old-hole.bin");
    await writeAt(c, fid, 0, noise(100, 9));
    await setattr(c, "old-hole.bin", { valid: SIZE, size: 5000 });
    const r = await inObject((fs, sql) => {
      // The share as an earlier release left it: no hbytes, a total of extents only.
      sql.exec(`ALTER TABLE inode DROP COLUMN hbytes`);
      sql.exec(`UPDATE meta SET v = (SELECT coalesce(sum(len), 0) FROM extent) WHERE k = 'journal_bytes'`);
      migrate(sql);
      return { total: fs.ns.meta("journal_bytes"), check: fs.check() };
    });
    expect(r.total).toBe(base + 5000);
    expect(r.check.ok).toBe(true);
    await clunk(c, fid);
  });
});

describe("multipart parts", () => {
  it("never holds a part larger than the in-flight budget, and does not retry a file too large to publish", async () => {
    // An object another tool put may be far larger than any file written
    // here (R2 takes 4.995 TiB); a rename or chmod republishes it. Stand in
    // for one of 4 TiB: a small object whose inode says so.
    const { client: c } = await mount();
    const fid = await walkTo(c, "big-object.bin");
    await clunk(c, fid);
    const ino = Number((await getattr(c, "big-object.bin")).qid.path);
    await inObject((fs) => fs.ns.update(ino, { size: 2 ** 42, base_len: 2 ** 42 }));
    await setattr(c, "big-object.bin", { valid: 0x1, mode: 0o600 });
    const failures = (await shareObject().stats()).publish!.failures;
    const after = await inObject(async (fs, sql) => {
      await fs.publisher.publish(ino, true);
      return {
        parts: sql.exec(`SELECT part_size FROM upload WHERE ino = ?`, ino).toArray().map((r) => r.part_size as number),
        publishAfter: sql.exec(`SELECT publish_after FROM inode WHERE ino = ?`, ino).one().publish_after,
      };
    });
    for (const p of after.parts) expect(p).toBeLessThanOrEqual(INFLIGHT);
    expect(after.publishAfter).toBeNull();
    expect((await shareObject().stats()).publish!.failures).toBe(failures);
    // Its own size again, and it publishes.
    await inObject((fs) => fs.ns.update(ino, { size: 10, base_len: 10 }));
    await shareObject().publishAll();
    expect((await BUCKET.head("main/big-object.bin"))!.customMetadata!.mode).toBe(String(0o100600));
  });
});
