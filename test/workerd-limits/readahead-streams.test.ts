// An attacker that opens every fid it may and reads each file sequentially,
// all at once, so that every fid becomes a readahead stream asking for its
// window (storage/readahead.ts). At these limits: 60 streams (two sessions
// of 30 files, max_fids 32 and max_share_fids 64 leave room for a
// bystander) of 1.5 MiB files (past the content cache's 1 MiB largest file,
// so each is read through readahead) would want 90 MiB fetched ahead; the
// share's budget is inflight_bytes (8 MiB), and readahead may hold only its
// first half (4 MiB), the other half staying for replies. Every read must
// still return the file's bytes, and a bystander's requests must still be
// answered.

import { describe, expect, it } from "vitest";
import type { Client } from "../../protocol/index.ts";
import { clunk, getattr, openFile, readAt } from "../workerd/support/fs.ts";
import { diff, mount, noise, put, shareObject } from "../workerd/support/gateway.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = 1.5 * MiB;
const PER_SESSION = 30;
/** inflight_bytes and max_inflight of test/workerd-limits/wrangler.toml. */
const BUDGET = 8 * MiB;
const MAX_INFLIGHT = 4;

interface Stream {
  c: Client;
  fid: number;
  file: number;
  off: number;
  got: Uint8Array;
}

describe("readahead streams", () => {
  it("opened on every fid a client may have, read all at once: readahead holds at most half the budget, every byte right, a bystander answered", { timeout: 120_000 }, async () => {
    const files = 2 * PER_SESSION;
    for (let i = 0; i < files; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => put("main", `ras/f${i + j}.bin`, noise(SIZE, i + j + 1))));
    }
    const a = await mount("main", 64 * KiB);
    const b = await mount("main", 64 * KiB);
    const streams: Stream[] = [];
    for (const [k, conn] of [a, b].entries()) {
      for (let i = 0; i < PER_SESSION; i++) {
        const file = k * PER_SESSION + i;
        streams.push({ c: conn.client, fid: await openFile(conn.client, `ras/f${file}.bin`, 0), file, off: 0, got: new Uint8Array(SIZE) });
      }
    }
    const before = await shareObject().stats();
    const count = 64 * KiB - 24;
    let heldMax = 0;
    let streamsMax = 0;
    const readNext = async (s: Stream) => {
      const r = await s.c.request({ type: "Tread", fid: s.fid, offset: BigInt(s.off), count });
      expect(r.data.byteLength).toBe(Math.min(count, SIZE - s.off));
      s.got.set(r.data, s.off);
      s.off += r.data.byteLength;
    };
    // Round by round, one read on every stream, as many at once as a
    // session may have in flight (max_inflight 4): every stream is
    // sequential, so every one asks for a window that grows with each read,
    // and its fetches go on between its reads.
    while (streams.some((s) => s.off < SIZE)) {
      await Promise.all(
        [a.client, b.client].map(async (c) => {
          const mine = streams.filter((s) => s.c === c && s.off < SIZE);
          for (let i = 0; i < mine.length; i += MAX_INFLIGHT) await Promise.all(mine.slice(i, i + MAX_INFLIGHT).map(readNext));
        }),
      );
      const s = await shareObject().stats();
      heldMax = Math.max(heldMax, s.readahead.heldBytes);
      streamsMax = Math.max(streamsMax, s.readahead.streams);
      expect(s.readahead.heldBytes).toBeLessThanOrEqual(BUDGET / 2);
      expect(s.inflightBytes).toBeLessThanOrEqual(BUDGET);
    }
    for (const s of streams) expect(diff(s.got, noise(SIZE, s.file + 1)), `file ${s.file}`).toBe("equal");

    const after = await shareObject().stats();
    // The attack did what it meant to: many streams, fetching ahead, up against the bound.
    expect(streamsMax).toBeGreaterThanOrEqual(files / 2);
    expect(after.readahead.fetches - before.readahead.fetches).toBeGreaterThan(files);
    expect(after.readahead.hits - before.readahead.hits).toBeGreaterThan(0);
    expect(heldMax).toBeGreaterThan(BUDGET / 4);
    expect(after.inflightHighWater).toBeLessThanOrEqual(BUDGET);

    // The bystander (the third and last session max_sessions allows, the
    // last fids of the share) is answered while the attacker's streams are open.
    const by = await mount("main", 64 * KiB);
    expect((await getattr(by.client, "ras/f0.bin")).size).toBe(BigInt(SIZE));
    const fid = await openFile(by.client, "ras/f1.bin", 0);
    expect(diff(await readAt(by.client, fid, 0, SIZE), noise(SIZE, 2))).toBe("equal");
    await clunk(by.client, fid);
    by.ws.close(1000);

    for (const s of streams) await clunk(s.c, s.fid);
    const closed = await shareObject().stats();
    // A clunk drops its stream, and what the stream held goes back.
    expect(closed.readahead.streams).toBe(0);
    expect(closed.readahead.heldBytes).toBe(0);
    a.ws.close(1000);
    b.ws.close(1000);
  });
});
