// A share at its limits: the write journal full answers ENOSPC, loses and
// corrupts nothing, and takes writes again once files are published.

import { describe, expect, it } from "vitest";
import { ERRNO } from "../../protocol/index.ts";
import { cat, clunk, create, writeAt } from "../workerd/support/fs.ts";
import { BUCKET, diff, mount, noise, shareObject } from "../workerd/support/gateway.ts";

describe("journal cap", () => {
  it("answers ENOSPC past the cap, keeps every acknowledged byte, and recovers after publishing", async () => {
    const { client: c } = await mount("main", 65536);
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
  });

  it("caps msize at the operator's 64 KiB", async () => {
    const { client: c } = await mount("main", 1 << 20);
    expect(c.msize).toBe(65536);
  });
});
