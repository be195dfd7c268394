// Keys of paths too long for R2 (storage/keys.ts): every path of valid names,
// however deep, gets a key within R2's 1,024 bytes; two different paths never
// share one; a path's own key is used exactly when it fits, and a derived key
// is never the key of any path of the share (its first segment is the
// reserved name, which no client may create at the root). The synchronous
// SHA-256 those keys use agrees with node:crypto's.

import { createHash, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ERRNO } from "../../protocol/index.ts";
import { KEY_MAX, LONG_DIR, RESERVED_NAME, checkNotReserved, dirPrefixOf, fitsKey, keyOf, longPrefixOf, objectKeyOf } from "../../storage/keys.ts";
import { sha256Hex } from "../../storage/sha256.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s).byteLength;

// Names of 1 to 255 bytes of ASCII and multi-byte characters (what creates accept).
const name = fc
  .oneof(
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 255 }).map((n) => "n".repeat(n)) },
    { weight: 2, arbitrary: fc.stringMatching(/^[a-zé€😀]{1,80}$/) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 63 }).map((n) => "😀".repeat(n)) },
  )
  .filter((s) => bytes(s) <= 255)
  .map((s) => enc.encode(s));
const path = fc.array(name, { minLength: 1, maxLength: 24 });
const prefix = fc.constantFrom("", "p", "a/b", "x".repeat(512));

describe("SHA-256", () => {
  it("agrees with node:crypto on inputs of every length to two blocks and on long ones", () => {
    expect(sha256Hex(enc.encode("abc"))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    for (const n of [...Array(200).keys(), 4095, 4096, 65_537]) {
      const b = randomBytes(n);
      expect(sha256Hex(b), `${n} bytes`).toBe(createHash("sha256").update(b).digest("hex"));
    }
  });
});

describe("keys of long paths", () => {
  it("fit R2 for any depth, and are a path's own key exactly when that fits", () => {
    fc.assert(
      fc.property(prefix, path, fc.boolean(), (pre, p, isDir) => {
        const key = objectKeyOf(pre, p, isDir);
        expect(bytes(key)).toBeLessThanOrEqual(KEY_MAX);
        const own = isDir ? dirPrefixOf(pre, p) : keyOf(pre, p);
        const fits = fitsKey(dirPrefixOf(pre, p.slice(0, -1)), new TextDecoder().decode(p[p.length - 1]), isDir);
        expect(fits).toBe(bytes(own) <= KEY_MAX);
        if (fits) expect(key).toBe(own);
        else expect(key).toBe(longPrefixOf(pre, p.slice(0, -1)) + new TextDecoder().decode(p[p.length - 1]) + (isDir ? "/" : ""));
      }),
      { numRuns: 3_000 },
    );
  });

  it("never give two different paths one key, nor a derived key to a path of the share", () => {
    const root = (pre: string) => (pre === "" ? "" : `${pre}/`);
    const samePath = (a: Uint8Array[], b: Uint8Array[]) =>
      a.length === b.length && a.every((n, i) => n.byteLength === b[i]!.byteLength && n.every((x, j) => x === b[i]![j]));
    // Pairs close to each other: a sibling, the same name one level up or down, and anything.
    const pair = path.chain((a) =>
      fc.tuple(
        fc.constant(a),
        fc.oneof(fc.constant(a.slice(1)), name.map((n) => [...a.slice(0, -1), n]), name.map((n) => [n, ...a]), path),
      ),
    );
    fc.assert(
      fc.property(prefix, pair, fc.boolean(), (pre, [a, b], isDir) => {
        fc.pre(b.length > 0 && !samePath(a, b));
        expect(objectKeyOf(pre, a, isDir)).not.toBe(objectKeyOf(pre, b, isDir));
        // A path's own key starts with the reserved name only if its first name is that name.
        for (const p of [a, b]) {
          const own = objectKeyOf(pre, p, isDir);
          if (own.startsWith(`${root(pre)}${LONG_DIR}/`)) expect(fitsKey(dirPrefixOf(pre, p.slice(0, -1)), new TextDecoder().decode(p[p.length - 1]), isDir)).toBe(false);
          else expect(own.startsWith(`${root(pre)}${RESERVED_NAME}/`)).toBe(false);
        }
      }),
      { numRuns: 3_000 },
    );
  });

  it("hash the directory's path relative to the share's root, so the share's prefix does not change it", () => {
    const dir = ["a", "b"].map((s) => enc.encode(s));
    expect(longPrefixOf("", dir)).toBe(`.edge9p/long/${createHash("sha256").update("a/b").digest("hex")}/`);
    expect(longPrefixOf("some/prefix", dir)).toBe(`some/prefix/.edge9p/long/${createHash("sha256").update("a/b").digest("hex")}/`);
  });

  it("refuse the reserved name at the share's root only", () => {
    expect(() => checkNotReserved(true, enc.encode(RESERVED_NAME))).toThrow(expect.objectContaining({ errno: ERRNO.EPERM }));
    expect(() => checkNotReserved(false, enc.encode(RESERVED_NAME))).not.toThrow();
    expect(() => checkNotReserved(true, enc.encode(".edge9p2"))).not.toThrow();
    expect(() => checkNotReserved(true, enc.encode(`\ufeff${RESERVED_NAME}`))).not.toThrow();
  });
});
