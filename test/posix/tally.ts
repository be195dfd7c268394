// Counts pjdfstest's TAP output as test/posix/guest.sh frames it: one
// "@@posix begin DIR/NN.t" ... "@@posix end DIR/NN.t STATUS" block per .t
// file, with the script's own lines ("1..N", "ok N", "not ok N - tried ...",
// "... # TODO reason") in between. The host reads the lines as they arrive,
// so the time of a file is the host's time between its two markers.
//
// Counts, per file and summed per directory:
//   ok      "ok N" lines (an "ok N # TODO" too: it passed)
//   not ok  "not ok N" lines
//   TODO    "not ok N # TODO ...": a deviation the suite itself expects on
//           this OS (misc.sh's todo()), not a failure
//   9p client  not ok lines listed in client-limits.ts: what the guest's 9p
//           client loses before any server sees it (a 9p run only)
//   real    not ok without # TODO, and not such a line
//   missing tests the plan ("1..N") announced that never printed a line (the
//           script died or was killed by the per-file timeout)
// A file fails when it has a real failure or a missing test, or exits with a
// status other than 0.

import type { ClientLimit } from "./client-limits.ts";

export interface FileResult {
  /** DIR/NN.t */
  test: string;
  dir: string;
  planned: number | null;
  ok: number;
  notOk: number;
  todo: number;
  /** Not ok lines that client-limits.ts says the 9p client makes fail. */
  client: number;
  /** The "not ok" lines without # TODO, as printed, but for the client's. */
  failures: string[];
  /** The client's not ok lines, as printed. */
  clientLines: string[];
  /** Lines that are neither TAP nor markers (shell errors), the first few. */
  other: string[];
  /** The script's exit status as guest.sh printed it; null until its end marker. */
  status: string | null;
  ms: number;
}

export interface Totals {
  files: number;
  planned: number;
  ok: number;
  notOk: number;
  todo: number;
  client: number;
  real: number;
  missing: number;
  /** Files whose status was not 0. */
  badStatus: number;
  ms: number;
}

const OTHER_KEPT = 10;

export const real = (f: FileResult) => f.notOk - f.todo - f.client;
export const missing = (f: FileResult) => Math.max(0, (f.planned ?? 0) - f.ok - f.notOk);
/** Whether the file has anything that is not a pass: a real failure, a missing test, a bad status. */
export const failed = (f: FileResult) => real(f) > 0 || missing(f) > 0 || f.status !== "0" || f.planned === null;

export class PosixTally {
  readonly files: FileResult[] = [];
  /** "@@posix fs TYPE KERNEL": what the guest saw under its tests. */
  fsLine = "";
  done = false;
  readonly errors: string[] = [];
  private cur: FileResult | null = null;
  private began = 0;
  private rest = "";

  /**
   * `limits`: the lines the 9p client makes fail (client-limits.ts), for a
   * run on a 9p mount; none for tmpfs.
   */
  constructor(
    private readonly onEnd?: (f: FileResult) => void,
    private readonly limits: ClientLimit[] = [],
  ) {}

  /** A piece of the guest's output; lines may be split across pieces. */
  push(chunk: string, now = Date.now()): void {
    const lines = (this.rest + chunk).split("\n");
    this.rest = lines.pop()!;
    for (const l of lines) this.line(l.replace(/\r$/, ""), now);
  }

  /** The output ended: a last line without a newline, and a file left open, count too. */
  end(now = Date.now()): void {
    if (this.rest) this.line(this.rest, now);
    this.rest = "";
    if (this.cur) this.finish(null, now);
  }

  private line(l: string, now: number): void {
    let m: RegExpExecArray | null;
    if ((m = /^@@posix begin (\S+)$/.exec(l))) {
      if (this.cur) this.finish(null, now);
      const test = m[1]!;
      this.cur = { test, dir: test.split("/")[0]!, planned: null, ok: 0, notOk: 0, todo: 0, client: 0, failures: [], clientLines: [], other: [], status: null, ms: 0 };
      this.began = now;
    } else if ((m = /^@@posix end (\S+) (\S+)$/.exec(l))) {
      if (this.cur?.test === m[1]) this.finish(m[2]!, now);
      else this.errors.push(`end marker for ${m[1]} outside its file`);
    } else if ((m = /^@@posix fs (.*)$/.exec(l))) {
      this.fsLine = m[1]!;
    } else if (l === "@@posix done") {
      this.done = true;
    } else if ((m = /^@@posix error (.*)$/.exec(l))) {
      this.errors.push(m[1]!);
    } else if (this.cur) {
      const f = this.cur;
      if ((m = /^1\.\.(\d+)/.exec(l))) f.planned = Number(m[1]);
      else if ((m = /^(not )?ok (\d+)/.exec(l))) {
        const todo = /#\s*TODO\b/.test(l);
        if (!m[1]) f.ok++;
        else {
          f.notOk++;
          const num = Number(m[2]);
          if (todo) f.todo++;
          else if (this.limits.some((c) => c.test === f.test && c.numbers.includes(num))) {
            f.client++;
            f.clientLines.push(l);
          } else f.failures.push(l);
        }
      } else if (l.trim() && f.other.length < OTHER_KEPT) f.other.push(l);
    }
  }

  private finish(status: string | null, now: number): void {
    const f = this.cur!;
    f.status = status;
    f.ms = now - this.began;
    this.files.push(f);
    this.cur = null;
    this.onEnd?.(f);
  }

  /** Directories in the order they ran, each with its totals. */
  byDir(): [string, Totals][] {
    const dirs = new Map<string, FileResult[]>();
    for (const f of this.files) dirs.set(f.dir, [...(dirs.get(f.dir) ?? []), f]);
    return [...dirs].map(([d, fs]) => [d, totals(fs)]);
  }

  totals(): Totals {
    return totals(this.files);
  }
}

export function totals(fs: FileResult[]): Totals {
  const t: Totals = { files: 0, planned: 0, ok: 0, notOk: 0, todo: 0, client: 0, real: 0, missing: 0, badStatus: 0, ms: 0 };
  for (const f of fs) {
    t.files++;
    t.planned += f.planned ?? 0;
    t.ok += f.ok;
    t.notOk += f.notOk;
    t.todo += f.todo;
    t.client += f.client;
    t.real += real(f);
    t.missing += missing(f);
    if (f.status !== "0") t.badStatus++;
    t.ms += f.ms;
  }
  return t;
}

/** m:ss, or h:mm:ss from an hour. */
export function clock(ms: number): string {
  const s = Math.round(ms / 1000);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

const n = (x: number) => x.toLocaleString("en-US");

/** The per-directory table and the total row, as aligned text. */
export function table(tally: PosixTally): string {
  const head = ["directory", "files", "tests", "ok", "not ok", "TODO", "9p client", "real", "missing", "time"];
  const row = (name: string, t: Totals) => [name, n(t.files), n(t.planned), n(t.ok), n(t.notOk), n(t.todo), n(t.client), n(t.real), n(t.missing), clock(t.ms)];
  const rows = [head, ...tally.byDir().map(([d, t]) => row(d, t)), row("total", tally.totals())];
  const width = head.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(width[i]!) : c.padStart(width[i]!))).join("  ");
  const rule = width.map((w) => "-".repeat(w)).join("  ");
  return [fmt(rows[0]!), rule, ...rows.slice(1, -1).map(fmt), rule, fmt(rows.at(-1)!)].join("\n");
}
