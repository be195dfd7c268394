// A share at its limits: the write journal full answers ENOSPC, loses and
// corrupts nothing, and takes writes again once files are published.

import { describe, expect, it } from "vitest";
import { ERRNO } from "../../protocol/index.ts";
import { cat, clunk, create, writeAt } from "../workerd/support/fs.ts";
import { BUCKET, diff, mount, noise, shareObject } from "../workerd/support/gateway.ts";

describe("journal cap", () => {
  it("answers ENOSPC past the cap, keeps every acknowledged byte, and recovers after publishing", async () => {
    const { client: c, ws } = await mount("main", 65536);
    const data = noise(1 << 20, 3);
    const fid = await create(c, "fill.bin");
    let written = 0;
    let err: unknown = null;
    for (let off = 0; off < data.byteLength + 65536; off += 32768) {
      try {
        await writeAt(c, fid, off, data.subarray(off % data.byteLength, (off % data.byteLength) + 32768));
        written = off + 32768;
      } catch (e) {
        err = e;
        break;
      }
    }
    expect(err).toMatchObject({ errno: ERRNO.ENOSPC });
    expect(written).toBeLessThanOrEqual(1 << 20);
    // df says there is no room for writes.
    const sf = await c.request({ type: "Tstatfs", fid: 0 });
    expect(sf.bavail).toBe(0n);
    await clunk(c, fid);
    const got = await cat(c, "fill.bin");
    expect(got.byteLength).toBe(written);
    expect(diff(got, data.subarray(0, written))).toBe("equal");
    // Publishing empties the journal: writes work again.
    await shareObject().publishAll();
    expect((await shareObject().stats()).journalBytes).toBe(0);
    expect(diff(new Uint8Array(await (await BUCKET.get("main/fill.bin"))!.arrayBuffer()), data.subarray(0, written))).toBe("equal");
    const f2 = await create(c, "after.bin");
    await writeAt(c, f2, 0, "room again");
    await clunk(c, f2);
    ws.close(1000);
  });

  it("caps msize at the operator's 64 KiB", async () => {
    const { client: c, ws } = await mount("main", 1 << 20);
    expect(c.msize).toBe(65536);
    ws.close(1000);
  });
});

describe("limits with clear errors", () => {
  it("refuses a session past max_sessions with 503, and takes one again when a socket closes", async () => {
    const { upgrade } = await import("../workerd/support/gateway.ts");
    const open = [];
    // Earlier tests of this file may hold sockets: fill up to the limit.
    for (let i = 0; i < 3; i++) {
      const r = await upgrade("main");
      if (r.status !== 101) break;
      r.webSocket!.accept();
      open.push(r.webSocket!);
    }
    const refused = await upgrade("main");
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: string }).error).toMatch(/its limit \(EDGE9P\.max_sessions\)/);
    for (const w of open) w.close(1000);
    await new Promise((r) => setTimeout(r, 100));
    const again = await upgrade("main");
    expect(again.status).toBe(101);
    again.webSocket!.accept();
    again.webSocket!.close(1000);
    await new Promise((r) => setTimeout(r, 100));
  });

  it("answers EMFILE past max_fids and EAGAIN past max_inflight", async () => {
    const { client: c, ws } = await mount("main", 65536);
    let fid = 1;
    let err: unknown = null;
    for (; fid < 100; fid++) {
      try {
        await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [] });
      } catch (e) {
        err = e;
        break;
      }
    }
    expect(err).toMatchObject({ errno: ERRNO.EMFILE });
    expect(fid).toBe(32);
    // Blocking locks held by another session stay in flight: the fifth request answers EAGAIN.
    const { client: other } = await mount("main", 65536);
    const f = await create(other, "locked");
    await other.request({ type: "Tlock", fid: f, lock_type: 1, flags: 0, start: 0n, length: 0n, proc_id: 1, client_id: "o" });
    await c.request({ type: "Tclunk", fid: 5 });
    await c.request({ type: "Twalk", fid: 0, newfid: 5, wnames: ["locked"] });
    await c.request({ type: "Tlopen", fid: 5, flags: 2 });
    const waiting = [0, 1, 2, 3].map((i) =>
      c.request({ type: "Tlock", fid: 5, lock_type: 1, flags: 1, start: BigInt(i), length: 1n, proc_id: 9, client_id: "c" }),
    );
    // The in-process WebSocket of the test pool may deliver back-to-back messages out of
    // order, so the fifth request can overtake a Tlock: ask until all four are parked.
    let refused: unknown = null;
    for (let i = 0; i < 50 && refused === null; i++) {
      await c.request({ type: "Tgetattr", fid: 0, request_mask: 1n }).catch((e: unknown) => (refused = e));
      if (refused === null) await new Promise((r) => setTimeout(r, 20));
    }
    expect(refused).toMatchObject({ errno: ERRNO.EAGAIN });
    await other.request({ type: "Tlock", fid: f, lock_type: 2, flags: 0, start: 0n, length: 0n, proc_id: 1, client_id: "o" });
    await Promise.all(waiting);
    await expect(c.request({ type: "Tgetattr", fid: 0, request_mask: 1n })).resolves.toMatchObject({ type: "Rgetattr" });
    ws.close(1000);
    other.close();
    await new Promise((r) => setTimeout(r, 100));
  });

  it("answers ENAMETOOLONG past max_depth", async () => {
    const { client: c, ws } = await mount("main", 65536);
    const dir = c.allocFid();
    await c.request({ type: "Twalk", fid: 0, newfid: dir, wnames: [] });
    for (const name of ["d1", "d2", "d3", "d4"]) {
      await c.request({ type: "Tmkdir", dfid: dir, name, mode: 0o755, gid: 0 });
      await c.request({ type: "Twalk", fid: dir, newfid: dir, wnames: [name] });
    }
    await expect(c.request({ type: "Tmkdir", dfid: dir, name: "d5", mode: 0o755, gid: 0 })).rejects.toMatchObject({
      errno: ERRNO.ENAMETOOLONG,
    });
    ws.close(1000);
  });

  it("closes a session idle past idle_timeout_ms with code 4002", async () => {
    const { runDurableObjectAlarm } = await import("cloudflare:test");
    const conn = await mount("main", 65536);
    await new Promise((r) => setTimeout(r, 3200));
    await runDurableObjectAlarm(shareObject());
    expect(await conn.closed).toEqual({ code: 4002, reason: "no request for 2 s" });
  });
});
