// Memory during 8 concurrent 32 MiB reads at msize 32 MiB, on a gateway of
// its own (so neither figure carries an earlier benchmark): the high-water
// mark of the object's own accounting of reply bytes in flight (the
// budget, EDGE9P.inflight_bytes), and the workerd process's peak RSS. Local
// workerd enforces no memory limit, and V8 heap figures leave out
// ArrayBuffers, where reply bytes live: RSS is the honest outside view.

import { randomBytes } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { mount9p, read9p } from "./clients.ts";
import { startLocalGateway } from "../test/support/local-gateway.ts";

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

export async function memoryBench(readers = 8, msize = 32 * MiB, budget = 96 * MiB): Promise<MemoryResult> {
  const gw = await startLocalGateway({ config: { msize_cap: msize, inflight_bytes: budget } });
  try {
    const fileBytes = 32 * MiB;
    await (await gw.bucket()).put("bench/mem-32MiB", new Uint8Array(randomBytes(fileBytes)));
    const mounts = await Promise.all(Array.from({ length: readers }, () => mount9p(gw.wsUrl("dev"), msize)));
    await read9p(mounts[0]!, ["bench", "mem-32MiB"], fileBytes, 1); // the object is up, the file listed
    const pids = process.platform === "linux" ? workerdBelow(gw.pid()!) : [];
    const sum = (f: string) => (pids.length ? pids.reduce((n, p) => n + statusKb(p, f), 0) : null);
    // Writing 5 to clear_refs resets VmHWM to the current RSS (proc(5)).
    for (const p of pids) writeFileSync(`/proc/${p}/clear_refs`, "5");
    const baseRssBytes = sum("VmRSS");
    await Promise.all(mounts.map((m) => read9p(m, ["bench", "mem-32MiB"], fileBytes, 1)));
    const peakRssBytes = sum("VmHWM");
    const stats = (await (await fetch(`${gw.url}/v1/shares/dev/stats`)).json()) as { inflightHighWater: number };
    for (const m of mounts) m.close();
    return { readers, msize, fileBytes, budgetBytes: budget, inflightHighWater: stats.inflightHighWater, peakRssBytes, baseRssBytes };
  } finally {
    await gw.stop();
  }
}
