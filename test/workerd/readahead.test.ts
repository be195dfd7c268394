// Readahead (storage/readahead.ts): a file read sequentially through one fid
// gets its next ranges fetched from R2 before the client asks, so a read
// the window holds waits on no R2 round trip. It never serves bytes the
// file no longer has: a write by another session, a truncate, an object
// replaced in R2 by another tool, a seek, all between two reads.

import { beforeAll, describe, expect, it } from "vitest";
import { type Client, ERRNO } from "../../protocol/index.ts";
import { clunk, openFile, walkTo, writeAt } from "./support/fs.ts";
import { BUCKET, diff, mount, noise, put, shareObject, sleep } from "./support/gateway.ts";
import { r2Calls, watchR2 } from "./support/r2-watch.ts";

const MiB = 1 << 20;
/** Larger than the content cache's largest file (1 MiB by default): read through readahead, not the cache. */
const SIZE = 6 * MiB;
const COUNT = MiB - 24;

/** One Tread, as Linux sends them: msize - 24 bytes at the offset. */
async function treadAt(c: Client, fid: number, offset: number, count = COUNT): Promise<Uint8Array> {
  const r = await c.request({ type: "Tread", fid, offset: BigInt(offset), count });
  return r.data.slice();
}

/** Waits until the share's readahead has no fetch in flight (what it fetched has landed). */
async function settled(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await shareObject().stats()).readahead.fetching === 0) return;
    await sleep(25);
  }
  throw new Error("readahead fetches never settled");
}

beforeAll(async () => {
  for (const name of ["seq", "write", "trunc", "replace", "model", "clunk", "seek"]) await put("main", `ra/${name}.bin`, noise(SIZE, name.length * 7 + 1));
});

