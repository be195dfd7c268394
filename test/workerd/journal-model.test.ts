// Random writes, truncates and publishes against a plain byte-array model:
// the journal's extent cutting, merging and overlaying must agree with it,
// and so must its byte and hole counts.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cat, clunk, create, openFile, setattr, writeAt } from "./support/fs.ts";
import { BUCKET, diff, mount, noise, shareObject } from "./support/gateway.ts";

type Op = { kind: "write"; off: number; len: number; seed: number } | { kind: "truncate"; size: number } | { kind: "publish" };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("write" as const), off: fc.nat(300_000), len: fc.integer({ min: 1, max: 150_000 }), seed: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("truncate" as const), size: fc.nat(400_000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("publish" as const) }) },
);

describe("the write journal against a model", () => {
  it("reads back exactly what a byte array would hold, before and after publishing", { timeout: 300_000 }, async () => {
    const { client: c } = await mount("main", 1 << 20);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        const name = `model-${run++}.bin`;
        let model = new Uint8Array(0);
        const fid = await create(c, name);
        await clunk(c, fid);
        for (const o of ops) {
          if (o.kind === "write") {
            const data = noise(o.len, o.seed + 1);
            const f = await openFile(c, name);
            await writeAt(c, f, o.off, data);
            await clunk(c, f);
            const next = new Uint8Array(Math.max(model.byteLength, o.off + o.len));
            next.set(model);
            next.set(data, o.off);
            model = next;
          } else if (o.kind === "truncate") {
            await setattr(c, name, { valid: 0x8, size: o.size });
            const next = new Uint8Array(o.size);
            next.set(model.subarray(0, o.size));
            model = next;
          } else {
            await shareObject().publishAll();
          }
        }
        expect(diff(await cat(c, name), model)).toBe("equal");
        // The journal's counts (extents and holes) agree with SQLite's rows.
        expect((await shareObject().check("main"))!.problems).toMatchObject({ journalMiscounts: 0, holeMiscounts: 0, journalTotalOff: 0 });
        await shareObject().publishAll();
        expect(diff(new Uint8Array(await (await BUCKET.get(`main/${name}`))!.arrayBuffer()), model)).toBe("equal");
        expect(diff(await cat(c, name), model)).toBe("equal");
      }),
      { numRuns: 25 },
    );
  });
});
