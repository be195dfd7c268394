// The content cache's size bound (content_cache_bytes, 256 KiB here) under a
// workload twice its size: the bytes it holds, by its own count and in
// SQLite, never pass it; what is read most stays (an LRU); every read is right;
// and the cache's rows (fills, evictions, the LRU's marks) are written after
// the replies, as "cache fill", not by the reads.

import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ShareObject } from "../../worker/share-object.ts";
import { cat } from "../workerd/support/fs.ts";
import { diff, mount, noise, put, shareObject } from "../workerd/support/gateway.ts";
import { getsOf, r2Calls, watchR2 } from "../workerd/support/r2-watch.ts";

const LIMIT = 262_144;
const FILES = 128;
const content = (i: number) => noise(4000, 500 + i);

/** What the cache's rows hold in SQLite: content bytes plus keys. */
async function stored(): Promise<number> {
  return runInDurableObject(shareObject(), async (obj: ShareObject) => {
    const sql = (obj as unknown as { ctx: DurableObjectState }).ctx.storage.sql;
    const e = sql.exec(`SELECT coalesce(sum(length(data) + length(CAST(key AS BLOB))), 0) AS n FROM cache_entry`).one().n as number;
    const c = sql.exec(`SELECT coalesce(sum(length(data)), 0) AS n FROM cache_chunk`).one().n as number;
    return e + c;
  });
}

describe("content cache bound", () => {
  it("holds under a workload larger than it, keeping the file read most", { timeout: 120_000 }, async () => {
    await put("main", "bound/hot.bin", noise(4000, 1));
    for (let i = 0; i < FILES; i++) await put("main", `bound/f${i}.bin`, content(i));
    const { client: c, ws } = await mount("main", 65536);
    await watchR2();
    const since = (await r2Calls()).length;
    const w0 = (await shareObject().stats()).writes;
    for (let i = 0; i < FILES; i++) {
      expect(diff(await cat(c, `bound/f${i}.bin`), content(i))).toBe("equal");
      expect(diff(await cat(c, "bound/hot.bin"), noise(4000, 1))).toBe("equal");
      if (i % 16 === 15) {
        const s = await shareObject().stats();
        expect(s.cache.bytes).toBeLessThanOrEqual(LIMIT);
        expect(await stored()).toBeLessThanOrEqual(LIMIT);
      }
    }
    const s = await shareObject().stats();
    expect(s.cache.limitBytes).toBe(LIMIT);
    expect(s.cache.evictions).toBeGreaterThan(0);
    // 129 fills, their evictions and the hot file's marks in each new generation are written after the
    // replies, as "cache fill" (at least a row a fill); the reads' own rows are only their sessions'
    // idle stamps (idle_timeout_ms 2 s here: a row every 200 ms at most), not the cache's (before: 1,052).
    const rowsOf = (w: typeof w0, k: string) => w[k]?.rows ?? 0;
    const reads = s.writes.Tread!.requests - (w0.Tread?.requests ?? 0);
    expect(reads).toBeGreaterThanOrEqual(2 * FILES);
    expect(rowsOf(s.writes, "cache fill") - rowsOf(w0, "cache fill")).toBeGreaterThanOrEqual(FILES + 1);
    expect(rowsOf(s.writes, "Tread") - rowsOf(w0, "Tread")).toBeLessThan(reads / 20);
    // 128 files of 4,000 bytes are twice the bound: the first ones went, the hot one never did.
    expect(await getsOf("main/bound/hot.bin", since)).toBe(1);
    const before = (await r2Calls()).length;
    expect(diff(await cat(c, "bound/f0.bin"), content(0))).toBe("equal");
    expect(await getsOf("main/bound/f0.bin", before)).toBe(1);
    ws.close(1000);
  });
});
