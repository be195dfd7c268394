// R2 failing, throwing or answering 429 for chosen calls (a wrapper around
// the real binding): the request that met the fault gets EIO, the session
// goes on, nothing is half-published, and the share converges once R2
// behaves again.

import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { ERRNO, decode, encode } from "../../protocol/index.ts";
import type { ShareObject } from "../../worker/share-object.ts";
import { cat, clunk, create, mkdir, openFile, unlink, utf8, walkTo, writeAt, writeFile } from "./support/fs.ts";
import { BUCKET, listDir, mount, put, rawSession, shareObject, sleep } from "./support/gateway.ts";
import { faultCalls as calls, faults } from "./support/r2-faults.ts";

beforeAll(async () => {
  await put("main", "faulty/read.txt", "readable");
  await put("main", "unlisted/x.txt", "x");
  // Before any listing of the root, so that the share finds calm/ at once.
  await put("main", "calm/mine.txt", "a's file");
  await put("main", "calm/theirs.txt", "b's file");
});

describe("R2 faults", () => {
  it("answers EIO to a read whose R2 get fails, and reads again once it works", async () => {
    const { client: c } = await mount();
    const fid = await openFile(c, "faulty/read.txt", 0);
    await faults([{ method: "get", key: "main/faulty/read.txt", times: 1 }]);
    await expect(c.request({ type: "Tread", fid, offset: 0n, count: 100 })).rejects.toMatchObject({ errno: ERRNO.EIO });
    const r = await c.request({ type: "Tread", fid, offset: 0n, count: 100 });
    expect(utf8(r.data)).toBe("readable");
    await clunk(c, fid);
  });

  it("answers EIO to a walk whose directory listing fails, and lists once R2 works", async () => {
    const { client: c } = await mount();
    const dir = await walkTo(c, "unlisted");
    await faults([{ method: "list", key: "main/unlisted/", times: 1 }]);
    await expect(c.request({ type: "Twalk", fid: dir, newfid: 50, wnames: ["x.txt"] })).rejects.toMatchObject({
      errno: ERRNO.EIO,
    });
    expect(utf8(await cat(c, "unlisted/x.txt"))).toBe("x");
  });

  it("retries a failed publish: nothing is half-published, and R2 converges", async () => {
    const { client: c } = await mount();
    await writeFile(c, "retry.txt", "eventually");
    await faults([{ method: "put", key: "main/retry.txt", times: 3 }]);
    await shareObject().publishAll();
    expect(utf8(new Uint8Array(await (await BUCKET.get("main/retry.txt"))!.arrayBuffer()))).toBe("eventually");
    const puts = (await calls()).filter((x) => x.method === "put" && x.key === "main/retry.txt");
    expect(puts.filter((x) => x.injected)).toHaveLength(3);
    expect((await shareObject().stats()).publish!.failures).toBeGreaterThanOrEqual(3);
  });

  it("waits out R2's 429 for a second write of one key within a second, and converges", async () => {
    const { client: c } = await mount();
    await faults([], { sameKeyPerSecond: true });
    await writeFile(c, "hot.txt", "v1");
    await shareObject().publishAll();
    const fid = await openFile(c, "hot.txt");
    await writeAt(c, fid, 0, "v2");
    await clunk(c, fid);
    await shareObject().publishAll();
    const f2 = await openFile(c, "hot.txt");
    await writeAt(c, f2, 0, "v3");
    await clunk(c, f2);
    // And an injected 429 on top: the publisher backs off and tries again.
    await faults([{ method: "put", key: "main/hot.txt", kind: "429", times: 2 }]);
    await shareObject().publishAll();
    expect(utf8(new Uint8Array(await (await BUCKET.get("main/hot.txt"))!.arrayBuffer()))).toBe("v3");
    expect(utf8(await cat(c, "hot.txt"))).toBe("v3");
    const puts = (await calls()).filter((x) => x.method === "put" && x.key === "main/hot.txt");
    // Three versions published; the publisher itself never wrote the key twice within a second.
    expect(puts.filter((x) => !x.injected && !x.rateLimited)).toHaveLength(3);
    expect(puts.filter((x) => x.rateLimited)).toHaveLength(0);
  });

  it("answers a flushed Tflush before the Rflush of the Tflush that flushed it (flush(5))", async () => {
    await put("main", "faulty/slow.txt", "slow");
    const r = await rawSession();
    const L = "9P2000.L";
    const ask = async (m: Parameters<typeof encode>[0]) => (r.send(encode(m, L)), decode(await r.next(), L));
    await ask({ type: "Tversion", tag: 0xffff, msize: 8192, version: L });
    await ask({ type: "Tattach", tag: 1, fid: 0, afid: 0xffffffff, uname: "", aname: "", n_uname: 0 });
    await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["faulty", "slow.txt"] });
    await ask({ type: "Tlopen", tag: 1, fid: 1, flags: 0 });
    await faults([{ method: "get", key: "main/faulty/slow.txt", kind: "delay", delayMs: 600, times: 1 }]);
    // The test pool's in-process socket may reorder back-to-back messages: space them.
    r.send(encode({ type: "Tread", tag: 10, fid: 1, offset: 0n, count: 100 }, L));
    await sleep(100);
    r.send(encode({ type: "Tflush", tag: 11, oldtag: 10 }, L)); // waits for the slow read
    await sleep(100);
    r.send(encode({ type: "Tflush", tag: 12, oldtag: 11 }, L)); // must wait for Rflush 11
    const order: string[] = [];
    for (let i = 0; i < 3; i++) {
      const m = decode(await r.next(), L);
      order.push(`${m.type}:${m.tag}`);
      if (m.tag === 12) break;
    }
    expect(order.indexOf("Rflush:11")).toBeGreaterThanOrEqual(0);
    expect(order.indexOf("Rflush:11")).toBeLessThan(order.indexOf("Rflush:12"));
    await faults([]);
  });

  it("keeps the session working after faults, and other sessions never notice", async () => {
    // Objects in R2 (beforeAll) no test has read: the first read of each is
    // an R2 get (no cache, no readahead holds them yet).
    const mine = "main/calm/mine.txt";
    const { client: a } = await mount();
    const { client: b } = await mount();
    const fa = await openFile(a, "calm/mine.txt", 0);
    const fb = await openFile(b, "calm/mine.txt", 0);
    const read = (c: typeof a, fid: number) => c.request({ type: "Tread", fid, offset: 0n, count: 100 }).then((r) => utf8(r.data));
    const since = (await calls()).length;
    // Every get of a's file fails until the fault is cleared.
    await faults([{ method: "get", key: mine }]);
    await expect(read(a, fa), "a's read, with every get of its file failing").rejects.toMatchObject({ errno: ERRNO.EIO });
    const met = (await calls()).slice(since).filter((x) => x.injected);
    expect(met.length, "a's read met the fault in R2").toBeGreaterThan(0);
    expect(met.every((x) => x.method === "get" && x.key === mine)).toBe(true);
    // Meanwhile b's session goes on: another object from R2, a new file.
    expect(utf8(await cat(b, "calm/theirs.txt"))).toBe("b's file");
    await writeFile(b, "calm/b-wrote.txt", "during the fault");
    await faults([]);
    // Nothing of the failure stayed behind: b's first read of a's file, and
    // a's read again, get its bytes.
    await expect(read(b, fb), "b's first read of a's file, R2 working again").resolves.toBe("a's file");
    await expect(read(a, fa), "a's read again, R2 working again").resolves.toBe("a's file");
    // a's session goes on too.
    const fid = await create(a, "after-fault.txt");
    await writeAt(a, fid, 0, "fine");
    await clunk(a, fid);
    expect(utf8(await cat(b, "after-fault.txt"))).toBe("fine");
    expect(utf8(await cat(a, "calm/b-wrote.txt"))).toBe("during the fault");
    await clunk(a, fa);
    await clunk(b, fb);
  });
});

