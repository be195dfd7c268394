// Writes a reply waits on: SQLite rows written per request type (the
// share's stats, worker/sql-meter.ts) for the workloads that should write
// nothing, and for small-file creates; each figure beside its target. The
// rates of small files and `edge9p cp -r` are in distance.ts, at 0 and 30 ms,
// with the clients' loops from here. In production a reply
// that follows a write waits until the write is durable; locally a request
// that writes costs about 0.3 ms more than one that does not (SQLite's
// commit), so rows and round trips are what these figures are made of.

import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { type Client, NOFID, RESUME_HEADER, STATS, SUBPROTOCOL, clientOverWebSocket } from "../protocol/index.ts";
import { type LocalGateway, operatorGet, startLocalGateway } from "../test/support/local-gateway.ts";
import { runEdge9p } from "../test/support/run-cli.ts";
import { mount9p } from "./clients.ts";
import { median } from "./stats.ts";

const MiB = 1 << 20;
/** The sessions' batch write (worker/session.ts FLUSH_MS) and a margin: what they defer is written by then. */
const SETTLE_MS = 2000;
const FILES = 1000;

interface Tally {
  requests: number;
  statements: number;
  rows: number;
}

export interface RowsRow {
  workload: string;
  request: string;
  requests: number;
  rowsPerRequest: number;
  statementsPerRequest: number;
  target: string;
  met: boolean | null;
}

export interface WritesBench {
  rows: RowsRow[];
  /** Small round trips per second on one session (Tgetattr), for the one-at-a-time figures' floor. */
  getattrPerSec: number;
}

async function writes(gw: LocalGateway): Promise<Record<string, Tally>> {
  return ((await (await operatorGet(`${gw.url}/v1/shares/dev/stats`)).json()) as { writes: Record<string, Tally> }).writes;
}

function between(a: Record<string, Tally>, b: Record<string, Tally>, kind: string): Tally {
  const x = a[kind] ?? { requests: 0, statements: 0, rows: 0 };
  const y = b[kind] ?? { requests: 0, statements: 0, rows: 0 };
  return { requests: y.requests - x.requests, statements: y.statements - x.statements, rows: y.rows - x.rows };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A resumable session (as edge9p bridge opens them), attached as fid 0. */
async function resumable(gw: LocalGateway): Promise<{ client: Client; close(): void }> {
  const ws = new WebSocket(gw.wsUrl("dev"), [SUBPROTOCOL], { headers: { [RESUME_HEADER]: "new" }, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const client = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
  await client.version(MiB);
  await client.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
  return { client, close: () => ws.close() };
}

export async function statPath(c: Client, path: string[]): Promise<void> {
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: path });
  await c.request({ type: "Tgetattr", fid, request_mask: STATS.BASIC });
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
}

async function catPath(c: Client, path: string[]): Promise<void> {
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: path });
  await c.request({ type: "Tlopen", fid, flags: 0 });
  await c.request({ type: "Tread", fid, offset: 0n, count: 8192 });
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
}

async function listPath(c: Client, path: string[]): Promise<void> {
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: path });
  await c.request({ type: "Tlopen", fid, flags: 0 });
  await c.request({ type: "Treaddir", fid, offset: 0n, count: 65536 });
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
}

/**
 * Runs `op` `n` times after a warm-up (a first pass fills what a read may
 * keep), then waits past the sessions' batch write, and reports the rows
 * each request type wrote; the batch's rows are spread over the walks and
 * clunks (they are what their fids cost).
 */
async function measure(gw: LocalGateway, workload: string, op: () => Promise<void>, n: number, types: string[]): Promise<RowsRow[]> {
  await op();
  await sleep(SETTLE_MS);
  const a = await writes(gw);
  for (let i = 0; i < n; i++) await op();
  await sleep(SETTLE_MS);
  const b = await writes(gw);
  const batch = between(a, b, "fid flush");
  const fidOps = between(a, b, "Twalk").requests + between(a, b, "Tclunk").requests;
  return types.map((request) => {
    const d = between(a, b, request);
    const share = request === "Twalk" || request === "Tclunk" ? d.requests / Math.max(1, fidOps) : 0;
    const rows = d.rows + batch.rows * share;
    const statements = d.statements + batch.statements * share;
    const perRow = d.requests ? rows / d.requests : 0;
    const pure = ["Tgetattr", "Tread", "Treaddir", "Treadlink", "Tstatfs"].includes(request);
    const target = pure ? "0" : request === "Twalk" || request === "Tclunk" ? "< 0.1" : "";
    const met = pure ? perRow === 0 : target ? perRow < 0.1 : null;
    return { workload, request, requests: d.requests, rowsPerRequest: perRow, statementsPerRequest: d.requests ? statements / d.requests : 0, target, met };
  });
}

/** `n` files of 4 KiB made with create + write + close, `k` at once on one session; files per second. */
export async function createsAtOnce(gw: LocalGateway, dirName: string, n: number, k: number): Promise<number> {
  const m = await mount9p(gw.wsUrl("dev"), MiB);
  const c = m.client;
  const page = new Uint8Array(randomBytes(4096));
  const dir = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: dir, wnames: [] });
  await c.request({ type: "Tmkdir", dfid: dir, name: dirName, mode: 0o40755, gid: 0 });
  await c.request({ type: "Tclunk", fid: dir });
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: k }, async () => {
      while (next < n) {
        const i = next++;
        const fid = c.allocFid();
        await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [dirName] });
        await c.request({ type: "Tlcreate", fid, name: `f${i}`, flags: 1, mode: 0o100644, gid: 0 });
        await c.request({ type: "Twrite", fid, offset: 0n, data: page });
        await c.request({ type: "Tclunk", fid });
        c.releaseFid(fid);
      }
    }),
  );
  const rate = n / ((performance.now() - start) / 1000);
  m.close();
  return rate;
}

