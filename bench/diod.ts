// edge9p against diod, with diod's own clients on both sides: `diodcat -m
// MSIZE` reads a 64 MiB file, `diodload -g` measures getattr per second (it
// attaches to aname "ctl" and walks to "null": diod serves its ctl file
// system, the bench share holds ctl/null and ctl/zero). diod exports a local
// directory over TCP on loopback; edge9p is reached through `edge9p bridge`.
// diod reads a local disk (page cache); edge9p reads R2 through a Durable
// Object: the ratio says where edge9p stands, not which is faster at what.

import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startBridge } from "../bridge/bridge.ts";
import { alignedIounit } from "../protocol/index.ts";
import { readFramedRaw } from "./clients.ts";
import { freePort } from "../test/support/local-gateway.ts";
import type { BenchGateways } from "./read.ts";
import { median } from "./stats.ts";

const run = promisify(execFile);
const MiB = 1024 * 1024;
const FILE = 64 * MiB;

export interface DiodRow {
  what: string;
  msize: number;
  diod: number;
  edge9p: number;
  ratio: number;
  /** The raw WebSocket + R2 limit through the bridge with the client's pattern (reads only). */
  raw: number | null;
  unit: string;
}

export type DiodResult = { available: false; reason: string } | { available: true; rows: DiodRow[] };

async function have(cmd: string): Promise<boolean> {
  try {
    await run("sh", ["-c", `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Seconds diodcat takes to read `path` whole (checking the byte count). Its
 * output goes to `wc -c`, not into this process, which also runs the bridge:
 * taking 64 MiB through a pipe here would slow the bridge down.
 */
async function diodcat(server: string, aname: string, path: string, msize: number): Promise<number> {
  const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  const start = performance.now();
  const { stdout } = await run("bash", ["-o", "pipefail", "-c", `diodcat -s ${q(server)} -a ${q(aname)} -m ${msize} ${q(path)} | wc -c`]);
  const secs = (performance.now() - start) / 1000;
  const n = Number(stdout.trim());
  if (n !== FILE) throw new Error(`diodcat read ${n} of ${FILE} bytes from ${server}`);
  return secs;
}

/** getattr per second from diodload -g with `threads` threads for `secs` seconds. */
async function diodload(server: string, threads: number, secs: number): Promise<number> {
  const { stdout, stderr } = await run("diodload", ["-s", server, "-g", "-n", String(threads), "-r", String(secs)]);
  const m = /(\d+) ops\/s/.exec(stdout + stderr);
  if (!m) throw new Error(`diodload printed no rate: ${stdout}${stderr}`);
  return Number(m[1]);
}

export async function diodBench(g: BenchGateways, runs = 3): Promise<DiodResult> {
  for (const cmd of ["diod", "diodcat", "diodload"]) {
    if (!(await have(cmd))) return { available: false, reason: `${cmd} not found (apt-get install diod; bash test/guest/setup installs it)` };
  }
  const dir = mkdtempSync(join(tmpdir(), "edge9p-diod-"));
  const data = new Uint8Array(randomBytes(FILE));
  writeFileSync(join(dir, "big.bin"), data);
  const b = await g.gw.bucket();
  await b.put("diodbench/big.bin", data);
  await b.put("ctl/null", "");
  await b.put("ctl/zero", "");
  // The share's root was listed by the benchmarks before: new top-level names
  // show once its listing is older than dir_revalidate_ms (10 s by default).
  await new Promise((r) => setTimeout(r, 10_500));
  const port = await freePort();
  const diod = spawn("diod", ["-f", "-n", "-N", "-l", `127.0.0.1:${port}`, "-e", dir, "-e", "ctl", "-L", "stderr"], {
    stdio: "ignore",
  });
  const bridge = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: g.gw.wsUrl("dev"), log: () => {} });
  // The raw limit through the same bridge: the raw worker's 9P-shaped reads.
  const rawBridge = await startBridge({
    listen: { host: "127.0.0.1", port: 0 },
    url: `${g.raw.url.replace("http", "ws")}/9p-shaped`,
    log: () => {},
  });
  const dServer = `127.0.0.1:${port}`;
  const eServer = `127.0.0.1:${bridge.port}`;
  try {
    await new Promise((r) => setTimeout(r, 500));
    const rows: DiodRow[] = [];
    for (const msize of [64 * 1024, MiB, 4 * MiB]) {
      const d: number[] = [];
      const e: number[] = [];
      const r: number[] = [];
      // diodcat asks for the iounit edge9p gives (seen on the wire), one at a time.
      const count = alignedIounit(msize) || msize - 24;
      await diodcat(eServer, "/", "diodbench/big.bin", msize); // warm up
      for (let i = 0; i < runs; i++) {
        d.push(FILE / MiB / (await diodcat(dServer, dir, "big.bin", msize)));
        e.push(FILE / MiB / (await diodcat(eServer, "/", "diodbench/big.bin", msize)));
        r.push(FILE / MiB / (await readFramedRaw("127.0.0.1", rawBridge.port!, FILE, count)));
      }
      const edge9p = median(e);
      rows.push({ what: "diodcat 64 MiB", msize, diod: median(d), edge9p, ratio: edge9p / median(d), raw: median(r), unit: "MB/s" });
    }
    for (const threads of [1, 4]) {
      const d: number[] = [];
      const e: number[] = [];
      for (let i = 0; i < runs; i++) {
        d.push(await diodload(dServer, threads, 2));
        e.push(await diodload(eServer, threads, 2));
      }
      rows.push({ what: `diodload -g, ${threads} thread${threads > 1 ? "s" : ""}`, msize: 65536, diod: median(d), edge9p: median(e), ratio: median(e) / median(d), raw: null, unit: "getattr/s" });
    }
    return { available: true, rows };
  } finally {
    diod.kill();
    await bridge.close();
    await rawBridge.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
