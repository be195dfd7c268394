// The gateway at a distance (issue 15's figures): the same suites on two
// gateways, one with R2 as Miniflare gives it (in the process, well under
// a millisecond a call) and one with the development latency model holding
// every R2 call 30 ms (EDGE9P.r2_latency_ms), as R2 from a Durable Object
// is in production. Each figure at 30 ms is printed beside the 0 ms one and
// its target: the ratio says how much of a path waits on R2 round trips.
// The R2 calls are the share's own count (stats).

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { startBridge } from "../bridge/bridge.ts";
import { type LocalGateway, operatorGet, startLocalGateway } from "../test/support/local-gateway.ts";
import { mount9p, rawConnect, read9p, readSmall9p } from "./clients.ts";
import { median, table } from "./stats.ts";
import { smallFiles } from "./write.ts";
import { cpBothWays, createsAtOnce, getattrRate, statPath } from "./writes.ts";

const run = promisify(execFile);
const ROOT = join(fileURLToPath(new URL(".", import.meta.url)), "..");
const MiB = 1024 * 1024;
const BIG = 64 * MiB;
const FILES = 1000;
const RUNS = 3;
/**
 * Warm reads of the small files: about a second each, so one alone is mostly
 * the machine's noise (measured: 534 to 1,566 files/s from one run to the
 * next on one gateway); the median of these.
 */
const WARM_RUNS = 5;
/** Files each small-file create run makes, one at a time. */
const CREATES = 300;

interface Calls {
  get: number;
  list: number;
  head: number;
}

interface Stats {
  r2Calls: Calls;
  readahead: { windowMax: number };
}

export interface DistanceRow {
  what: string;
  unit: string;
  near: number;
  far: number;
  /** R2 calls the measured part made at the distance, if counted. */
  calls: string;
  target: string;
  /** Whether the target holds (null: no target). */
  met: boolean | null;
}

async function stats(gw: LocalGateway): Promise<Stats> {
  const r = await operatorGet(`${gw.url}/v1/shares/dev/stats`);
  if (!r.ok) throw new Error(`stats: ${r.status} ${await r.text()}`);
  return (await r.json()) as Stats;
}

const delta = (a: Calls, b: Calls): Calls => ({ get: b.get - a.get, list: b.list - a.list, head: b.head - a.head });

/** Reads every small file once; files per second. Each file's bytes are its number (suite). */
const readSmall = (gw: LocalGateway) => readSmall9p(gw.wsUrl("dev"), ["distance", "small"], FILES, (i, d) => d.byteLength === 4096 && d[0] === (i & 0xff));

/** diodcat of the big file at msize 1 MiB through edge9p bridge (one request in flight); MB/s, or null without diodcat. */
async function diodcat(gw: LocalGateway): Promise<number | null> {
  try {
    await run("sh", ["-c", "command -v diodcat"]);
  } catch {
    return null;
  }
  const bridge = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), log: () => {} });
  try {
    const start = performance.now();
    const { stdout } = await run("bash", ["-o", "pipefail", "-c", `diodcat -s 127.0.0.1:${bridge.port} -a / -m ${MiB} distance/big.bin | wc -c`]);
    const secs = (performance.now() - start) / 1000;
    if (Number(stdout.trim()) !== BIG) throw new Error(`diodcat read ${stdout.trim()} of ${BIG} bytes`);
    return BIG / 1e6 / secs;
  } finally {
    await bridge.close();
  }
}

/** walk + getattr + clunk of one file back to back on one session for `ms`; per second. */
async function statRate(gw: LocalGateway, ms = 1000): Promise<number> {
  const m = await mount9p(gw.wsUrl("dev"), MiB);
  const end = performance.now() + ms;
  const start = performance.now();
  let n = 0;
  while (performance.now() < end) {
    await statPath(m.client, ["distance", "small", "f0"]);
    n++;
  }
  m.close();
  return n / ((performance.now() - start) / 1000);
}

interface Suite {
  seq: number;
  seqCalls: Calls;
  window: number;
  diodcat: number | null;
  first: number;
  firstCalls: Calls;
  second: number;
  secondCalls: Calls;
  getattr1: number;
  getattr4: number;
  stat: number;
  metaCalls: Calls;
  creates: number;
  /** The raw limit of a create one at a time (rawCreates), measured beside it. */
  rawCreates: number;
  /** The same four round trips with nothing written. */
  rawTrips: number;
  creates8: number;
  cpUp: number;
  cpDown: number;
}

