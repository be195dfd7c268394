// The resident memory of a local gateway's workerd processes, read from
// /proc (Linux only): the outside view of what the gateway holds. Local
// workerd enforces no memory limit, and V8's heap figures leave out
// ArrayBuffers and what workerd queues on sockets.

import { readFileSync, readdirSync, writeFileSync } from "node:fs";

/** The workerd processes below a pid (wrangler starts workerd as a child). */
export function workerdBelow(root: number): number[] {
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

function statusBytes(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Resident set now (VmRSS) and at its peak (VmHWM) of some processes, summed. */
export function residentOf(pids: number[]): { now: number; peak: number } {
  return {
    now: pids.reduce((n, p) => n + statusBytes(p, "VmRSS"), 0),
    peak: pids.reduce((n, p) => n + statusBytes(p, "VmHWM"), 0),
  };
}

/** Resets the peak (VmHWM) to the current resident set: writing 5 to clear_refs (proc(5)). */
export function resetPeak(pids: number[]): void {
  for (const p of pids) writeFileSync(`/proc/${p}/clear_refs`, "5");
}
