// Traffic recorded from real clients (Linux 6.1's v9fs, diod's tools) and
// real servers (diod; edge9p for linux61-devshare): every message must decode
// and re-encode to exactly the recorded bytes.

import { describe, expect, it } from "vitest";
import { type Message, decode, encode } from "../../protocol/index.ts";
import { CAPTURES, readCapture } from "./support/capture.ts";

describe("recorded traffic", () => {
  for (const name of CAPTURES) {
    it(`${name}: every message decodes and re-encodes to the recorded bytes`, () => {
      const records = readCapture(name);
      expect(records.length).toBeGreaterThan(10);
      for (const { bytes } of records) {
        const back = encode(decode(bytes, "9P2000.L"), "9P2000.L");
        // expect() only on a difference: its deep compare of ~28,000
        // messages (linux61-devshare) took most of this file's time.
        if (!Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(bytes)) expect(back).toEqual(bytes);
      }
    });

    it(`${name}: every reply answers a request on its tag with R = T + 1 or Rlerror`, () => {
      const records = readCapture(name).map((r) => ({ dir: r.dir, m: decode(r.bytes, "9P2000.L") }));
      // Within one direction the order is exact; between them it may be off
      // by one message. Tags are reused, so the i-th reply on a tag answers
      // the i-th request on that tag.
      const byTag = (dir: "T" | "R") => {
        const map = new Map<number, Message[]>();
        for (const r of records) {
          if (r.dir !== dir) continue;
          const list = map.get(r.m.tag);
          if (list) list.push(r.m);
          else map.set(r.m.tag, [r.m]);
        }
        return map;
      };
      const requests = byTag("T");
      let answered = 0;
      for (const [tag, replies] of byTag("R")) {
        const asked = requests.get(tag) ?? [];
        replies.forEach((r, i) => {
          const t = asked[i];
          expect(t, `reply ${r.type} on tag ${tag}`).toBeDefined();
          expect([`R${t!.type.slice(1)}`, "Rlerror"]).toContain(r.type);
          answered++;
        });
      }
      expect(answered).toBe(records.filter((r) => r.dir === "R").length);
    });
  }

  it("Linux asked msize 1 MiB, diod answered 64 KiB, and reads split at msize - 24", () => {
    const ms = readCapture("linux61-read").map((r) => decode(r.bytes, "9P2000.L"));
    const v = ms.filter((m) => m.type === "Tversion" || m.type === "Rversion");
    expect(v.map((m) => (m as { msize: number }).msize)).toEqual([1048576, 65536]);
    const counts = ms.flatMap((m) => (m.type === "Tread" ? [m.count] : []));
    expect(counts).toContain(65512);
    expect(counts).toContain(24);
  });

  it("linux61-devshare, recorded against edge9p: 1 MiB granted, the *at forms answered, attached at the share's root", () => {
    const ms = readCapture("linux61-devshare").map((r) => decode(r.bytes, "9P2000.L"));
    const v = ms.filter((m) => m.type === "Tversion" || m.type === "Rversion");
    expect(v.map((m) => (m as { msize: number }).msize)).toEqual([1048576, 1048576]);
    const count = (type: string) => ms.filter((m) => m.type === type).length;
    // edge9p implements Trenameat and Tunlinkat, so the client never falls
    // back to Trename and Tremove as it did with diod.
    expect(count("Rrenameat")).toBe(count("Trenameat"));
    expect(count("Runlinkat")).toBe(count("Tunlinkat"));
    expect(count("Trename") + count("Tremove")).toBe(0);
    // bench/wan.ts replays it with the aname pointed at an empty directory.
    const anames = ms.flatMap((m) => (m.type === "Tattach" ? [new TextDecoder().decode(m.aname)] : []));
    expect(anames).toEqual(["", ""]);
  });

  it("the mount attaches as nobody with n_uname none, then as uid 0", () => {
    const attaches = readCapture("linux61-read")
      .map((r) => decode(r.bytes, "9P2000.L"))
      .filter((m) => m.type === "Tattach");
    expect(attaches.map((m) => [new TextDecoder().decode(m.uname), m.n_uname])).toEqual([
      ["nobody", 0xffffffff],
      ["", 0],
    ]);
  });
});
