// Nothing acknowledged is lost: writes across sessions, and every Durable
// Object restarted (abortAllDurableObjects, as a crash or deploy would) at
// chosen points; then every acknowledged byte reads back, and once
// published R2 holds exactly the same bytes. Each case makes its own files
// and runs alone as well as after the others.

import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Client } from "../../protocol/index.ts";
import type { ShareObject } from "../../worker/share-object.ts";
import type { FaultLog } from "./support/faults.ts";
import { cat, clunk, create, mkdir, rename, unlink, utf8, writeFile } from "./support/fs.ts";
import { BUCKET, diff, listDir, mount, noise, shareObject, sleep } from "./support/gateway.ts";
import { faultCalls, faults } from "./support/r2-faults.ts";

interface Acked {
  offset: number;
  data: Uint8Array;
}

/** Sends writes of `chunk` bytes without waiting; records those acknowledged. */
function pump(c: Client, fid: number, data: Uint8Array, chunk: number, acked: Acked[]): Promise<unknown>[] {
  const out: Promise<unknown>[] = [];
  for (let off = 0; off < data.byteLength; off += chunk) {
    const part = data.subarray(off, off + chunk);
    out.push(
      c.request({ type: "Twrite", fid, offset: BigInt(off), data: part }).then(
        () => acked.push({ offset: off, data: part }),
        () => {},
      ),
    );
  }
  return out;
}

function checkAcked(got: Uint8Array, acked: Acked[]): string {
  for (const a of acked) {
    const d = diff(got.subarray(a.offset, a.offset + a.data.byteLength), a.data);
    if (d !== "equal") return `write at ${a.offset}: ${d}`;
  }
  return "ok";
}

