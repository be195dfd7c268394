// Treaddir over a directory of 2,500 objects: whole entries, replies sized
// to what is there, cookies that resume after any entry even when entries
// come and go; and when R2 is listed again.

import { beforeAll, describe, expect, it } from "vitest";
import { ERRNO } from "../../protocol/index.ts";
import { BUCKET, type Dirent, listDir, mount, parseDirents, put, shareObject, sleep } from "./support/gateway.ts";

const N = 2500;
const name = (i: number) => `file-${String(i).padStart(5, "0")}.txt`;

beforeAll(async () => {
  for (let i = 0; i < N; i += 250) {
    await Promise.all(Array.from({ length: 250 }, (_, j) => put("main", `big/${name(i + j)}`, `${i + j}`)));
  }
  await put("main", "fresh/seed.txt", "seed");
});

async function openDir(c: Awaited<ReturnType<typeof mount>>["client"], path: string[]) {
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: path });
  await c.request({ type: "Tlopen", fid, flags: 0 });
  return fid;
}

describe("Treaddir of a 2,500-entry directory", () => {
  it("lists every entry once, in several calls, each reply within its count", async () => {
    const { client: c } = await mount();
    const fid = await openDir(c, ["big"]);
    const seen: Dirent[] = [];
    let offset = 0n;
    let calls = 0;
    let prev = 0;
    for (;;) {
      const r = await c.request({ type: "Treaddir", fid, offset, count: 8192 });
      calls++;
      expect(r.data.byteLength).toBeLessThanOrEqual(8192);
      const batch = parseDirents(r.data);
      if (batch.length === 0) break;
      // Whole entries, as many as fit: the previous reply had no room for this batch's first.
      if (prev) expect(prev + 24 + new TextEncoder().encode(batch[0]!.name).byteLength).toBeGreaterThan(8192);
      prev = r.data.byteLength;
      seen.push(...batch);
      offset = batch.at(-1)!.offset;
    }
    expect(calls).toBeGreaterThan(5);
    const names = seen.map((e) => e.name);
    expect(names.slice(0, 2)).toEqual([".", ".."]);
    expect(names.slice(2).sort()).toEqual(Array.from({ length: N }, (_, i) => name(i)));
    // Every entry its own qid.path; "." is big/ itself and ".." the root.
    expect(new Set(seen.map((e) => e.path)).size).toBe(N + 2);
  });

  it("resumes from any cookie, also after entries were added and removed", async () => {
    const { client: c } = await mount();
    const full = (await listDir(c, "big", 65536)).entries;
    // Cookies the test picks: the first few, some in the middle, the last.
    const picks = [0, 1, 2, 3, 99, 1000, 1777, full.length - 2, full.length - 1];
    const fid = await openDir(c, ["big"]);
    const after = async (offset: bigint) => {
      const out: string[] = [];
      for (;;) {
        const r = parseDirents((await c.request({ type: "Treaddir", fid, offset, count: 65536 })).data);
        if (!r.length) return out;
        out.push(...r.map((e) => e.name));
        offset = r.at(-1)!.offset;
      }
    };
    for (const i of picks) {
      expect(await after(full[i]!.offset)).toEqual(full.slice(i + 1).map((e) => e.name));
    }
    // Remove some entries (one of them a picked cookie's own entry) and add new ones.
    const removed = [full[100]!.name, full[1000]!.name, full[2000]!.name];
    await BUCKET.delete(removed.map((n) => `main/big/${n}`));
    await put("main", "big/zz-new-1.txt", "n1");
    await put("main", "big/zz-new-2.txt", "n2");
    await sleep(1100); // past the test share's 1 s revalidation time
    const again = (await listDir(c, "big", 65536)).entries.map((e) => e.name);
    expect(again).not.toContain(removed[0]);
    expect(again.slice(-2)).toEqual(["zz-new-1.txt", "zz-new-2.txt"]);
    const fid2 = await openDir(c, ["big"]);
    for (const i of [1000, 1500, full.length - 1]) {
      const r = parseDirents((await c.request({ type: "Treaddir", fid: fid2, offset: full[i]!.offset, count: 65536 })).data);
      // Continues after the cookie's entry, even when that entry is gone.
      const expected = full
        .slice(i + 1)
        .map((e) => e.name)
        .filter((n) => !removed.includes(n))
        .concat(["zz-new-1.txt", "zz-new-2.txt"]);
      expect(r.map((e) => e.name)).toEqual(expected.slice(0, r.length));
      expect(r.length).toBeGreaterThan(0);
    }
  });

  it("refuses a count too small for the next entry instead of ending the listing", async () => {
    const { client: c } = await mount();
    const fid = await openDir(c, ["big"]);
    await expect(c.request({ type: "Treaddir", fid, offset: 2n, count: 20 })).rejects.toMatchObject({ errno: ERRNO.EINVAL });
  });
});

describe("R2 listings", () => {
  it("shows an object put after the first listing once the revalidation time has passed", async () => {
    const { client: c } = await mount();
    expect((await listDir(c, "fresh")).entries.map((e) => e.name)).toEqual([".", "..", "seed.txt"]);
    await put("main", "fresh/later.txt", "later");
    expect((await listDir(c, "fresh")).entries.map((e) => e.name)).toEqual([".", "..", "seed.txt"]);
    await sleep(1100);
    expect((await listDir(c, "fresh")).entries.map((e) => e.name)).toEqual([".", "..", "seed.txt", "later.txt"]);
  });

  it("does not list R2 again for lookups of missing names", async () => {
    const { client: c } = await mount();
    await listDir(c, "fresh");
    const before = (await shareObject().stats()).listCalls;
    const start = Date.now();
    for (let i = 0; i < 50; i++) {
      await expect(c.request({ type: "Twalk", fid: 0, newfid: 99, wnames: ["fresh", `missing-${i}`] })).resolves.toMatchObject({
        qids: [expect.anything()],
      });
    }
    // Only revalidation lists again: the root and "fresh", each at most once
    // per dir_revalidate_ms (1 s here), however many names were missing (a
    // loaded machine can take more than a second for the 50 walks).
    const periods = Math.floor((Date.now() - start) / 1000);
    expect((await shareObject().stats()).listCalls - before).toBeLessThanOrEqual(2 * periods);
  });
});
