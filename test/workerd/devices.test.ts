// Block and character devices (issue 14): Tmknod makes them with their
// numbers, Rgetattr gives the numbers back the way the Linux client decodes
// them, they take chmod, chown, link, rename and unlink like any file, and
// they stay what they are across a restart of the share's object and a
// publish + relisting from R2 (an empty object whose metadata says what it
// is). A share with device_nodes = false refuses them with EPERM.

import { abortAllDurableObjects } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { type Client, DT, ERRNO, S_IF } from "../../protocol/index.ts";
import { clunk, getattr, mkdir, rename, setattr, unlink, walkTo } from "./support/fs.ts";
import { BUCKET, listDir, mount, put, shareObject, sleep } from "./support/gateway.ts";

/**
 * st_rdev as Linux's new_encode_dev (include/linux/kdev_t.h) packs it and
 * new_decode_dev unpacks it, which v9fs_stat2inode_dotl (fs/9p/vfs_inode_dotl.c)
 * applies to Rgetattr's rdev: minor's low 8 bits, then 12 bits of major,
 * then minor's upper 12 bits.
 */
const linuxDev = (major: number, minor: number) => ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;

async function mknod(c: Client, path: string, mode: number, major: number, minor: number, gid = 0) {
  const i = path.lastIndexOf("/");
  const dfid = await walkTo(c, i < 0 ? "" : path.slice(0, i));
  try {
    return await c.request({ type: "Tmknod", dfid, name: path.slice(i + 1), mode, major, minor, gid });
  } finally {
    await clunk(c, dfid);
  }
}

const check = async () =>
  (await (
    await exports.default.fetch("http://gateway/v1/shares/main/check", { headers: { Authorization: "Bearer test-operator-token-0123456789abcdef" } })
  ).json()) as { ok: boolean };

// Objects another tool put, before the share lists its root (a listing is
// trusted for dir_revalidate_ms).
beforeAll(async () => {
  await put("main", "devput/loop0", "", { mode: String(0o060640), rdev: String(linuxDev(7, 0)), uid: "0", gid: "6" });
  await put("main", "devput/no-rdev", "", { mode: String(0o020600) });
  // rdev means nothing on a regular file, and a number past 32 bits is no Linux device.
  await put("main", "devput/file", "x", { mode: String(0o100644), rdev: "259" });
  await put("main", "devput/huge", "", { mode: String(0o020600), rdev: String(2 ** 40) });
});

