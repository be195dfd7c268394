// npm run test:posix: pjdfstest (vendor/pjdfstest, upstream, unmodified) in
// the project's Linux guest, on a share mounted through edge9p bridge from a
// local wrangler dev gateway (9p2000.L, msize 1 MiB, access=client, as root),
// or on the guest's own tmpfs, or on diod (a local 9P server, Debian's
// package) serving a host directory, as references. Prints every real failure
// (not ok without # TODO), then per-directory and total counts and times.
//
//   npm run test:posix -- [--dirs chmod,rename/09.t,...] [--tmpfs | --diod] [--report]
//                         [--timeout S] [--test-timeout S]
//
// Exit 0 when nothing failed (or with --report, whenever the suite ran to its
// end); 1 on a real failure, a missing test, a script that did not exit 0, or
// a harness error; 2 on bad usage. Environment: EDGE9P_POSIX_DIRS (as
// --dirs), EDGE9P_POSIX_FS=tmpfs|diod (as --tmpfs, --diod), EDGE9P_POSIX_REPORT=1 (as
// --report). Output kept in test-output/posix/: FS.tap (the guest's output,
// written as it comes) and FS.json (per-file counts).

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type Bridge, startBridge } from "../../bridge/bridge.ts";
import { type LocalGateway, ROOT, freePort, startLocalGateway } from "../support/local-gateway.ts";
import { runGuest, setupGuest } from "../guest/support.ts";
import { V9FS_LIMITS } from "./client-limits.ts";
import { type FileResult, PosixTally, clock, failed, missing, real, table } from "./tally.ts";

const USAGE = `usage: npm run test:posix -- [--dirs LIST] [--tmpfs | --diod] [--report] [--timeout S] [--test-timeout S]
  --dirs LIST         comma-separated tests/ directories or files (chmod,rename/09.t); default all
  --tmpfs             run on the guest's tmpfs (the reference) instead of the gateway
  --diod              run on diod serving a fresh host directory, through the same 9p mount
  --report            print the results and exit 0 even with failures (1 still if the run broke)
  --timeout S         bound on the whole guest run (default 21600)
  --test-timeout S    bound on one .t file (default 900)
env: EDGE9P_POSIX_DIRS, EDGE9P_POSIX_FS=gateway|tmpfs|diod, EDGE9P_POSIX_REPORT=1`;