/**
 * The platform's limit for a small-file create one at a time, with no 9P:
 * the same four WebSocket round trips into a Durable Object (walk, create,
 * write, clunk), two of them answered only after a row of the object's
 * SQLite is written (the create's inode, the write's 4 KiB), as the
 * gateway's must be (an acknowledged create or write survives a crash).
 */
async function rawCreates(url: string, n: number, write = true): Promise<number> {
  const conn = await rawConnect(url);
  const inode = new Uint8Array(96);
  const page = new Uint8Array(4096).fill(7);
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    await conn.ask(0, 16, true);
    await (write ? conn.store(inode) : conn.ask(0, 16, true));
    await (write ? conn.store(page) : conn.put(0, page, true));
    await conn.ask(0, 16, true);
  }
  const secs = (performance.now() - start) / 1000;
  conn.close();
  return n / secs;
}

async function suite(gw: LocalGateway, raw: LocalGateway, big: Uint8Array): Promise<Suite> {
  const bucket = await gw.bucket();
  await bucket.put("distance/big.bin", big);
  for (let i = 0; i < FILES; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, (_, j) => {
        const page = new Uint8Array(4096).fill((i + j) & 0xff);
        return bucket.put(`distance/small/f${i + j}`, page);
      }),
    );
  }
  const s0 = await stats(gw);
  const seqRuns: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const m = await mount9p(gw.wsUrl("dev"), MiB);
    seqRuns.push(BIG / 1e6 / (await read9p(m, ["distance", "big.bin"], BIG, 1)));
    m.close();
  }
  const s1 = await stats(gw);
  const dc: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await diodcat(gw);
    if (r !== null) dc.push(r);
  }
  const s2 = await stats(gw);
  const first = await readSmall(gw);
  const s3 = await stats(gw);
  const warm: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) warm.push(await readSmall(gw));
  const s4 = await stats(gw);
  const g1: number[] = [];
  const g4: number[] = [];
  const st: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    g1.push(await getattrRate(gw, 1000, 1));
    g4.push(await getattrRate(gw, 1000, 4));
    st.push(await statRate(gw));
  }
  const s5 = await stats(gw);
  const one: number[] = [];
  const rawOne: number[] = [];
  const rawTrips: number[] = [];
  const eight: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    one.push(await smallFiles(gw, CREATES, `one-${i}`));
    rawOne.push(await rawCreates(raw.wsUrl("raw"), CREATES));
    rawTrips.push(await rawCreates(raw.wsUrl("raw"), CREATES, false));
    eight.push(await createsAtOnce(gw, `eight-${i}`, 800, 8));
  }
  const cp = await cpBothWays(gw, RUNS);
  return {
    seq: median(seqRuns),
    seqCalls: delta(s0.r2Calls, s1.r2Calls),
    window: s1.readahead.windowMax,
    diodcat: dc.length ? median(dc) : null,
    first,
    firstCalls: delta(s2.r2Calls, s3.r2Calls),
    second: median(warm),
    secondCalls: delta(s3.r2Calls, s4.r2Calls),
    getattr1: median(g1),
    getattr4: median(g4),
    stat: median(st),
    metaCalls: delta(s4.r2Calls, s5.r2Calls),
    creates: median(one),
    rawCreates: median(rawOne),
    rawTrips: median(rawTrips),
    creates8: median(eight),
    cpUp: cp.up,
    cpDown: cp.down,
  };
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));
const callsText = (c: Calls, per = 1) => `${fmt(c.get / per)} get, ${fmt(c.list / per)} list${c.head ? `, ${fmt(c.head / per)} head` : ""}${per > 1 ? " per run" : ""}`;

export interface DistanceBench {
  latencyMs: number;
  rows: DistanceRow[];
  /** The largest readahead window the sequential reads grew at the distance. */
  window: number;
}