// A file removed here must not come back from an R2 listing while its object
// is still there (docs/design.md, "Who owns what": the share's object owns the namespace).
describe("removed files stay removed", () => {
  const names = async (c: Parameters<typeof listDir>[0], dir: string) => (await listDir(c, dir)).entries.map((e) => e.name);
  /** Past the test share's dir_revalidate_ms (1 s): the next lookup lists again. */
  const stale = () => sleep(1100);

  it("while the R2 delete fails, and deletes the object once R2 works", async () => {
    const { client: c } = await mount();
    await mkdir(c, "tomb");
    await writeFile(c, "tomb/gone.txt", "bye");
    await shareObject().publishAll();
    await faults([{ method: "delete", key: "main/tomb/gone.txt" }]);
    await unlink(c, "tomb/gone.txt");
    await shareObject().publishAll();
    await stale();
    expect(await names(c, "tomb")).not.toContain("gone.txt");
    expect(await BUCKET.head("main/tomb/gone.txt")).not.toBeNull(); // the tombstone did it
    await faults([]);
    await shareObject().publishAll();
    expect(await BUCKET.head("main/tomb/gone.txt")).toBeNull();
    expect(await names(c, "tomb")).not.toContain("gone.txt");
  });

  it("when the delete lands while a listing that still saw the object is on its way", async () => {
    const { client: c } = await mount();
    await mkdir(c, "tomb2");
    await writeFile(c, "tomb2/gone.txt", "bye");
    await shareObject().publishAll();
    await faults([{ method: "delete", key: "main/tomb2/gone.txt" }]);
    await unlink(c, "tomb2/gone.txt");
    await stale();
    await faults([{ method: "list", key: "main/tomb2/", kind: "late-answer", delayMs: 600, times: 1 }]);
    const listing = names(c, "tomb2");
    await sleep(150); // the listing has seen the object; its answer is held
    await shareObject().publishAll(); // the delete runs, and its job row goes
    expect(await BUCKET.head("main/tomb2/gone.txt")).toBeNull();
    expect(await listing).not.toContain("gone.txt");
    expect(await names(c, "tomb2")).not.toContain("gone.txt");
    await faults([]);
  });

  it("when a restart cut the upload of a file removed meanwhile", async () => {
    const { client: c } = await mount();
    await mkdir(c, "cut");
    await shareObject().publishAll();
    await writeFile(c, "cut/x.txt", "uploaded, then removed");
    // The put lands and is never answered; the publish runs inside the
    // object, so no request of the test is in flight at the abort.
    await faults([{ method: "put", key: "main/cut/x.txt", kind: "lost-answer", times: 1 }]);
    await runInDurableObject(shareObject(), async (obj: ShareObject) => {
      void (obj as unknown as { ready: { fs: { publishAll(): Promise<void> } } }).ready.fs.publishAll().catch(() => {});
    });
    for (let i = 0; i < 100 && (await BUCKET.head("main/cut/x.txt")) === null; i++) await sleep(20);
    await unlink(c, "cut/x.txt");
    await abortAllDurableObjects();
    expect(await BUCKET.head("main/cut/x.txt")).not.toBeNull();
    await stale();
    const { client: d } = await mount();
    expect(await names(d, "cut")).not.toContain("x.txt");
    await shareObject().publishAll();
    expect(await BUCKET.head("main/cut/x.txt")).toBeNull();
  });
});
