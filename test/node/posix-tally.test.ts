// npm run test:posix's counting of pjdfstest's TAP output (test/posix/tally.ts):
// what counts as a real failure, what as the suite's own TODO, and that a
// script cut short or exiting badly never passes.

import { describe, expect, it } from "vitest";
import { V9FS_LIMITS } from "../posix/client-limits.ts";
import { PosixTally, failed, real, table } from "../posix/tally.ts";

const OUTPUT = [
  "@@posix fs 9p 6.1.0-50-amd64",
  "@@posix begin chmod/00.t",
  "1..5",
  "ok 1",
  "ok 2 # TODO passes here",
  "not ok 3 - tried 'chmod x 0644', expected 0, got EPERM",
  "not ok 4 # TODO Linux deviates",
  "stat returned -1",
  "ok 5",
  "@@posix end chmod/00.t 0",
  "@@posix begin chmod/01.t",
  "1..4",
  "ok 1",
  "ok 2",
  "@@posix end chmod/01.t 143",
  "@@posix begin rename/00.t",
  "1..2",
  "ok 1",
  "ok 2",
  "@@posix end rename/00.t 0",
  "@@posix done",
  "",
].join("\n");

describe("pjdfstest tally", () => {
  it("counts ok, not ok, TODO, real and missing per file and directory, whatever the chunking", () => {
    for (const size of [1, 7, 64, OUTPUT.length]) {
      const t = new PosixTally();
      let clock = 0;
      for (let i = 0; i < OUTPUT.length; i += size) t.push(OUTPUT.slice(i, i + size), (clock += 10));
      t.end(clock);
      expect(t.done).toBe(true);
      expect(t.fsLine).toBe("9p 6.1.0-50-amd64");
      expect(t.files.map((f) => [f.test, f.ok, f.notOk, f.todo, f.status])).toEqual([
        ["chmod/00.t", 3, 2, 1, "0"],
        ["chmod/01.t", 2, 0, 0, "143"],
        ["rename/00.t", 2, 0, 0, "0"],
      ]);
      expect(t.files[0]!.failures).toEqual(["not ok 3 - tried 'chmod x 0644', expected 0, got EPERM"]);
      expect(t.files[0]!.other).toEqual(["stat returned -1"]);
      expect(t.files.map(failed)).toEqual([true, true, false]);
      const dirs = Object.fromEntries(t.byDir());
      expect(dirs.chmod).toMatchObject({ files: 2, planned: 9, ok: 5, notOk: 2, todo: 1, real: 1, missing: 2, badStatus: 1 });
      expect(dirs.rename).toMatchObject({ files: 1, planned: 2, ok: 2, real: 0, missing: 0, badStatus: 0 });
      expect(t.totals()).toMatchObject({ files: 3, planned: 11, ok: 7, notOk: 2, todo: 1, real: 1, missing: 2 });
    }
  });

  it("a file the output stops in (the guest died) is counted, with what is missing", () => {
    const t = new PosixTally();
    t.push("@@posix begin link/00.t\n1..10\nok 1\nnot ok 2 - tried 'link a b', expected 0, got EIO\nok 3");
    t.end();
    expect(t.done).toBe(false);
    expect(t.files).toHaveLength(1);
    const f = t.files[0]!;
    expect([f.ok, f.notOk, f.status, failed(f)]).toEqual([2, 1, null, true]);
    expect(t.totals()).toMatchObject({ real: 1, missing: 7, badStatus: 1 });
  });

  it("a file that prints no plan fails; a skipped FreeBSD-only file (1..1, ok 1) passes", () => {
    const t = new PosixTally();
    t.push("@@posix begin open/00.t\nsh: can't open x\n@@posix end open/00.t 2\n@@posix begin chflags/00.t\n1..1\nok 1\n@@posix end chflags/00.t 0\n");
    expect(t.files.map(failed)).toEqual([true, false]);
  });

  it("counts the lines the 9p client makes fail apart, on a 9p run only: that file and those numbers, nothing else", () => {
    const out = [
      "@@posix begin utimensat/08.t",
      "1..9",
      "ok 4",
      "not ok 5 - tried 'lstat x atime_ns', expected 100000000, got 0",
      "not ok 6 - tried 'lstat x mtime_ns', expected 200000000, got 0",
      "not ok 7 - tried 'lstat x birthtime_ns', expected 200000000, got 0",
      "@@posix end utimensat/08.t 0",
      "@@posix begin utimensat/07.t",
      "1..1",
      "not ok 5 - tried 'x', expected 0, got EPERM",
      "@@posix end utimensat/07.t 0",
      "",
    ].join("\n");
    const on9p = new PosixTally(undefined, V9FS_LIMITS);
    on9p.push(out);
    expect(on9p.files.map((f) => [f.test, f.client, real(f), failed(f)])).toEqual([
      ["utimensat/08.t", 2, 1, true],
      ["utimensat/07.t", 0, 1, true],
    ]);
    expect(on9p.files[0]!.clientLines).toHaveLength(2);
    expect(on9p.totals()).toMatchObject({ notOk: 4, client: 2, real: 2 });
    const onTmpfs = new PosixTally();
    onTmpfs.push(out);
    expect(onTmpfs.totals()).toMatchObject({ notOk: 4, client: 0, real: 4 });
  });

  it("prints a row per directory and the total", () => {
    const t = new PosixTally();
    t.push(OUTPUT, 0);
    const lines = table(t).split("\n");
    expect(lines[0]).toMatch(/^directory\s+files\s+tests\s+ok\s+not ok\s+TODO\s+9p client\s+real\s+missing\s+time$/);
    expect(lines.find((l) => l.startsWith("chmod"))).toMatch(/^chmod\s+2\s+9\s+5\s+2\s+1\s+0\s+1\s+2\s+0:00$/);
    expect(lines.at(-1)).toMatch(/^total\s+3\s+11\s+7\s+2\s+1\s+0\s+1\s+2\s+0:00$/);
  });
});
