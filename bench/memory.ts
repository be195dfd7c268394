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
import { join } from "node:path";
import { ACK_SUBPROTOCOL, SUBPROTOCOL, alignedIounit } from "../protocol/index.ts";
import { type LocalGateway, OPERATOR_AUTH, ROOT, startLocalGateway } from "../test/support/local-gateway.ts";
import { nonReader } from "../test/support/non-reader.ts";
import { residentOf, resetPeak, workerdBelow } from "../test/support/process-memory.ts";
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

/** workerd's resident set before and at its peak while `work` runs. */
async function rssAround(gw: LocalGateway, work: () => Promise<unknown>): Promise<{ base: number | null; peak: number | null }> {
  const pids = process.platform === "linux" ? workerdBelow(gw.pid()!) : [];
  if (pids.length === 0) {
    await work();
    return { base: null, peak: null };
  }
  resetPeak(pids);
  const base = residentOf(pids).now;
  await work();
  return { base, peak: residentOf(pids).peak };
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

export interface UnreadResult {
  clients: number;
  /** Bytes of Treads each client asked for. */
  askedBytes: number;
  windowBytes: number;
  /** workerd's growth (peak RSS - before) while they asked and read nothing. */
  grewBytes: number | null;
  inflightHighWater: number;
}

/**
 * Clients that never read: each pipelines 1 GiB of 4 MiB Treads with its
 * socket paused, half over plain 9P and half over 9p.ack. What workerd
 * grows by is what they can make a share hold; without the per-socket
 * window it was everything asked (about 745 MB for 250 such Treads).
 */
export async function unreadBench(clients = 4): Promise<UnreadResult> {
  const fileBytes = 64 * MiB;
  const count = 4 * MiB - 4096;
  const reads = 256;
  const gw = await startLocalGateway({ config: { session_stall_ms: 3_600_000 } });
  try {
    await (await gw.bucket()).put("bench/unread-64MiB", new Uint8Array(randomBytes(fileBytes)));
    const pids = process.platform === "linux" ? workerdBelow(gw.pid()!) : [];
    const base = pids.length ? residentOf(pids).now : null;
    if (pids.length) resetPeak(pids);
    const sockets = [];
    for (let i = 0; i < clients; i++) {
      const protocols = i % 2 === 0 ? [SUBPROTOCOL] : [ACK_SUBPROTOCOL, SUBPROTOCOL];
      sockets.push(await nonReader(gw.wsUrl("dev"), { protocols, path: ["bench", "unread-64MiB"], fileBytes, msize: 4 * MiB, count, reads }));
    }
    await new Promise((r) => setTimeout(r, 5000));
    const peak = pids.length ? residentOf(pids).peak : null;
    const stats = (await (await fetch(`${gw.url}/v1/shares/dev/stats`, { headers: OPERATOR_AUTH })).json()) as { inflightHighWater: number };
    for (const s of sockets) s.terminate();
    return {
      clients,
      askedBytes: reads * count,
      windowBytes: 8 * MiB,
      grewBytes: peak === null || base === null ? null : peak - base,
      inflightHighWater: stats.inflightHighWater,
    };
  } finally {
    await gw.stop();
  }
}