describe("durability", () => {
  it("keeps every acknowledged write of several sessions across a restart in the middle of writing", async () => {
    const files = ["d1.bin", "d2.bin", "d3.bin"];
    const data = files.map((_, i) => noise(256 * 1024, 100 + i));
    const acked: Acked[][] = files.map(() => []);
    const sessions = await Promise.all(files.map(() => mount("main", 65536)));
    const fids = await Promise.all(sessions.map((s, i) => create(s.client, files[i]!)));
    // Some writes acknowledged first...
    await Promise.all(sessions.flatMap((s, i) => pump(s.client, fids[i]!, data[i]!.subarray(0, 64 * 1024), 8192, acked[i]!)));
    // ...then more in flight when every object restarts.
    const inflight = sessions.flatMap((s, i) => pump(s.client, fids[i]!, data[i]!, 4096, acked[i]!));
    await new Promise((r) => setTimeout(r, 5));
    await abortAllDurableObjects();
    await Promise.allSettled(inflight);
    const { client: c } = await mount("main", 65536);
    for (let i = 0; i < files.length; i++) {
      expect(acked[i]!.length).toBeGreaterThan(0);
      expect(checkAcked(await cat(c, files[i]!), acked[i]!)).toBe("ok");
    }
  });

  it("keeps everything written before Rfsync, and publishes exactly those bytes after a restart", async () => {
    const { client: a } = await mount("main", 65536);
    const data = noise(300 * 1024, 7);
    const fid = await create(a, "synced.bin");
    const acked: Acked[] = [];
    await Promise.all(pump(a, fid, data, 16384, acked));
    await a.request({ type: "Tfsync", fid, datasync: 0 });
    await abortAllDurableObjects();
    const { client: c } = await mount("main", 65536);
    expect(diff(await cat(c, "synced.bin"), data)).toBe("equal");
    await shareObject().publishAll();
    expect(diff(new Uint8Array(await (await BUCKET.get("main/synced.bin"))!.arrayBuffer()), data)).toBe("equal");
  });

  it("recovers a publish interrupted by a restart, without a half-published object", async () => {
    const key = "main/interrupted.bin";
    const { client: a } = await mount("main", 1 << 20);
    const big = noise(20 << 20, 9); // over the multipart threshold (16 MiB)
    // Every part may go up; the completion is held, so the restart comes
    // while the upload is open and nothing is at the key yet.
    await faults([{ method: "complete", key, kind: "delay", delayMs: 600_000 }]);
    const fid = await create(a, "interrupted.bin");
    const acked: Acked[] = [];
    await Promise.all(pump(a, fid, big, 1 << 19, acked));
    await clunk(a, fid);
    // Started inside the object: a request of the test in flight at the
    // abort would never settle (the held completion keeps it open).
    await runInDurableObject(shareObject(), (obj: ShareObject) => {
      void obj.publishAll().catch(() => {});
    });
    const completing = (log: FaultLog[]) => log.some((c) => c.method === "complete" && c.key === key);
    let log = await faultCalls();
    for (let i = 0; i < 300 && !completing(log); i++) log = (await sleep(50), await faultCalls());
    expect(log.filter((c) => c.method === "createMultipartUpload" && c.key === key), "the publish opened one multipart upload").toHaveLength(1);
    expect(completing(log), "the publish reached its completion").toBe(true);
    await abortAllDurableObjects();
    expect(await BUCKET.head(key), "the restart cut the upload: nothing at the key").toBeNull();
    await shareObject().publishAll();
    const obj = await BUCKET.get(key);
    expect(obj, "published after the restart").not.toBeNull();
    expect(obj!.size).toBe(big.byteLength);
    expect(diff(new Uint8Array(await obj!.arrayBuffer()), big)).toBe("equal");
    const { client: c } = await mount("main", 1 << 20);
    expect(diff(await cat(c, "interrupted.bin"), big)).toBe("equal");
  });

  it("publishes a file closed by a session that a restart ended", async () => {
    const { client: a } = await mount();
    const f = await create(a, "orphaned-writer.txt");
    await a.request({ type: "Twrite", fid: f, offset: 0n, data: new TextEncoder().encode("written, never closed") });
    await abortAllDurableObjects();
    // The next start sweeps the session: its open fid is closed, the file published.
    const { client: c } = await mount();
    expect(utf8(await cat(c, "orphaned-writer.txt"))).toBe("written, never closed");
    await shareObject().publishAll();
    expect(utf8(new Uint8Array(await (await BUCKET.get("main/orphaned-writer.txt"))!.arrayBuffer()))).toBe(
      "written, never closed",
    );
  });

  it("leaves a consistent namespace after a restart amid changes (GET /v1/shares/main/check)", async () => {
    const { client: a } = await mount("main", 65536);
    await mkdir(a, "amid");
    await writeFile(a, "amid/kept.txt", "kept");
    await writeFile(a, "amid/moved.txt", "moved");
    await writeFile(a, "amid/gone.txt", "gone");
    await shareObject().publishAll();
    // Changes not yet published, and writes in flight, when the object restarts.
    await rename(a, "amid/moved.txt", "amid/renamed.txt");
    await unlink(a, "amid/gone.txt");
    await mkdir(a, "amid/sub");
    await writeFile(a, "amid/sub/new.txt", "new");
    const fid = await create(a, "amid/open.bin");
    const inflight = pump(a, fid, noise(256 * 1024, 11), 4096, []);
    await sleep(5);
    await abortAllDurableObjects();
    await Promise.allSettled(inflight);
    const { client: c } = await mount();
    const names = (await listDir(c, "amid")).entries.map((e) => e.name).filter((n) => n !== "." && n !== "..");
    expect(names.sort()).toEqual(["kept.txt", "open.bin", "renamed.txt", "sub"]);
    await shareObject().publishAll();
    const res = await exports.default.fetch("http://gateway/v1/shares/main/check", { headers: { Authorization: "Bearer test-operator-token-0123456789abcdef" } });
    expect(await res.json()).toMatchObject({ share: "main", ok: true });
    expect(res.status).toBe(200);
  });
});