/** Tgetattr of the root back to back on each of `clients` sessions for `ms`; requests per second, all sessions together. */
export async function getattrRate(gw: LocalGateway, ms = 1000, clients = 1): Promise<number> {
  const ms9 = await Promise.all(Array.from({ length: clients }, () => mount9p(gw.wsUrl("dev"), MiB)));
  const end = performance.now() + ms;
  const start = performance.now();
  let n = 0;
  await Promise.all(
    ms9.map(async (m) => {
      while (performance.now() < end) {
        await m.client.request({ type: "Tgetattr", fid: 0, request_mask: STATS.BASIC });
        n++;
      }
    }),
  );
  const rate = n / ((performance.now() - start) / 1000);
  for (const m of ms9) m.close();
  return rate;
}

/** `edge9p cp -r` as a user runs it (the command's start included); files per second. */
export async function cpBothWays(gw: LocalGateway, runs: number): Promise<{ up: number; down: number }> {
  const tmp = mkdtempSync(join(tmpdir(), "edge9p-bench-cp-"));
  try {
    const src = join(tmp, "src");
    for (let i = 0; i < FILES; i++) {
      const d = join(src, `d${i % 10}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, `f${i}`), randomBytes(4096));
    }
    const up: number[] = [];
    const down: number[] = [];
    for (let r = 0; r < runs; r++) {
      let t = performance.now();
      const u = await runEdge9p(["cp", "-r", src, `${gw.url}/v1/shares/dev/cp-${r}`]);
      up.push(FILES / ((performance.now() - t) / 1000));
      if (u.code !== 0) throw new Error(`cp up: ${u.stderr}`);
      t = performance.now();
      const d = await runEdge9p(["cp", "-r", `${gw.url}/v1/shares/dev/cp-${r}`, join(tmp, `back-${r}`)]);
      down.push(FILES / ((performance.now() - t) / 1000));
      if (d.code !== 0) throw new Error(`cp down: ${d.stderr}`);
    }
    return { up: median(up), down: median(down) };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export async function writesBench(runs = 3): Promise<WritesBench> {
  // Publishing far out: uploads to R2 must not run beside the measured requests.
  const gw = await startLocalGateway({ config: { publish_delay_ms: 3_600_000 } });
  try {
    const b = await gw.bucket();
    await b.put("bench/w/a.txt", new Uint8Array(randomBytes(4096)));
    for (let i = 0; i < 20; i++) await b.put(`bench/w/dir/e${i}`, "x");
    const plain = await mount9p(gw.wsUrl("dev"), MiB);
    const c = plain.client;
    const rows: RowsRow[] = [];
    rows.push(...(await measure(gw, "Tgetattr on fid 0", () => c.request({ type: "Tgetattr", fid: 0, request_mask: STATS.BASIC }).then(() => {}), 500, ["Tgetattr"])));
    rows.push(...(await measure(gw, "walk + getattr + clunk", () => statPath(c, ["bench", "w", "a.txt"]), 500, ["Twalk", "Tgetattr", "Tclunk"])));
    rows.push(...(await measure(gw, "walk + open + read + clunk (cat)", () => catPath(c, ["bench", "w", "a.txt"]), 300, ["Twalk", "Tlopen", "Tread", "Tclunk"])));
    rows.push(...(await measure(gw, "walk + open + readdir + clunk (ls)", () => listPath(c, ["bench", "w", "dir"]), 300, ["Twalk", "Tlopen", "Treaddir", "Tclunk"])));
    let made = 0;
    const page = new Uint8Array(randomBytes(4096));
    const dir = c.allocFid();
    await c.request({ type: "Twalk", fid: 0, newfid: dir, wnames: [] });
    await c.request({ type: "Tmkdir", dfid: dir, name: "rows-creates", mode: 0o40755, gid: 0 });
    await c.request({ type: "Tclunk", fid: dir });
    const createOne = async () => {
      const fid = c.allocFid();
      await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: ["rows-creates"] });
      await c.request({ type: "Tlcreate", fid, name: `f${made++}`, flags: 1, mode: 0o100644, gid: 0 });
      await c.request({ type: "Twrite", fid, offset: 0n, data: page });
      await c.request({ type: "Tclunk", fid });
      c.releaseFid(fid);
    };
    rows.push(...(await measure(gw, "create + write 4 KiB + close", createOne, 300, ["Twalk", "Tlcreate", "Twrite", "Tclunk"])));
    plain.close();
    const r = await resumable(gw);
    for (const row of await measure(gw, "walk + getattr + clunk, resumable session", () => statPath(r.client, ["bench", "w", "a.txt"]), 300, ["Twalk", "Tgetattr", "Tclunk"])) {
      // A resumable session writes the fid and the kept reply before the reply (worker/session.ts): no target.
      rows.push(row.request === "Tgetattr" ? row : { ...row, target: "", met: null });
    }
    r.close();

    const getattr: number[] = [];
    for (let i = 0; i < runs; i++) getattr.push(await getattrRate(gw));
    return { rows, getattrPerSec: median(getattr) };
  } finally {
    await gw.stop();
  }
}
