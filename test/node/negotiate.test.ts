import { describe, expect, it } from "vitest";
import {
  IO_HEADER_SIZE,
  MAX_ENAME,
  PLATFORM_MSIZE_CEILING,
  alignedIounit,
  clipUtf8,
  encode,
  errorReply,
  fixedSizeOf,
  largestFixedSize,
  matchVersion,
  negotiate,
  readCount,
} from "../../protocol/index.ts";

const cap4M = { cap: 4 << 20, capSource: "msize_cap" };

describe("version and msize negotiation", () => {
  it.each([
    // client msize, version, cap, expected msize, expected version, lowered by
    [4096, "9P2000.L", cap4M, 4096, "9P2000.L", null],
    [8192, "9P2000.L", cap4M, 8192, "9P2000.L", null],
    [131096, "9P2000.L", cap4M, 131096, "9P2000.L", null],
    [1 << 20, "9P2000.u", cap4M, 1 << 20, "9P2000.u", null],
    [64 << 20, "9P2000", cap4M, 4 << 20, "9P2000", "operator"],
    [64 << 20, "9P2000.L", { cap: PLATFORM_MSIZE_CEILING }, PLATFORM_MSIZE_CEILING, "9P2000.L", "platform"],
    [PLATFORM_MSIZE_CEILING + 1, "9P2000.L", { cap: 64 << 20 }, PLATFORM_MSIZE_CEILING, "9P2000.L", "platform"],
    [1 << 20, "9P2000.X", cap4M, 1 << 20, "9P2000", null],
    [1 << 20, "9P2000.L.extra", cap4M, 1 << 20, "9P2000.L", null],
    [1 << 20, "9P1999", cap4M, 1 << 20, "unknown", null],
    [1 << 20, "garbage\u0000\u00ff", cap4M, 1 << 20, "unknown", null],
    [1 << 20, "", cap4M, 1 << 20, "unknown", null],
  ] as const)("client %i %j -> msize %i", (msize, version, limits, want, wantVersion, by) => {
    const n = negotiate(msize, version, limits);
    expect(n.ok).toBe(true);
    if (!n.ok) return;
    expect(n.msize).toBe(want);
    expect(n.version).toBe(wantVersion);
    expect(n.lowered?.by ?? null).toBe(by);
    if (by === "operator") expect(n.lowered!.reason).toBe("operator cap 4194304 (msize_cap)");
    if (by === "platform") expect(n.lowered!.reason).toMatch(/platform ceiling 33554432: .*32 MiB/);
  });

  it("refuses an msize below 4096 with the reason", () => {
    expect(negotiate(4095, "9P2000.L", cap4M)).toEqual({ ok: false, reason: "msize 4095 is below the minimum of 4096" });
    expect(negotiate(0, "9P2000.L", cap4M).ok).toBe(false);
  });

  it("matches version strings as bytes, not only as JS strings", () => {
    expect(matchVersion(new TextEncoder().encode("9P2000.u"))).toBe("9P2000.u");
    expect(matchVersion(new Uint8Array([0x39, 0x50, 0xff]))).toBe("unknown");
  });
});

describe("count rules", () => {
  it("caps an Rread at min(requested, msize - 11)", () => {
    expect(fixedSizeOf("Rread")).toBe(11);
    expect(readCount(65512, 65536)).toBe(65512);
    expect(readCount(1 << 20, 65536)).toBe(65525);
    expect(readCount(0, 65536)).toBe(0);
  });

  it("derives the data header from the table", () => {
    expect(IO_HEADER_SIZE).toBe(23); // Twrite: size type tag fid offset count
    expect(largestFixedSize("9P2000.L")).toBe(160); // Rgetattr
  });

  it("chooses an iounit that is a multiple of 4 KiB within msize - 24, or 0", () => {
    expect(alignedIounit(1 << 20)).toBe((1 << 20) - 4096);
    expect(alignedIounit(131096)).toBe(131072);
    expect(alignedIounit(8192)).toBe(4096);
    expect(alignedIounit(4096)).toBe(0);
  });
});

describe("error replies", () => {
  it("keeps ename within 126 bytes, the most Linux's 139-byte error buffer holds", () => {
    expect(MAX_ENAME).toBe(126);
    const long = "é".repeat(100); // 200 bytes of UTF-8
    const r = errorReply("9P2000.u", 1, 5, long);
    const bytes = encode(r, "9P2000.u");
    expect(bytes.byteLength).toBeLessThanOrEqual(139);
    expect(bytes.byteLength).toBe(13 + 126); // 63 whole characters
    expect(encode(errorReply("9P2000", 1, 5, long), "9P2000").byteLength).toBeLessThanOrEqual(139);
  });

  it("never cuts a UTF-8 character in half", () => {
    expect(clipUtf8("aé", 2)).toEqual(new Uint8Array([0x61]));
    expect(clipUtf8("a€b", 4)).toEqual(new TextEncoder().encode("a€"));
  });
});
