// Property tests: random and mutated bytes never crash the decoder or make it
// allocate beyond the message, and every message's computed size is what
// encoding writes.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DIALECTS,
  type Dialect,
  FramingError,
  MAXWELEM,
  type Message,
  MessageError,
  SPECS,
  decode,
  encode,
  sizeOf,
} from "../../protocol/index.ts";
import { messageArb } from "./support/arbitrary.ts";
import { msg, qid, s, u16, u32 } from "./support/bytes.ts";

const dialect = fc.constantFrom(...DIALECTS);
const anyMessage = dialect.chain((d) =>
  fc.constantFrom(...SPECS.filter((s) => s.dialects.includes(d))).chain((spec) => messageArb(spec, d).map((m) => ({ d, m }))),
);

function setSize(b: Uint8Array): Uint8Array {
  if (b.byteLength >= 4) new DataView(b.buffer, b.byteOffset).setUint32(0, b.byteLength, true);
  return b;
}

/** Every byte array in a decoded message, and every array's length. */
function walk(v: unknown, views: Uint8Array[], arrays: number[]): void {
  if (v instanceof Uint8Array) views.push(v);
  else if (Array.isArray(v)) {
    arrays.push(v.length);
    for (const x of v) walk(x, views, arrays);
  } else if (v !== null && typeof v === "object") for (const x of Object.values(v)) walk(x, views, arrays);
}

/** The decoder's contract on any input: a message within its bytes, or a typed error. */
function checkDecode(bytes: Uint8Array, d: Dialect): Message | null {
  let m: Message;
  try {
    m = decode(bytes, d);
  } catch (e) {
    if (e instanceof FramingError) return null;
    if (e instanceof MessageError) {
      // The tag is kept whenever the header could be read.
      expect(e.tag).toBe(new DataView(bytes.buffer, bytes.byteOffset).getUint16(5, true));
      return null;
    }
    throw e;
  }
  const views: Uint8Array[] = [];
  const arrays: number[] = [];
  walk(m, views, arrays);
  let viewed = 0;
  for (const v of views) {
    expect(v.buffer).toBe(bytes.buffer); // a view, not a copy
    viewed += v.byteLength;
  }
  expect(viewed).toBeLessThanOrEqual(bytes.byteLength);
  for (const n of arrays) expect(n).toBeLessThanOrEqual(MAXWELEM);
  return m;
}

describe("decoder under random input", () => {
  it("random bytes give a message or a typed error", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), dialect, fc.boolean(), (b, d, fix) => {
        checkDecode(fix ? setSize(b) : b, d);
      }),
      { numRuns: 5000 },
    );
  });

  it("random bytes behind a valid header give a message or a typed error", () => {
    const ids = [...new Set(SPECS.map((s) => s.id)), 0, 6, 106, 255];
    fc.assert(
      fc.property(fc.constantFrom(...ids), fc.uint8Array({ maxLength: 300 }), dialect, (id, body, d) => {
        const b = new Uint8Array(7 + body.byteLength);
        b[4] = id;
        b[5] = 0x34;
        b[6] = 0x12;
        b.set(body, 7);
        checkDecode(setSize(b), d);
      }),
      { numRuns: 5000 },
    );
  });

  it("mutated valid messages give a message or a typed error", () => {
    const mutation = fc.record({
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
      extra: fc.uint8Array({ maxLength: 8 }),
      fixSize: fc.boolean(),
    });
    fc.assert(
      fc.property(anyMessage, mutation, ({ d, m }, mu) => {
        const orig = encode(m, d);
        let b = new Uint8Array(orig.byteLength + mu.extra.byteLength);
        b.set(orig);
        b.set(mu.extra, orig.byteLength);
        if (mu.cut !== undefined) b = b.slice(0, mu.cut % (b.byteLength + 1));
        for (const [at, v] of mu.flips) if (b.byteLength > 7) b[7 + (at % (b.byteLength - 7))] = v;
        if (mu.fixSize) setSize(b);
        const got = checkDecode(b, d);
        // What decodes re-encodes to the same bytes (Rstat/Twstat recompute n).
        if (got && got.type !== "Rstat" && got.type !== "Twstat") expect(encode(got, d)).toEqual(b);
      }),
      { numRuns: 5000 },
    );
  });

  it("a message truncated by one byte is refused with its tag", () => {
    fc.assert(
      fc.property(anyMessage, ({ d, m }) => {
        const b = encode(m, d);
        const short = setSize(b.slice(0, b.byteLength - 1));
        if (b.byteLength === 7) return; // no body to cut
        expect(() => decode(short, d)).toThrow(MessageError);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("walk limits", () => {
  it("Twalk and Rwalk decode with up to 16 elements and are refused beyond", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.constantFrom(...DIALECTS), (n, d) => {
        const names = Array.from({ length: n }, (_, i) => s(`n${i}`));
        const walk = msg(110, 9, u32(1), u32(2), u16(n), ...names);
        const qids = msg(111, 9, u16(n), ...Array.from({ length: n }, (_, i) => qid(0, 0, BigInt(i))));
        for (const b of [walk, qids]) {
          if (n <= MAXWELEM) expect(checkDecode(b, d)).not.toBeNull();
          else expect(() => decode(b, d)).toThrow(/> 16/);
        }
      }),
    );
  });
});

describe("sizes", () => {
  it("for every message, the size computed before encoding equals the bytes written", () => {
    fc.assert(
      fc.property(anyMessage, ({ d, m }) => {
        const bytes = encode(m, d);
        expect(bytes.byteLength).toBe(sizeOf(m, d));
        expect(bytes.buffer.byteLength).toBe(sizeOf(m, d));
        expect(new DataView(bytes.buffer).getUint32(0, true)).toBe(bytes.byteLength);
        expect(encode(decode(bytes, d), d)).toEqual(bytes);
      }),
      { numRuns: 5000 },
    );
  });

  it("covers every R-message of every dialect", () => {
    for (const d of DIALECTS) {
      for (const spec of SPECS.filter((s) => s.name.startsWith("R") && s.dialects.includes(d))) {
        fc.assert(
          fc.property(messageArb(spec, d), (m) => {
            expect(encode(m, d).byteLength).toBe(sizeOf(m, d));
          }),
          { numRuns: 50 },
        );
      }
    }
  });
});