export async function distanceBench(latencyMs = 30): Promise<DistanceBench> {
  const big = new Uint8Array(randomBytes(BIG));
  const results: Suite[] = [];
  // The raw limit's worker (bench/raw/), its own process; no R2 on its path.
  const raw = await startLocalGateway({ wranglerConfig: join(ROOT, "bench/raw/wrangler.toml"), config: null });
  for (const ms of [0, latencyMs]) {
    // Publishing held off: locally R2 is a simulator in the gateway's own
    // process, so uploads beside the measured requests would take their CPU
    // (production's R2 is elsewhere). The write section measures a publish.
    const gw = await startLocalGateway({ config: { r2_latency_ms: ms, publish_delay_ms: 3_600_000 } });
    try {
      results.push(await suite(gw, raw, big));
    } finally {
      await gw.stop();
    }
  }
  await raw.stop();
  const [near, far] = results as [Suite, Suite];
  // A share of the 0 ms figure at the distance; a rate at both.
  const share = (what: string, unit: string, a: number, b: number, calls: string, extra = true): DistanceRow => ({
    what,
    unit,
    near: a,
    far: b,
    calls,
    target: ">= 0.80 of 0 ms",
    met: b / a >= 0.8 && extra,
  });
  const rate = (what: string, unit: string, a: number, b: number, min: number | null): DistanceRow => ({
    what,
    unit,
    near: a,
    far: b,
    calls: "",
    target: min === null ? "" : `>= ${min} at both`,
    met: min === null ? null : a >= min && b >= min,
  });
  const rows: DistanceRow[] = [share("sequential read of 64 MiB, msize 1 MiB, 1 in flight (protocol client)", "MB/s", near.seq, far.seq, callsText(far.seqCalls, RUNS))];
  if (near.diodcat !== null && far.diodcat !== null) rows.push(share("diodcat of 64 MiB, msize 1 MiB, through edge9p bridge", "MB/s", near.diodcat, far.diodcat, ""));
  rows.push(
    { what: `first read of ${FILES} files of 4 KiB, one at a time (walk, open, read, clunk)`, unit: "files/s", near: near.first, far: far.first, calls: callsText(far.firstCalls), target: "", met: null },
    {
      ...share(`second read of the same ${FILES} files (median of ${WARM_RUNS} reads)`, "files/s", near.second, far.second, callsText(far.secondCalls, WARM_RUNS), far.secondCalls.get === 0),
      target: ">= 0.80 of 0 ms, 0 R2 get",
    },
    { ...rate("Tgetattr, 1 client", "requests/s", near.getattr1, far.getattr1, null), calls: callsText(far.metaCalls) + " (the three rows)" },
    rate("Tgetattr, 4 clients at once", "requests/s", near.getattr4, far.getattr4, null),
    rate("walk + getattr + clunk of a file, 1 client", "files/s", near.stat, far.stat, null),
    rate(`create + write 4 KiB + close, one at a time (${CREATES} files)`, "files/s", near.creates, far.creates, 1000),
    {
      ...rate("  raw limit of it: 4 WebSocket round trips into a Durable Object, 2 answered after a SQLite row is written", "files/s", near.rawCreates, far.rawCreates, null),
      target: `gateway ${(near.creates / near.rawCreates).toFixed(2)} / ${(far.creates / far.rawCreates).toFixed(2)} of it`,
    },
    {
      ...rate("  the same 4 round trips with nothing written", "files/s", near.rawTrips, far.rawTrips, null),
      target: `gateway ${(near.creates / near.rawTrips).toFixed(2)} / ${(far.creates / far.rawTrips).toFixed(2)} of it`,
    },
    rate("create + write 4 KiB + close, 8 at once on one session (800 files)", "files/s", near.creates8, far.creates8, null),
    rate(`edge9p cp -r of ${FILES} files of 4 KiB up (the command's start included)`, "files/s", near.cpUp, far.cpUp, 500),
    rate(`edge9p cp -r of ${FILES} files of 4 KiB down (the command's start included)`, "files/s", near.cpDown, far.cpDown, 500),
  );
  return { latencyMs, rows, window: far.window };
}

/** The table npm run bench prints. */
export function distanceTable(r: DistanceBench): string {
  return table(
    ["what", "unit", "R2 at 0 ms", `R2 at ${r.latencyMs} ms`, "ratio", "target", "met", `R2 calls at ${r.latencyMs} ms`],
    r.rows.map((x) => [x.what, x.unit, x.near.toFixed(1), x.far.toFixed(1), (x.far / x.near).toFixed(2), x.target || "-", x.met === null ? "-" : x.met ? "yes" : "NO", x.calls || "-"]),
  );
}

// `npx tsx bench/distance.ts`: this section alone.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await distanceBench();
  console.log(distanceTable(r));
  console.log(`\nreadahead window at ${r.latencyMs} ms: grew to ${(r.window / 2 ** 20).toFixed(0)} MiB (EDGE9P.readahead_bytes)`);
}
