import { describe, expect, it } from "vitest";
import { Framer, FramingError, encode } from "../../protocol/index.ts";
import { readCapture } from "./support/capture.ts";
import { sample } from "./support/samples.ts";

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function frameAll(chunks: Uint8Array[], max = 1 << 20): Uint8Array[] {
  const f = new Framer(max);
  const out: Uint8Array[] = [];
  for (const c of chunks) f.push(c, (m) => out.push(m.slice()));
  expect(f.pending).toBe(0);
  return out;
}

// Several real messages of different sizes, a 0-byte-payload one among them.
const messages = [
  ...readCapture("linux61-read")
    .slice(0, 12)
    .map((r) => r.bytes),
  encode(sample("Twrite"), "9P2000.L"),
  encode({ type: "Rclunk", tag: 1 }, "9P2000.L"),
];
const stream = concat(messages);

describe("Framer", () => {
  it("returns every message from a stream split at every byte offset", () => {
    for (let cut = 0; cut <= stream.byteLength; cut++) {
      expect(frameAll([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(messages);
    }
  });

  it("returns every message from a stream split at every pair of offsets", () => {
    const small = concat(messages.slice(0, 5));
    for (let a = 0; a <= small.byteLength; a += 3) {
      for (let b = a; b <= small.byteLength; b += 5) {
        const got = frameAll([small.subarray(0, a), small.subarray(a, b), small.subarray(b)]);
        expect(got).toEqual(messages.slice(0, 5));
      }
    }
  });

  it("returns every message from a stream fed one byte at a time", () => {
    const bytes = [...stream].map((b) => new Uint8Array([b]));
    expect(frameAll(bytes)).toEqual(messages);
  });

  it("hands out whole messages as views of the chunk, without copying", () => {
    const f = new Framer(1 << 20);
    const seen: Uint8Array[] = [];
    f.push(stream, (m) => seen.push(m));
    expect(seen).toHaveLength(messages.length);
    for (const m of seen) expect(m.buffer).toBe(stream.buffer);
  });

  it("fails on a size field smaller than the header, and stays failed", () => {
    const f = new Framer(1 << 20);
    const bad = new Uint8Array([6, 0, 0, 0, 100, 0, 0]);
    expect(() => f.push(bad, () => {})).toThrow(FramingError);
    expect(() => f.push(messages[0]!, () => {})).toThrow(/smaller than the 7-byte header/);
  });

  it("fails on a size field over msize, before buffering the message", () => {
    const f = new Framer(8192);
    const head = new Uint8Array([0x01, 0x20, 0, 0]); // 8193
    expect(() => f.push(head, () => {})).toThrow(/exceeds the maximum message size 8192/);
    const g = new Framer(8192);
    g.push(new Uint8Array([0, 0x20]), () => {});
    expect(() => g.push(new Uint8Array([0, 0]), () => {})).not.toThrow(); // exactly 8192 is fine
    expect(g.pending).toBe(4);
  });

  it("applies a lowered maximum (after Rversion) to the next message", () => {
    const f = new Framer(1 << 20);
    const m = encode(sample("Twrite"), "9P2000.L");
    f.push(m, () => {});
    f.setMaxSize(m.byteLength - 1);
    expect(() => f.push(m, () => {})).toThrow(FramingError);
  });
});
