// Directory link counts as Linux's local file systems keep them: 2 (its
// entry in the parent and its own ".") plus one ".." per subdirectory,
// exact through mkdir, rmdir, renames across parents, R2 listings and
// restarts; GET .../check verifies them.

import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { Client } from "../../protocol/index.ts";
import type { ShareObject } from "../../worker/share-object.ts";
import { clunk, getattr, mkdir, rename, unlink, walkTo, writeFile } from "./support/fs.ts";
import { BUCKET, mount, put, shareObject, sleep } from "./support/gateway.ts";

const links = async (c: Client, path: string) => Number((await getattr(c, path)).nlink);
const countsOf = async (c: Client, paths: string[]) => Promise.all(paths.map((p) => links(c, p)));

async function check() {
  const res = await exports.default.fetch("http://gateway/v1/shares/main/check", {
    headers: { Authorization: "Bearer test-operator-token-0123456789abcdef" },
  });
  return { status: res.status, body: (await res.json()) as { ok: boolean; problems: Record<string, number> } };
}

// Before the root is first listed (a lookup of a missing name never lists it again).
beforeAll(async () => {
  await put("main", "nl-i/a/x", "x");
  await put("main", "nl-i/b/y", "y");
  await put("main", "nl-i/c/", ""); // an empty directory's marker
  await put("main", "nl-i/file", "f");
});

describe("directory link counts", () => {
  it("are 2 for a new directory, one more per subdirectory (files count none), one less after rmdir", async () => {
    const { client: c } = await mount();
    await mkdir(c, "nl-a");
    expect(await links(c, "nl-a")).toBe(2);
    await mkdir(c, "nl-a/x");
    await mkdir(c, "nl-a/y");
    await writeFile(c, "nl-a/file", "f");
    expect(await countsOf(c, ["nl-a", "nl-a/x", "nl-a/y", "nl-a/file"])).toEqual([4, 2, 2, 1]);
    await unlink(c, "nl-a/y", true);
    expect(await links(c, "nl-a")).toBe(3);
    expect((await check()).body.ok).toBe(true);
  });

  it("follow a directory renamed to another parent, within its parent, and over an empty directory", async () => {
    const { client: c } = await mount();
    for (const d of ["nl-r", "nl-r/p", "nl-r/q", "nl-r/p/d", "nl-r/p/d/sub"]) await mkdir(c, d);
    expect(await countsOf(c, ["nl-r/p", "nl-r/q", "nl-r/p/d"])).toEqual([3, 2, 3]);
    await rename(c, "nl-r/p/d", "nl-r/q/d");
    expect(await countsOf(c, ["nl-r/p", "nl-r/q", "nl-r/q/d"])).toEqual([2, 3, 3]);
    await rename(c, "nl-r/q/d", "nl-r/q/e");
    expect(await countsOf(c, ["nl-r/p", "nl-r/q", "nl-r/q/e"])).toEqual([2, 3, 3]);
    // Over an empty directory of the other parent: that one goes, this one arrives.
    await mkdir(c, "nl-r/p/empty");
    expect(await links(c, "nl-r/p")).toBe(3);
    await rename(c, "nl-r/q/e", "nl-r/p/empty");
    expect(await countsOf(c, ["nl-r/p", "nl-r/q", "nl-r/p/empty", "nl-r/p/empty/sub"])).toEqual([3, 2, 3, 2]);
    // Files moving between directories change no directory's count.
    await writeFile(c, "nl-r/q/f", "f");
    await rename(c, "nl-r/q/f", "nl-r/p/f");
    expect(await countsOf(c, ["nl-r/p", "nl-r/q"])).toEqual([3, 2]);
    expect((await check()).body.ok).toBe(true);
  });

  it("of a directory removed while open read 0 through its fid, and it goes at the last clunk", async () => {
    const { client: c } = await mount();
    await mkdir(c, "nl-o");
    await mkdir(c, "nl-o/gone");
    const fid = await walkTo(c, "nl-o/gone");
    await c.request({ type: "Tlopen", fid, flags: 0 });
    await unlink(c, "nl-o/gone", true);
    expect((await c.request({ type: "Tgetattr", fid, request_mask: 0x3fffn })).nlink).toBe(0n);
    expect(await links(c, "nl-o")).toBe(2);
    await clunk(c, fid);
    expect((await check()).body).toMatchObject({ ok: true, problems: { unreachable: 0, linkMiscounts: 0 } });
  });

  it("survive a restart", async () => {
    const { client: a } = await mount();
    for (const d of ["nl-s", "nl-s/a", "nl-s/b", "nl-s/b/c"]) await mkdir(a, d);
    await abortAllDurableObjects();
    const { client: c } = await mount();
    expect(await countsOf(c, ["nl-s", "nl-s/a", "nl-s/b", "nl-s/b/c"])).toEqual([4, 2, 3, 2]);
    expect((await check()).body.ok).toBe(true);
  });

  it("are counted again for a share whose directories all had 1 (made before counts were kept)", async () => {
    const { client: a } = await mount();
    for (const d of ["nl-m", "nl-m/a", "nl-m/b"]) await mkdir(a, d);
    // The rows as the release before this one wrote them.
    await runInDurableObject(shareObject(), (_o: ShareObject, state) => {
      state.storage.sql.exec(`UPDATE inode SET nlink = 1 WHERE (mode & 61440) = 16384`);
      state.storage.sql.exec(`DELETE FROM meta WHERE k = 'dir_nlink'`);
    });
    await abortAllDurableObjects();
    const { client: c } = await mount();
    expect(await countsOf(c, ["nl-m", "nl-m/a"])).toEqual([4, 2]);
    expect((await check()).body.ok).toBe(true);
  });

  it("count what an R2 listing brings in and takes away, and read 1 (not known) until the directory is listed", async () => {
    const { client: c } = await mount();
    expect(await links(c, "nl-i")).toBe(1); // its parent was listed, not it
    await clunk(c, await walkTo(c, "nl-i/a")); // a lookup in it lists it
    expect(await countsOf(c, ["nl-i", "nl-i/a", "nl-i/file"])).toEqual([5, 1, 1]);
    await clunk(c, await walkTo(c, "nl-i/a/x"));
    expect(await links(c, "nl-i/a")).toBe(2);
    await BUCKET.delete("main/nl-i/b/y");
    await sleep(1100); // dir_revalidate_ms is 1000 in the tests
    await expect(walkTo(c, "nl-i/b")).rejects.toThrow();
    expect(await links(c, "nl-i")).toBe(4);
    expect((await check()).body.ok).toBe(true);
    // A restart keeps what was listed: nothing is listed again to count it.
    await abortAllDurableObjects();
    const { client: d } = await mount();
    expect(await links(d, "nl-i")).toBe(4);
  });

  it("that are off show in GET .../check (409, linkMiscounts)", async () => {
    const { client: c } = await mount();
    await mkdir(c, "nl-x");
    const ino = Number((await getattr(c, "nl-x")).qid.path);
    const set = (n: number) =>
      runInDurableObject(shareObject(), (obj: ShareObject, state) => {
        state.storage.sql.exec(`UPDATE inode SET nlink = ? WHERE ino = ?`, n, ino);
        (obj as unknown as { ready: { fs: { ns: { update(i: number, u: object): void } } } }).ready.fs.ns.update(ino, {});
      });
    await set(3);
    const bad = await check();
    expect(bad.status).toBe(409);
    expect(bad.body.problems.linkMiscounts).toBe(1);
    await set(2);
    expect((await check()).body.ok).toBe(true);
  });
});
