// Names to keys is one-to-one: over arbitrary byte names (biased towards
// byte-order marks, dots, '/', NUL and bytes that are not UTF-8), two
// different names that the gateway accepts never map to one R2 key, and a
// key never has an empty, "." or ".." segment. The name each key segment
// gives back (as the importer reads a listing) is the name's own bytes.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { P9Error, nameText, shownName } from "../../protocol/index.ts";
import { checkNewName, keyOf, segmentName } from "../../storage/keys.ts";

const enc = new TextEncoder();
const cat = (ps: Uint8Array[]) => {
  const out = new Uint8Array(ps.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of ps) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};
const BOM = enc.encode("\ufeff");
// Mostly valid UTF-8 (what a client can create), with the pieces that
// aliased or escaped before, and some raw bytes that are not UTF-8.
const piece = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(..."\ufeff . .. a é \ufffe \u200b".split(" ")).map((s) => enc.encode(s)) },
  { weight: 3, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 3 }).map((s) => enc.encode(s)) },
  { weight: 1, arbitrary: fc.constantFrom(enc.encode("/"), enc.encode("\0"), new Uint8Array([0xff]), new Uint8Array([0xc0, 0xae]), new Uint8Array([0xed, 0xa0, 0x80])) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 3 }) },
);
const name = fc.array(piece, { minLength: 0, maxLength: 4 }).map(cat);
// A second name close to the first: the lookalikes a decoder could merge.
const near = (a: Uint8Array) =>
  fc.oneof(
    fc.constant(cat([BOM, a])),
    fc.constant(a.subarray(0, 3).every((x, i) => x === BOM[i]) ? a.subarray(3) : cat([a, BOM])),
    fc.constant(cat([BOM, BOM, a])),
    name,
  );
const pair = name.chain((a) => fc.tuple(fc.constant(a), near(a)));

const accepted = (n: Uint8Array) => {
  try {
    checkNewName(n);
    return true;
  } catch (e) {
    if (!(e instanceof P9Error)) throw e;
    return false;
  }
};
const same = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);

describe("names to keys", () => {
  it("maps two different accepted names to two different keys", () => {
    fc.assert(
      fc.property(pair, fc.constantFrom("", "p", "a/b"), ([a, b], prefix) => {
        fc.pre(!same(a, b) && accepted(a) && accepted(b));
        expect(keyOf(prefix, [a])).not.toBe(keyOf(prefix, [b]));
      }),
      { numRuns: 5_000 },
    );
  });

  it("gives every accepted name a key segment that is not empty, '.' or '..' and reads back as the same bytes", () => {
    fc.assert(
      fc.property(fc.array(name, { minLength: 1, maxLength: 3 }), (path) => {
        fc.pre(path.every(accepted));
        const key = keyOf("pre", path);
        const segs = key.split("/").slice(1);
        expect(segs).toHaveLength(path.length);
        segs.forEach((s, i) => {
          expect(s === "" || s === "." || s === "..").toBe(false);
          expect(same(segmentName(s)!, path[i]!)).toBe(true);
        });
      }),
      { numRuns: 5_000 },
    );
  });

  it("refuses empty, '.', '..', '/' and NUL with EINVAL and bad UTF-8 with EILSEQ, and keeps a BOM", () => {
    const errno = (n: Uint8Array) => {
      try {
        checkNewName(n);
        return 0;
      } catch (e) {
        return (e as P9Error).errno;
      }
    };
    for (const s of ["", ".", "..", "a/b", "/", "a\0b"]) expect(errno(enc.encode(s)), JSON.stringify(s)).toBe(22);
    expect(errno(new Uint8Array([0xff]))).toBe(84);
    expect(errno(new Uint8Array([0xc0, 0xae]))).toBe(84);
    expect(checkNewName(enc.encode("\ufeff.."))).toBe("\ufeff..");
    expect(nameText(enc.encode("\ufeffhello"))).toBe("\ufeffhello");
    expect(shownName(enc.encode("\ufeffhello"))).toBe("\ufeffhello");
    expect(() => nameText(new Uint8Array([0xff]))).toThrow(TypeError);
  });
});
