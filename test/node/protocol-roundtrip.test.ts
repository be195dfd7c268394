import { describe, expect, it } from "vitest";
import {
  DIALECTS,
  ERRNO,
  MessageError,
  SPECS,
  decode,
  encode,
  format,
  sizeOf,
} from "../../protocol/index.ts";
import { asDecoded, forDialect } from "./support/normalize.ts";
import { sample } from "./support/samples.ts";

describe("every message of every dialect", () => {
  for (const d of DIALECTS) {
    const specs = SPECS.filter((s) => s.dialects.includes(d));
    it(`${d} has the messages of its dialect`, () => {
      const names = specs.map((s) => s.name);
      if (d === "9P2000.L") {
        expect(names).toContain("Tgetattr");
        expect(names).not.toContain("Tstat");
        expect(names).not.toContain("Rerror");
      } else {
        expect(names).toContain("Twstat");
        expect(names).not.toContain("Rlerror");
        expect(names).not.toContain("Treaddir");
      }
      // T and R come in pairs, R = T + 1, except Rerror/Rlerror.
      for (const s of specs) {
        if (s.name.startsWith("T")) {
          const r = specs.find((x) => x.name === `R${s.name.slice(1)}`);
          expect(r?.id, s.name).toBe(s.id + 1);
        }
      }
    });

    for (const spec of specs) {
      it(`${d} ${spec.name} encodes at its computed size and decodes back`, () => {
        const m = forDialect(sample(spec.name), d);
        const bytes = encode(m, d);
        expect(bytes.byteLength).toBe(sizeOf(m, d));
        expect(bytes.buffer.byteLength).toBe(bytes.byteLength); // allocated exactly
        const back = decode(bytes, d);
        expect(back).toEqual(asDecoded(m));
        expect(encode(back, d)).toEqual(bytes);
        expect(format(back, d)).toMatch(new RegExp(`^${spec.name} tag=\\d+`));
      });
    }
  }

  it("refuses a message of another dialect, keeping its tag", () => {
    const bytes = encode(sample("Tgetattr", 77), "9P2000.L");
    let err: unknown;
    try {
      decode(bytes, "9P2000.u");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MessageError);
    expect((err as MessageError).tag).toBe(77);
    expect((err as MessageError).errno).toBe(ERRNO.ENOSYS);
  });

  it("refuses to encode a message outside the session's dialect", () => {
    expect(() => encode(sample("Rlerror"), "9P2000")).toThrow(/not a 9P2000 message/);
  });

  it("debug strings name the fields", () => {
    expect(format(decode(encode(sample("Twalk", 3), "9P2000.L"), "9P2000.L"), "9P2000.L")).toBe(
      'Twalk tag=3 fid=1 newfid=2 wnames=["a" "caf\ufffd" "" "x" "x" "x" "x" "x" "x" "x" "x" "x" "x" "x" "x" "x"]',
    );
    expect(format(sample("Rread", 9), "9P2000.L")).toBe("Rread tag=9 data=<5 bytes>");
    expect(format({ type: "Rclunk", tag: 1 }, "9P2000.L")).toBe("Rclunk tag=1");
  });
});
