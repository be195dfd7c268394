// Memory during 8 concurrent 32 MiB reads at msize 32 MiB, on a gateway of
// its own (so neither figure carries an earlier benchmark): the high-water
// mark of the object's own accounting of reply bytes in flight (the
// budget, EDGE9P.inflight_bytes, at its default of 64 MiB), and the workerd
// process's peak RSS. Local workerd enforces no memory limit, and V8 heap
// figures leave out ArrayBuffers, where reply bytes live: RSS is the honest
// outside view.
// The raw worker, on a process of its own, makes the same reads (the same
// request size, 8 sockets at once) for the platform's own share of that RSS:
// the reply buffers, workerd's copies on send, and the local R2 simulator,
// which runs in the same process here and not at all in production.

import { randomBytes } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { alignedIounit } from "../protocol/index.ts";
import { type LocalGateway, OPERATOR_AUTH, ROOT, startLocalGateway } from "../test/support/local-gateway.ts";
import { mount9p, rawConnect, read9p, readRaw } from "./clients.ts";

const MiB = 1024 * 1024;

export interface MemoryResult {
  readers: number;
  msize: number;
  fileBytes: number;
  budgetBytes: number;
  /** Most reply bytes the object held at once (its own accounting). */
  inflightHighWater: number;
  /** workerd's peak resident set during the reads (VmHWM after a reset), or null off Linux. */
  peakRssBytes: number | null;
  /** workerd's resident set before the reads. */
  baseRssBytes: number | null;
  /** The same for the raw worker making the same reads. */
  rawPeakRssBytes: number | null;
  rawBaseRssBytes: number | null;
}

/** The workerd processes below a pid (wrangler starts workerd as a child). */
function workerdBelow(root: number): number[] {
  const parent = new Map<number, number>();
  const name = new Map<number, string>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      name.set(Number(d), stat.slice(stat.indexOf("(") + 1, close));
      parent.set(Number(d), Number(stat.slice(close + 2).split(" ")[1]));
    } catch {
      // gone meanwhile
    }
  }
  const below = (pid: number): boolean => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === root) return true;
    return false;
  };
  return [...name].filter(([pid, n]) => n === "workerd" && below(pid)).map(([pid]) => pid);
}

function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** workerd's resident set before and at its peak while `work` runs. */
async function rssAround(gw: LocalGateway, work: () => Promise<unknown>): Promise<{ base: number | null; peak: number | null }> {
  const pids = process.platform === "linux" ? workerdBelow(gw.pid()!) : [];
  const sum = (f: string) => (pids.length ? pids.reduce((n, p) => n + statusKb(p, f), 0) : null);
  // Writing 5 to clear_refs resets VmHWM to the current RSS (proc(5)).
  for (const p of pids) writeFileSync(`/proc/${p}/clear_refs`, "5");
  const base = sum("VmRSS");
  await work();
  return { base, peak: sum("VmHWM") };
}

export async function memoryBench(readers = 8, msize = 32 * MiB, budget = 64 * MiB): Promise<MemoryResult> {
  const fileBytes = 32 * MiB;
  const data = new Uint8Array(randomBytes(fileBytes));
  const gw = await startLocalGateway({ config: { msize_cap: msize, inflight_bytes: budget } });
  let gateway: { base: number | null; peak: number | null };
  let inflightHighWater: number;
  try {
    await (await gw.bucket()).put("bench/mem-32MiB", data);
    const mounts = await Promise.all(Array.from({ length: readers }, () => mount9p(gw.wsUrl("dev"), msize)));
    await read9p(mounts[0]!, ["bench", "mem-32MiB"], fileBytes, 1); // the object is up, the file listed
    gateway = await rssAround(gw, () => Promise.all(mounts.map((m) => read9p(m, ["bench", "mem-32MiB"], fileBytes, 1))));
    const stats = (await (await fetch(`${gw.url}/v1/shares/dev/stats`, { headers: OPERATOR_AUTH })).json()) as { inflightHighWater: number };
    inflightHighWater = stats.inflightHighWater;
    for (const m of mounts) m.close();
  } finally {
    await gw.stop();
  }
  const raw = await startLocalGateway({ wranglerConfig: join(ROOT, "bench/raw/wrangler.toml"), config: null });
  let rawRss: { base: number | null; peak: number | null };
  try {
    await (await raw.bucket()).put("bench/raw-target", data);
    const conns = await Promise.all(Array.from({ length: readers }, () => rawConnect(raw.url.replace("http", "ws"))));
    const count = alignedIounit(msize) || msize - 24;
    await readRaw(conns[0]!, fileBytes, count, 1); // warm up, as above
    rawRss = await rssAround(raw, () => Promise.all(conns.map((c) => readRaw(c, fileBytes, count, 1))));
    for (const c of conns) c.close();
  } finally {
    await raw.stop();
  }
  return {
    readers,
    msize,
    fileBytes,
    budgetBytes: budget,
    inflightHighWater,
    peakRssBytes: gateway.peak,
    baseRssBytes: gateway.base,
    rawPeakRssBytes: rawRss.peak,
    rawBaseRssBytes: rawRss.base,
  };
}
