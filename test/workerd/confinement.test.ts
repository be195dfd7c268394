// No sequence of walks, creates, renames, links or symlinks reaches a key
// outside the share's prefix: random sequences on the share "other"
// (prefix other/deeper), then every object in the bucket is under it.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BUCKET, mount, shareObject } from "./support/gateway.ts";

const NAMES = ["a", "b", "c", "..", ".", "\ufeff..", "\ufeff.", "\ufeffa", "a/b", "../x", "..%2f", "\u00e9t\u00e9", "sp ace", "x".repeat(255), "deeper", "other"];
const TARGETS = ["../../../../etc/passwd", "/etc/shadow", "..", "../other", "a/../../..", "deeper/../..", "x"];
const PATHS = [[], ["a"], ["b"], ["a", "b"], [".."], ["..", ".."], ["a", ".."], ["c", "a"]];

const step = fc.oneof(
  fc.record({ op: fc.constant("mkdir"), at: fc.constantFrom(...PATHS), name: fc.constantFrom(...NAMES) }),
  fc.record({ op: fc.constant("create"), at: fc.constantFrom(...PATHS), name: fc.constantFrom(...NAMES) }),
  fc.record({
    op: fc.constant("rename"),
    from: fc.constantFrom(...PATHS),
    fromName: fc.constantFrom(...NAMES),
    to: fc.constantFrom(...PATHS),
    toName: fc.constantFrom(...NAMES),
  }),
  fc.record({ op: fc.constant("symlink"), at: fc.constantFrom(...PATHS), name: fc.constantFrom(...NAMES), target: fc.constantFrom(...TARGETS) }),
  fc.record({ op: fc.constant("link"), at: fc.constantFrom(...PATHS), name: fc.constantFrom(...NAMES), file: fc.constantFrom(...PATHS), fileName: fc.constantFrom(...NAMES) }),
);

describe("confinement", () => {
  it("keeps every key a random sequence of changes produces under the share's prefix", { timeout: 300_000 }, async () => {
    const { client: c } = await mount("other", 65536);
    let ops = 0;
    let refused = 0;
    const walk = async (path: string[]) => {
      const fid = c.allocFid();
      try {
        const r = await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: path });
        if (r.qids.length !== path.length) throw new Error("short walk");
        return fid;
      } catch (e) {
        c.releaseFid(fid);
        throw e;
      }
    };
    const clunk = (fid: number) => c.request({ type: "Tclunk", fid }).then(() => c.releaseFid(fid));
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 15 }), async (steps) => {
        for (const s of steps) {
          ops++;
          const fids: number[] = [];
          try {
            if (s.op === "rename") {
              const a = await walk(s.from);
              fids.push(a);
              const b = await walk(s.to);
              fids.push(b);
              await c.request({ type: "Trenameat", olddirfid: a, oldname: s.fromName, newdirfid: b, newname: s.toName });
            } else if (s.op === "link") {
              const d = await walk(s.at);
              fids.push(d);
              const f = await walk([...s.file, s.fileName]);
              fids.push(f);
              await c.request({ type: "Tlink", dfid: d, fid: f, name: s.name });
            } else {
              const d = await walk(s.at);
              fids.push(d);
              if (s.op === "mkdir") await c.request({ type: "Tmkdir", dfid: d, name: s.name, mode: 0o755, gid: 0 });
              if (s.op === "symlink") await c.request({ type: "Tsymlink", fid: d, name: s.name, symtgt: s.target, gid: 0 });
              if (s.op === "create") {
                await c.request({ type: "Tlcreate", fid: d, name: s.name, flags: 1, mode: 0o644, gid: 0 });
                await c.request({ type: "Twrite", fid: d, offset: 0n, data: new TextEncoder().encode(s.name) });
              }
            }
          } catch {
            refused++;
          } finally {
            for (const f of fids) await clunk(f).catch(() => {});
          }
        }
        await shareObject("other").publishAll();
        let cursor: string | undefined;
        do {
          const page = await BUCKET.list({ cursor });
          for (const o of page.objects) {
            expect(o.key.startsWith("other/deeper/"), o.key).toBe(true);
            expect(o.key.split("/").slice(2).every((seg, i, all) => seg !== "." && seg !== ".." && (seg !== "" || i === all.length - 1)), o.key).toBe(true);
          }
          cursor = page.truncated ? page.cursor : undefined;
        } while (cursor);
      }),
      { numRuns: 40 },
    );
    expect(ops).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThan(ops);
  });
});
