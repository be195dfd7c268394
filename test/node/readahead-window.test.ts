// The readahead window's steps (storage/readahead.ts nextWindow): four reads
// to start, four times larger while under a quarter of the largest, then
// twice, never past the largest nor under one read.

import { describe, expect, it } from "vitest";
import { nextWindow } from "../../storage/readahead.ts";

const MiB = 1 << 20;

describe("readahead window", () => {
  it("starts at four reads and reaches the largest in three steps at 1 MiB reads (16 MiB largest)", () => {
    const steps = [0];
    while (steps.at(-1)! < 16 * MiB) steps.push(nextWindow(steps.at(-1)!, MiB, 16 * MiB));
    expect(steps.slice(1).map((w) => w / MiB)).toEqual([4, 8, 16]);
  });

  it("grows twice once past a quarter of the largest", () => {
    expect(nextWindow(5 * MiB, MiB, 16 * MiB)).toBe(10 * MiB);
    expect(nextWindow(10 * MiB, MiB, 16 * MiB)).toBe(16 * MiB);
  });

  it("never passes the largest, never holds less than one read, and is 0 with readahead off", () => {
    expect(nextWindow(0, 8 * MiB, 16 * MiB)).toBe(16 * MiB);
    expect(nextWindow(16 * MiB, MiB, 16 * MiB)).toBe(16 * MiB);
    expect(nextWindow(0, 64 * 1024, 16 * MiB)).toBe(256 * 1024);
    expect(nextWindow(256 * 1024, 4 * MiB, 16 * MiB)).toBe(4 * MiB);
    expect(nextWindow(0, MiB, 0)).toBe(0);
  });
});