function usage(msg: string): never {
  console.error(`test:posix: ${msg}\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv: string[]) {
  const o = {
    dirs: process.env.EDGE9P_POSIX_DIRS ?? "",
    fs: process.env.EDGE9P_POSIX_FS || "gateway",
    report: process.env.EDGE9P_POSIX_REPORT === "1",
    timeout: 21_600,
    testTimeout: 900,
  };
  const num = (flag: string, v: string | undefined) => {
    if (!v || !/^\d+$/.test(v) || Number(v) === 0) usage(`${flag} wants a number of seconds`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--dirs") o.dirs = argv[++i] ?? usage("--dirs wants a list");
    else if (a.startsWith("--dirs=")) o.dirs = a.slice(7);
    else if (a === "--tmpfs") o.fs = "tmpfs";
    else if (a === "--diod") o.fs = "diod";
    else if (a === "--report") o.report = true;
    else if (a === "--timeout") o.timeout = num(a, argv[++i]);
    else if (a === "--test-timeout") o.testTimeout = num(a, argv[++i]);
    else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      process.exit(0);
    } else usage(`unknown argument ${a}`);
  }
  if (o.fs !== "gateway" && o.fs !== "tmpfs" && o.fs !== "diod") usage(`EDGE9P_POSIX_FS must be gateway, tmpfs or diod, not ${o.fs}`);
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const run = promisify(execFile);
const t0 = Date.now();

// The guest image (test/guest/setup) and the pjdfstest build (test/posix/setup).
await setupGuest();
await run("bash", [join(ROOT, "test/posix/setup"), "-q"], { maxBuffer: 64 << 20, timeout: 900_000 });
const cache = process.env.EDGE9P_GUEST_CACHE ?? join(homedir(), ".cache/edge9p-guest");
const pjd = realpathSync(join(cache, "pjdfstest/current"));
const source = readFileSync(join(pjd, "source"), "utf8").trim();

// What to run: whole directories of tests/ or single files.
const all = readdirSync(join(pjd, "tests")).filter((d) => statSync(join(pjd, "tests", d)).isDirectory()).sort();
const items = opts.dirs ? opts.dirs.split(",").map((s) => s.trim()).filter(Boolean) : all;
for (const it of items) {
  const ok = it.endsWith(".t") ? all.includes(it.split("/")[0]!) && statSync(join(pjd, "tests", it), { throwIfNoEntry: false })?.isFile() : all.includes(it);
  if (!ok) usage(`no such test directory or file: ${it} (directories: ${all.join(", ")})`);
}

const outDir = join(ROOT, "test-output/posix");
mkdirSync(outDir, { recursive: true });
const tapFile = join(outDir, `${opts.fs}.tap`);
writeFileSync(tapFile, "");

let gw: LocalGateway | undefined;
let bridge: Bridge | undefined;
let diod: ChildProcess | undefined;
const bridgeLog: string[] = [];
const abort = new AbortController();
const cleanup = async () => {
  abort.abort();
  diod?.kill();
  await bridge?.close();
  await gw?.stop();
};
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    console.error(`test:posix: ${sig}: stopping the guest and the gateway`);
    void cleanup().finally(() => process.exit(130));
  });
}

let port = 1;
let mountOpts = "access=client";
if (opts.fs === "gateway") {
  gw = await startLocalGateway();
  bridge = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), log: (l) => bridgeLog.push(l) });
  port = bridge.port!;
} else if (opts.fs === "diod") {
  // diod as root, no authentication (-n), exporting a fresh directory (the
  // aname); the guest attaches as root (diod looks the name up on the host).
  const dir = mkdtempSync(join(tmpdir(), "edge9p-posix-diod-"));
  port = await freePort();
  diod = spawn("diod", ["-f", "-n", "-l", `127.0.0.1:${port}`, "-e", dir, "-L", "stderr"], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 500));
  if (diod.exitCode !== null) usage("diod did not start (apt-get install diod; root needed)");
  mountOpts = `access=client,uname=root,aname=${dir}`;
}
const where =
  opts.fs === "gateway"
    ? "a share of a local wrangler dev gateway, through edge9p bridge (9p2000.L, msize 1 MiB, access=client)"
    : opts.fs === "diod"
      ? "diod serving a host directory (reference; 9p2000.L, msize 1 MiB, access=client)"
      : "the guest's tmpfs (reference)";
console.error(`test:posix: ${source} on ${where}: ${items.join(",")}`);

const tally = new PosixTally(
  (f) => {
    const bad = failed(f) ? `  FAILED (${real(f)} real, ${missing(f)} missing, status ${f.status ?? "none"})` : "";
    const client = f.client ? `  (${f.client} lost by the 9p client)` : "";
    console.error(`  ${f.test.padEnd(18)} ${String(f.ok).padStart(4)} ok ${String(f.notOk).padStart(4)} not ok ${(f.ms / 1000).toFixed(1).padStart(7)} s${bad}${client}`);
  },
  opts.fs === "tmpfs" ? [] : V9FS_LIMITS,
);
const guest = await runGuest(readFileSync(join(ROOT, "test/posix/guest.sh"), "utf8"), {
  port,
  msize: 1 << 20,
  opts: mountOpts,
  noMount: opts.fs === "tmpfs",
  timeout: opts.timeout,
  files: [`${pjd}:/files/pjdfstest`],
  args: [opts.fs === "tmpfs" ? "tmpfs" : "9p", String(opts.testTimeout), ...items],
  signal: abort.signal,
  onStdout: (chunk) => {
    appendFileSync(tapFile, chunk);
    tally.push(chunk);
  },
});
tally.end();
await cleanup();
if (bridgeLog.length) writeFileSync(join(outDir, "bridge.log"), bridgeLog.join("\n") + "\n");

// ---- report
const tot = tally.totals();
const broken: string[] = [...tally.errors];
if (guest.code !== 0) broken.push(`the guest exited ${guest.code}: ${guest.stderr.trim().split("\n").slice(-5).join(" | ")}`);
if (!tally.done) broken.push("the guest did not finish the list (see the last lines of " + tapFile + ")");

const failures = tally.files.filter(failed);
if (failures.length) {
  console.log(`\nReal failures (not ok without # TODO), missing tests and bad exits, in ${failures.length} files:\n`);
  for (const f of failures) {
    const why = [real(f) && `${real(f)} real`, missing(f) && `${missing(f)} missing of ${f.planned}`, f.planned === null && "no plan", f.status !== "0" && `exit ${f.status ?? "none"}`].filter(Boolean);
    console.log(`${f.test}: ${why.join(", ")}`);
    for (const l of f.failures) console.log(`  ${l}`);
    for (const l of f.other) console.log(`  | ${l}`);
  }
}
const lost = tally.files.filter((f) => f.client > 0);
if (lost.length) {
  console.log(`\nNot ok lines the guest's 9p client makes fail before any server sees them (test/posix/client-limits.ts; not counted as real):\n`);
  for (const f of lost) {
    console.log(`${f.test}: ${V9FS_LIMITS.find((c) => c.test === f.test)!.why}`);
    for (const l of f.clientLines) console.log(`  ${l}`);
  }
}
console.log(`\npjdfstest (${source}) on ${where}`);
if (tally.fsLine) console.log(`guest: Linux ${tally.fsLine.split(" ")[1] ?? ""}, file system type ${tally.fsLine.split(" ")[0]}`);
console.log(`\n${table(tally)}\n`);
console.log(
  `${tot.ok.toLocaleString("en-US")} ok, ${tot.notOk.toLocaleString("en-US")} not ok (${tot.todo} TODO, ${tot.client} 9p client, ${tot.real.toLocaleString("en-US")} real), ` +
    `${tot.missing} missing, ${tot.badStatus} files with a bad exit; tests ${clock(tot.ms)}, whole run ${clock(Date.now() - t0)}`,
);
writeFileSync(
  join(outDir, `${opts.fs}.json`),
  JSON.stringify({ source, fs: opts.fs, guest: tally.fsLine, items, totals: tot, byDir: Object.fromEntries(tally.byDir()), files: tally.files satisfies FileResult[] }, null, 2),
);
for (const b of broken) console.log(`test:posix: ${b}`);
if (broken.length) process.exit(1);
if (failures.length && !opts.report) process.exit(1);
process.exit(0);