describe("device nodes", () => {
  it("makes block and character devices whose Rgetattr carries the mode and rdev Linux decodes", async () => {
    const { client: c } = await mount();
    await mkdir(c, "devs");
    await mknod(c, "devs/blk", S_IF.BLK | 0o644, 1, 2);
    await mknod(c, "devs/chr", S_IF.CHR | 0o600, 8, 300);
    // The largest numbers Linux's dev_t holds: 12 bits of major, 20 of minor.
    await mknod(c, "devs/max", S_IF.CHR | 0o640, 4095, 1048575);
    const b = await getattr(c, "devs/blk");
    expect([b.mode, b.rdev, b.size, b.qid.type]).toEqual([0o060644, BigInt(linuxDev(1, 2)), 0n, 0]);
    expect(b.rdev).toBe(0x102n);
    const ch = await getattr(c, "devs/chr");
    expect([ch.mode, ch.rdev]).toEqual([0o020600, BigInt(linuxDev(8, 300))]);
    expect((await getattr(c, "devs/max")).rdev).toBe(0xffffffffn);
    // A regular file's rdev stays 0.
    expect((await getattr(c, "devs")).rdev).toBe(0n);
    const types = Object.fromEntries((await listDir(c, "devs")).entries.map((e) => [e.name, e.type]));
    expect(types).toMatchObject({ blk: DT.BLK, chr: DT.CHR, max: DT.CHR });
    // Numbers Linux cannot hold are refused, and nothing is made.
    await expect(mknod(c, "devs/big-major", S_IF.BLK | 0o644, 4096, 0)).rejects.toMatchObject({ errno: ERRNO.EINVAL });
    await expect(mknod(c, "devs/big-minor", S_IF.CHR | 0o644, 0, 1 << 20)).rejects.toMatchObject({ errno: ERRNO.EINVAL });
    await expect(walkTo(c, "devs/big-major")).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    // An existing name stays EEXIST, whatever the numbers.
    await expect(mknod(c, "devs/blk", S_IF.BLK | 0o777, 3, 4)).rejects.toMatchObject({ errno: ERRNO.EEXIST });
  });

  it("chmods, chowns, links, renames and unlinks a device node, which keeps its type and numbers", async () => {
    const { client: c } = await mount();
    await mkdir(c, "devops");
    await mkdir(c, "devops/sub");
    const made = await mknod(c, "devops/tty", S_IF.CHR | 0o644, 5, 0);
    const rdev = BigInt(linuxDev(5, 0));
    await setattr(c, "devops/tty", { valid: 0x1, mode: 0o0710 });
    expect((await getattr(c, "devops/tty")).mode).toBe(0o020710);
    await setattr(c, "devops/tty", { valid: 0x2 | 0x4, uid: 65534, gid: 65533 });
    const owned = await getattr(c, "devops/tty");
    expect([owned.mode, owned.uid, owned.gid, owned.rdev]).toEqual([0o020710, 65534, 65533, rdev]);
    // A hard link in another directory: the same inode, nlink 2.
    const d = await walkTo(c, "devops/sub");
    const f = await walkTo(c, "devops/tty");
    await c.request({ type: "Tlink", dfid: d, fid: f, name: "tty-link" });
    await clunk(c, d);
    await clunk(c, f);
    const linked = await getattr(c, "devops/sub/tty-link");
    expect([linked.qid.path, linked.nlink, linked.mode, linked.rdev]).toEqual([made.qid.path, 2n, 0o020710, rdev]);
    await rename(c, "devops/tty", "devops/console");
    await expect(walkTo(c, "devops/tty")).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    const moved = await getattr(c, "devops/console");
    expect([moved.qid.path, moved.mode, moved.rdev]).toEqual([made.qid.path, 0o020710, rdev]);
    // A rename over a device replaces it, as over any file.
    await mknod(c, "devops/other", S_IF.BLK | 0o600, 7, 7);
    await rename(c, "devops/other", "devops/console");
    const replaced = await getattr(c, "devops/console");
    expect([replaced.mode, replaced.rdev]).toEqual([0o060600, BigInt(linuxDev(7, 7))]);
    expect((await getattr(c, "devops/sub/tty-link")).nlink).toBe(1n);
    await unlink(c, "devops/sub/tty-link");
    await unlink(c, "devops/console");
    await expect(walkTo(c, "devops/console")).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    await shareObject().publishAll();
    // Nothing is left in R2 for them (the directories' markers are).
    expect((await BUCKET.list({ prefix: "main/devops/" })).objects.map((o) => o.key).filter((k) => !k.endsWith("/"))).toEqual([]);
    expect(await check()).toMatchObject({ ok: true });
  });

  it("keeps device nodes across a restart, publishes them as empty objects with mode and rdev, and keeps them once listed again", async () => {
    const { client: a } = await mount();
    await mkdir(a, "devkeep");
    await mknod(a, "devkeep/sda", S_IF.BLK | 0o660, 8, 0, 6);
    await mknod(a, "devkeep/null", S_IF.CHR | 0o666, 1, 3);
    // A restart before anything was published: the nodes live in SQLite.
    await abortAllDurableObjects();
    const { client: c } = await mount();
    const sda = await getattr(c, "devkeep/sda");
    expect([sda.mode, sda.rdev, sda.gid]).toEqual([0o060660, BigInt(linuxDev(8, 0)), 6]);
    expect((await getattr(c, "devkeep/null")).rdev).toBe(BigInt(linuxDev(1, 3)));
    await shareObject().publishAll();
    const obj = await BUCKET.head("main/devkeep/sda");
    expect(obj?.size).toBe(0);
    expect(obj?.customMetadata).toMatchObject({ mode: String(0o060660), rdev: String(linuxDev(8, 0)), gid: "6" });
    expect((await BUCKET.head("main/devkeep/null"))?.customMetadata).toMatchObject({ mode: String(0o020666), rdev: String(linuxDev(1, 3)) });
    await sleep(1100); // past dir_revalidate_ms: the next lookup lists R2 again
    const again = await getattr(c, "devkeep/sda");
    expect([again.qid.path, again.mode, again.rdev]).toEqual([sda.qid.path, 0o060660, BigInt(linuxDev(8, 0))]);
    // Published, listed again, then restarted: still the same devices.
    await abortAllDurableObjects();
    await sleep(1100);
    const { client: d } = await mount();
    const last = await getattr(d, "devkeep/null");
    expect([last.mode, last.rdev, last.size]).toEqual([0o020666, BigInt(linuxDev(1, 3)), 0n]);
    // A chmod is re-published with the device's numbers kept.
    await setattr(d, "devkeep/null", { valid: 0x1, mode: 0o600 });
    await shareObject().publishAll();
    expect((await BUCKET.head("main/devkeep/null"))?.customMetadata).toMatchObject({ mode: String(0o020600), rdev: String(linuxDev(1, 3)) });
    expect((await BUCKET.list({ prefix: "main/devkeep/" })).objects.map((o) => o.key).sort()).toEqual(["main/devkeep/", "main/devkeep/null", "main/devkeep/sda"]);
    expect(await check()).toMatchObject({ ok: true });
  });

  it("imports an object another tool put with a device's mode and rdev as that device", async () => {
    const { client: c } = await mount();
    const loop = await getattr(c, "devput/loop0");
    expect([loop.mode, loop.rdev, loop.uid, loop.gid, loop.size]).toEqual([0o060640, BigInt(linuxDev(7, 0)), 0, 6, 0n]);
    expect((await getattr(c, "devput/no-rdev")).rdev).toBe(0n);
    const file = await getattr(c, "devput/file");
    expect([file.mode, file.rdev]).toEqual([0o100644, 0n]);
    expect((await getattr(c, "devput/huge")).rdev).toBe(0n);
  });

  it("refuses device nodes with EPERM on a share with device_nodes = false, FIFOs still made; EROFS on a read-only share", async () => {
    const { client: c } = await mount("nodev");
    await expect(mknod(c, "blk", S_IF.BLK | 0o644, 1, 2)).rejects.toMatchObject({ errno: ERRNO.EPERM });
    await expect(mknod(c, "chr", S_IF.CHR | 0o644, 1, 3)).rejects.toMatchObject({ errno: ERRNO.EPERM });
    await expect(walkTo(c, "blk")).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    await mknod(c, "fifo", S_IF.FIFO | 0o644, 0, 0);
    expect((await getattr(c, "fifo")).mode).toBe(0o010644);
    const { client: r } = await mount("ro");
    await expect(mknod(r, "blk", S_IF.BLK | 0o644, 1, 2)).rejects.toMatchObject({ errno: ERRNO.EROFS });
  });
});