describe("readahead", () => {
  it("serves a sequential read from what it fetched ahead: no R2 get for a read's bytes after the first, each byte fetched once", async () => {
    const key = "main/ra/seq.bin";
    const want = noise(SIZE, "seq".length * 7 + 1);
    await watchR2();
    const { client: c } = await mount();
    const fid = await openFile(c, "ra/seq.bin", 0);
    const got = new Uint8Array(SIZE);
    let reads = 0;
    for (let off = 0; off < SIZE; ) {
      const before = (await r2Calls()).length;
      const data = await treadAt(c, fid, off);
      got.set(data, off);
      // Gets made while this read ran that fetched any of its bytes.
      const during = (await r2Calls())
        .slice(before)
        .filter((x) => x.method === "get" && x.key === key && x.range && x.range.offset < off + data.byteLength && x.range.offset + x.range.length > off);
      if (reads > 0) expect(during, `read ${reads} at ${off}`).toEqual([]);
      off += data.byteLength;
      reads++;
    }
    expect(diff(got, want)).toBe("equal");
    await clunk(c, fid);
    const gets = (await r2Calls()).filter((x) => x.method === "get" && x.key === key);
    // Every byte of the file came from R2 exactly once.
    expect(gets.reduce((n, g) => n + (g.range?.length ?? 0), 0)).toBe(SIZE);
    const s = await shareObject().stats();
    expect(s.readahead.hits).toBeGreaterThanOrEqual(reads - 1);
    expect(s.readahead.windowMax).toBeGreaterThan(0);
  });

  it("never serves bytes another session wrote over between two reads of a sequential stream", async () => {
    const model = noise(SIZE, "write".length * 7 + 1);
    const { client: a } = await mount();
    const { client: b } = await mount();
    const fid = await openFile(a, "ra/write.bin", 0);
    // Two reads: the window has grown and holds bytes past 2 MiB.
    expect(diff(await treadAt(a, fid, 0), model.subarray(0, COUNT))).toBe("equal");
    expect(diff(await treadAt(a, fid, COUNT), model.subarray(COUNT, 2 * COUNT))).toBe("equal");
    await settled();
    // Another session writes where the window already holds R2's bytes.
    const wf = await openFile(b, "ra/write.bin", 2);
    const patch = noise(70_000, 99);
    for (const at of [2 * COUNT + 5, 3 * MiB, 4 * MiB + 12_345]) {
      await writeAt(b, wf, at, patch);
      model.set(patch, at);
    }
    await clunk(b, wf);
    for (let off = 2 * COUNT; off < SIZE; ) {
      const data = await treadAt(a, fid, off);
      expect(diff(data, model.subarray(off, off + data.byteLength)), `read at ${off}`).toBe("equal");
      off += data.byteLength;
    }
    await clunk(a, fid);
  });

  it("never serves bytes a truncate took away, nor old bytes where a truncate up left a hole", async () => {
    const orig = noise(SIZE, "trunc".length * 7 + 1);
    const { client: a } = await mount();
    const { client: b } = await mount();
    const fid = await openFile(a, "ra/trunc.bin", 0);
    await treadAt(a, fid, 0);
    await treadAt(a, fid, COUNT);
    await settled();
    const cut = 2 * MiB + 1000;
    const setSize = async (size: number) => {
      const f = await walkTo(b, "ra/trunc.bin");
      await b.request({ type: "Tsetattr", fid: f, valid: 0x8, mode: 0, uid: 0, gid: 0, size: BigInt(size), atime_sec: 0n, atime_nsec: 0n, mtime_sec: 0n, mtime_nsec: 0n });
      await clunk(b, f);
    };
    await setSize(cut);
    const tail = await treadAt(a, fid, 2 * COUNT);
    expect(tail.byteLength).toBe(cut - 2 * COUNT);
    expect(diff(tail, orig.subarray(2 * COUNT, cut))).toBe("equal");
    expect((await treadAt(a, fid, cut)).byteLength).toBe(0);
    // Up again: what lies past the cut is a hole of zeros, not R2's old bytes.
    await setSize(SIZE);
    for (let off = cut; off < SIZE; ) {
      const data = await treadAt(a, fid, off);
      expect(data.some((x) => x !== 0), `read at ${off}`).toBe(false);
      off += data.byteLength;
    }
    await clunk(a, fid);
  });

  it("never serves an object's old bytes once the gateway has seen it replaced in R2 by another tool", async () => {
    const old = noise(SIZE, "replace".length * 7 + 1);
    const fresh = noise(SIZE, 4242);
    const { client: a } = await mount();
    const fid = await openFile(a, "ra/replace.bin", 0);
    await treadAt(a, fid, 0);
    await treadAt(a, fid, COUNT);
    await settled();
    await put("main", "ra/replace.bin", fresh);
    // Until the gateway sees it, the open fid reads the version it opened (whole) or ESTALE, never the new bytes.
    try {
      const data = await treadAt(a, fid, 2 * COUNT);
      expect(diff(data, old.subarray(2 * COUNT, 3 * COUNT))).toBe("equal");
    } catch (e) {
      expect(e).toMatchObject({ errno: ERRNO.ESTALE });
    }
    // The gateway sees the new etag when it lists the directory again (dir_revalidate_ms, 1 s here) on a lookup.
    await sleep(1100);
    await clunk(a, await walkTo(a, "ra/replace.bin"));
    await expect(treadAt(a, fid, 3 * COUNT)).rejects.toMatchObject({ errno: ERRNO.ESTALE });
    await clunk(a, fid);
    // A new open reads the new object, sequentially from the start, every byte new.
    const again = await openFile(a, "ra/replace.bin", 0);
    const got = new Uint8Array(SIZE);
    for (let off = 0; off < SIZE; ) {
      const data = await treadAt(a, again, off);
      got.set(data, off);
      off += data.byteLength;
    }
    expect(diff(got, fresh)).toBe("equal");
    await clunk(a, again);
  });

  it("reads what a model of the file holds through seeks, writes and truncates by another session (a seeded random run)", async () => {
    const model = { bytes: noise(SIZE, "model".length * 7 + 1), size: SIZE };
    const { client: a } = await mount();
    const { client: b } = await mount();
    const fid = await openFile(a, "ra/model.bin", 0);
    const wf = await openFile(b, "ra/model.bin", 2);
    let x = 12345;
    const rnd = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    let pos = 0;
    for (let step = 0; step < 60; step++) {
      const r = rnd(10);
      if (r < 6) {
        // Read on from where the stream is (sequential), with Linux's and smaller counts.
        const count = rnd(3) === 0 ? 4096 + rnd(60_000) : COUNT;
        const data = await treadAt(a, fid, pos, count);
        const expected = pos >= model.size ? new Uint8Array(0) : model.bytes.subarray(pos, Math.min(model.size, pos + count));
        expect(diff(data, expected), `step ${step}: read ${count} at ${pos}`).toBe("equal");
        pos += data.byteLength;
        if (data.byteLength === 0) pos = 0;
      } else if (r < 8) {
        pos = rnd(SIZE); // a seek
      } else if (r < 9) {
        const at = rnd(SIZE - 10_000);
        const patch = noise(1 + rnd(9000), step + 1);
        await writeAt(b, wf, at, patch);
        model.bytes.set(patch, at);
        model.size = Math.max(model.size, at + patch.byteLength);
      } else {
        const size = rnd(SIZE);
        await b.request({ type: "Tsetattr", fid: wf, valid: 0x8, mode: 0, uid: 0, gid: 0, size: BigInt(size), atime_sec: 0n, atime_nsec: 0n, mtime_sec: 0n, mtime_nsec: 0n });
        if (size < model.size) model.bytes.fill(0, size);
        model.size = size;
      }
    }
    await clunk(b, wf);
    await clunk(a, fid);
  });

  it("starts no readahead for reads that jump about", async () => {
    await watchR2();
    const { client: c } = await mount();
    const fid = await openFile(c, "ra/seek.bin", 0);
    const before = (await r2Calls()).length;
    const offsets = [3 * MiB, 100_000, 5 * MiB, 2 * MiB + 7, MiB];
    for (const off of offsets) await treadAt(c, fid, off, 8192);
    await settled();
    const gets = (await r2Calls()).slice(before).filter((g) => g.method === "get" && g.key === "main/ra/seek.bin");
    // One get per read, of that read's bytes only.
    expect(gets.map((g) => g.range)).toEqual(offsets.map((offset) => ({ offset, length: 8192 })));
    await clunk(c, fid);
  });

  it("gives back what it holds when the fid is clunked", async () => {
    const { client: c } = await mount();
    const fid = await openFile(c, "ra/clunk.bin", 0);
    await treadAt(c, fid, 0);
    await treadAt(c, fid, COUNT);
    await settled();
    expect((await shareObject().stats()).readahead.heldBytes).toBeGreaterThan(0);
    await clunk(c, fid);
    await settled();
    expect((await shareObject().stats()).readahead.heldBytes).toBe(0);
  });
});
