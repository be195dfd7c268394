// Sessions: stable qids, many requests at once, Tflush, hibernation, and
// sessions whose socket a restart closed.

import { abortAllDurableObjects } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { diff, mount, noise, put, readFile, shareObject, sleep } from "./support/gateway.ts";

const BIG = noise(4 << 20, 3);
// The tests and the objects share one isolate (128 MB): keep files small.
const HUGE = noise(8 << 20, 5);

beforeAll(async () => {
  await put("main", "s/a.txt", "a");
  await put("main", "s/deep/b.txt", "b");
  await put("main", "s/big.bin", BIG);
  await put("main", "s/huge.bin", HUGE);
});

async function paths(c: Awaited<ReturnType<typeof mount>>["client"]) {
  const out: bigint[] = [];
  for (const p of [["s"], ["s", "a.txt"], ["s", "deep"], ["s", "deep", "b.txt"]]) {
    const fid = c.allocFid();
    const r = await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: p });
    out.push(r.qids.at(-1)!.path);
    await c.request({ type: "Tclunk", fid });
  }
  return out;
}

describe("sessions", () => {
  it("keep qid.path stable across sessions and across a restart of every object", async () => {
    const a = await mount();
    const first = await paths(a.client);
    expect(new Set(first).size).toBe(4);
    const b = await mount();
    expect(await paths(b.client)).toEqual(first);
    await abortAllDurableObjects();
    const c = await mount();
    expect(await paths(c.client)).toEqual(first);
  });

  it("sweep the sessions of sockets a restart closed, and release their fids", async () => {
    const a = await mount();
    await paths(a.client);
    const before = await shareObject().stats();
    expect(before.sessions).toBeGreaterThanOrEqual(1);
    await abortAllDurableObjects();
    // The old socket is dead: its requests fail.
    await expect(a.client.request({ type: "Tclunk", fid: 0 })).rejects.toThrow();
    const after = await shareObject().stats();
    expect(after.sessions).toBe(after.sockets);
  });

  it("answer 64 concurrent Treads on one fid with the right bytes", async () => {
    const { client: c } = await mount("main", 1 << 20);
    const fid = c.allocFid();
    await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: ["s", "big.bin"] });
    await c.request({ type: "Tlopen", fid, flags: 0 });
    const chunk = BIG.byteLength / 64;
    const replies = await Promise.all(
      Array.from({ length: 64 }, (_, i) => c.request({ type: "Tread", fid, offset: BigInt(i * chunk), count: chunk })),
    );
    replies.forEach((r, i) => expect(diff(r.data, BIG.subarray(i * chunk, (i + 1) * chunk))).toBe("equal"));
  });

  it("read an 8 MiB file at msize 8 MiB and a 4 MiB file at msize 4096", async () => {
    const big = await mount("main", 8 << 20);
    expect(big.client.msize).toBe(8 << 20);
    expect(diff(await readFile(big.client, "s/huge.bin"), HUGE)).toBe("equal");
    const small = await mount("main", 4096);
    expect(small.client.msize).toBe(4096);
    expect(diff(await readFile(small.client, "s/big.bin"), BIG)).toBe("equal");
  });
});

// Tflush racing the request it flushes is tested over real sockets against
// a gateway process (test/node/gateway-flush.test.ts): the in-process
// WebSocket of this test pool can deliver two messages sent back to back in
// either order, which a network socket never does.
describe("Tflush", () => {
  it("answers a flush of an unknown tag at once", async () => {
    const { client: c } = await mount();
    await expect(c.request({ type: "Tflush", oldtag: 4321 })).resolves.toMatchObject({ type: "Rflush" });
  });

  it("answers a flush of a finished request at once, and the tag can be used again", async () => {
    const { client: c } = await mount();
    await c.request({ type: "Twalk", fid: 0, newfid: 7, wnames: ["s"] });
    await expect(c.request({ type: "Tflush", oldtag: 0 })).resolves.toMatchObject({ type: "Rflush" });
    await expect(c.request({ type: "Tclunk", fid: 7 })).resolves.toMatchObject({ type: "Rclunk" });
  });
});

describe("hibernation", () => {
  it("keeps a session working on the same socket after its object hibernated", { timeout: 60_000 }, async () => {
    const { client: c } = await mount("main", 65536);
    const fid = c.allocFid();
    await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: ["s"] });
    await c.request({ type: "Tlopen", fid, flags: 0 });
    const boots = (await shareObject().stats()).boots;
    // Idle with nothing pending, past the time workerd hibernates an object.
    await sleep(25_000);
    // Fids, open state and msize came back from SQLite.
    const rd = await c.request({ type: "Treaddir", fid, offset: 0n, count: 65000 });
    expect(rd.data.byteLength).toBeGreaterThan(0);
    expect(new TextDecoder().decode(await readFile(c, "s/deep/b.txt"))).toBe("b");
    expect((await shareObject().stats()).boots).toBeGreaterThan(boots);
  });
});
