// The protocol core runs unchanged inside workerd (BigInt DataView access,
// TextEncoder.encodeInto, subarray views), and the worker answers.

import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { allocRread, decode, encode } from "../../protocol/index.ts";

describe("in workerd", () => {
  it("encodes and decodes with 64-bit fields and byte-string names", () => {
    const m = encode(
      { type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["a", new Uint8Array([0xff])] },
      "9P2000.L",
    );
    const back = decode(m, "9P2000.L");
    expect(back.type === "Twalk" && back.wnames.map((n) => [...n])).toEqual([[0x61], [0xff]]);
    const g = decode(
      encode({ type: "Tgetattr", tag: 2, fid: 1, request_mask: 0xffffffffffffffffn }, "9P2000.L"),
      "9P2000.L",
    );
    expect(g.type === "Tgetattr" && g.request_mask).toBe(0xffffffffffffffffn);
  });

  it("fills an Rread in place", () => {
    const r = allocRread(3, 4);
    r.data.set([1, 2, 3, 4]);
    expect(decode(r.finish(4), "9P2000.L")).toMatchObject({ type: "Rread", tag: 3 });
  });

  it("answers /healthz", async () => {
    const res = await exports.default.fetch("http://gateway/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });
});
