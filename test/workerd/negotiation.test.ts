// Tversion over a real WebSocket: msize = min(client, 32 MiB platform
// ceiling, operator cap: this test share sets the cap at the ceiling).

import { describe, expect, it } from "vitest";
import { ERRNO, decode, encode } from "../../protocol/index.ts";
import { rawSession } from "./support/gateway.ts";

async function version(msize: number, version: string) {
  const r = await rawSession();
  r.send(encode({ type: "Tversion", tag: 0xffff, msize, version }, "9P2000"));
  const bytes = await r.next();
  return { r, bytes };
}

describe("negotiation", () => {
  for (const msize of [4096, 8192, 131096, 1 << 20, 64 << 20]) {
    for (const [asked, answer] of [
      ["9P2000.L", "9P2000.L"],
      ["9P2000.u", "9P2000.u"],
      ["9P2000", "9P2000"],
      ["9P2000.X", "9P2000"],
      ["garbage", "unknown"],
    ]) {
      it(`client msize ${msize} version ${asked} -> ${Math.min(msize, 32 << 20)} ${answer}`, async () => {
        const { bytes } = await version(msize, asked!);
        expect(decode(bytes, "9P2000")).toMatchObject({
          type: "Rversion",
          tag: 0xffff,
          msize: Math.min(msize, 32 << 20),
          version: new TextEncoder().encode(answer),
        });
      });
    }
  }

  it("refuses msize below 4096 with an error on the tag, and the socket stays usable", async () => {
    const { r, bytes } = await version(4095, "9P2000.L");
    expect(decode(bytes, "9P2000.L")).toEqual({ type: "Rlerror", tag: 0xffff, ecode: ERRNO.EINVAL });
    r.send(encode({ type: "Tversion", tag: 0xffff, msize: 8192, version: "9P2000.L" }, "9P2000"));
    expect(decode(await r.next(), "9P2000")).toMatchObject({ type: "Rversion", msize: 8192 });
  });

  it("explains a refused msize in the 9P2000.u error string", async () => {
    const { bytes } = await version(100, "9P2000.u");
    const m = decode(bytes, "9P2000.u");
    expect(m.type === "Rerror" && new TextDecoder().decode(m.ename)).toBe("msize 100 is below the minimum of 4096");
  });

  it("does not start a session on version unknown: the next request closes the socket", async () => {
    const { r } = await version(8192, "garbage");
    r.send(encode({ type: "Tclunk", tag: 1, fid: 0 }, "9P2000.L"));
    expect(await r.closed()).toEqual({ code: 4000, reason: "Tclunk before Tversion: Tversion must be the first message" });
  });
});
