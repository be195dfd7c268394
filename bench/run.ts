// `npm run bench`: measures, prints markdown tables, writes bench/results.json.
// Every figure is a median of several runs, and each is shown next to the
// raw limit measured in the same run: this machine is shared and noisy, so
// read the ratios, not the absolute numbers.

import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { PLATFORM_MSIZE_CEILING } from "../protocol/index.ts";
import { bytesPerSmallReply, codecThroughput } from "./protocol.ts";
import { iounitPolicies, readThroughput, startBenchGateways } from "./read.ts";
import { diodBench } from "./diod.ts";
import { distanceBench, distanceTable } from "./distance.ts";
import { WAN_RTT_MS, wanBench, wanTable } from "./wan.ts";
import { lockBench } from "./locks.ts";
import { memoryBench, unreadBench } from "./memory.ts";
import { metadataRates, readdirBench } from "./metadata.ts";
import { type Series, throughputSvg } from "./plot.ts";
import { writeBench } from "./write.ts";
import { writesBench } from "./writes.ts";
import { fmtRate, median, table } from "./stats.ts";

const machine = { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version };
const date = new Date().toISOString();
console.log(`# edge9p bench, ${date}\n\n${machine.cpu}, ${machine.cores} cores, Node ${machine.node}\n`);

console.log("## Protocol codec (encode + decode, one message at a time)\n");
const codec = codecThroughput();
console.log(
  table(
    ["message", "bytes", "msgs/s", "raw alloc+copy/s", "ratio"],
    codec.map((r) => [
      r.message,
      r.bytes,
      fmtRate(r.msgsPerSec),
      fmtRate(r.rawCopiesPerSec),
      (r.msgsPerSec / r.rawCopiesPerSec).toFixed(2),
    ]),
  ),
);

console.log("\n## Sequential read of a 64 MiB file (MB/s): gateway vs raw WebSocket + R2 range read\n");
const gateways = await startBenchGateways();
let read;
let iounit;
let metadata;
let readdir;
let locks;
let diod;
try {
  read = await readThroughput(gateways);
  iounit = await iounitPolicies(gateways);
  metadata = await metadataRates(gateways);
  readdir = await readdirBench(gateways);
  locks = await lockBench(gateways);
  diod = await diodBench(gateways);
} finally {
  await gateways.stop();
}
console.log(
  table(
    ["msize", "in flight", "bytes/request", "gateway MB/s", "raw WS + R2 MB/s", "raw WS echo MB/s", "gateway/raw"],
    read.map((r) => [r.msize, r.inFlight, r.requestBytes, r.gatewayMBps.toFixed(1), r.rawMBps.toFixed(1), r.echoMBps.toFixed(1), r.ratio.toFixed(2)]),
  ),
);

console.log("\n## iounit: 0 (Linux then uses msize - 24) or 4 KiB-aligned, for 16 MiB read as Linux splits read(2) calls\n");
console.log(
  table(
    ["msize", "read(2) size", "iounit 0: MB/s", "Treads", "aligned: MB/s", "Treads", "aligned/0"],
    iounit.map((r) => [
      r.msize,
      r.appRead,
      r.zeroMBps.toFixed(1),
      r.zeroRequests,
      r.alignedMBps.toFixed(1),
      r.alignedRequests,
      (r.alignedMBps / r.zeroMBps).toFixed(2),
    ]),
  ),
);

console.log("\n## Small requests per second: gateway vs raw WebSocket round trips (echo) on as many sockets\n");
console.log(
  table(
    ["request", "clients", "gateway/s", "raw round trips/s", "round trips / raw"],
    metadata.map((r) => [r.what, r.clients, r.perSec.toFixed(0), r.rawPerSec.toFixed(0), r.ratio.toFixed(2)]),
  ),
);
console.log(
  `\nTreaddir of ${readdir.entries} entries: ${readdir.firstSec.toFixed(2)} s the first time (listed from R2), ${readdir.cachedSec.toFixed(3)} s cached`,
);

console.log("\n## Locks: a bystander's requests on a file while another session holds N one-byte locks on it (median ms per request)\n");
console.log(
  table(
    ["locks held", "Tlock", "Tlock unlock", "Tgetattr", "raw round trip", "Tlock / raw"],
    locks.map((r) => [r.held, r.lockMs.toFixed(2), r.unlockMs.toFixed(2), r.getattrMs.toFixed(2), r.rawMs.toFixed(2), (r.lockMs / r.rawMs).toFixed(2)]),
  ),
);

console.log("\n## Against diod: diod's own clients, diod on a local directory, edge9p through edge9p bridge\n");
if (diod.available) {
  console.log(
    table(
      ["client", "msize", "diod", "edge9p", "raw WS + R2 via bridge", "unit", "edge9p/diod", "edge9p/raw"],
      diod.rows.map((r) => {
        const f = (n: number) => n.toFixed(r.unit === "MB/s" ? 1 : 0);
        return [r.what, r.msize, f(r.diod), f(r.edge9p), r.raw === null ? "-" : f(r.raw), r.unit, r.ratio.toFixed(2), r.raw === null ? "-" : (r.edge9p / r.raw).toFixed(2)];
      }),
    ),
  );
} else {
  console.log(`skipped: ${diod.reason}`);
}

console.log("\n## Sequential write of a 64 MiB file (MB/s): gateway (to the journal) vs raw WebSocket + R2 put\n");
const write = await writeBench();
console.log(
  table(
    ["msize", "in flight", "bytes/request", "gateway MB/s", "raw WS + R2 put MB/s", "raw WS MB/s", "gateway/raw"],
    write.rows.map((r) => [r.msize, r.inFlight, r.requestBytes, r.gatewayMBps.toFixed(1), r.rawMBps.toFixed(1), r.echoMBps.toFixed(1), r.ratio.toFixed(2)]),
  ),
);
console.log(`\nsmall files (create + write 4 KiB + close, one at a time): ${write.smallFilesPerSec.toFixed(0)} files/s`);
console.log(
  `close of a 64 MiB file to its object in R2: ${(write.publish.closeToObjectMs / 1000).toFixed(2)} s (publish delay ${write.publish.delayMs / 1000} s included)`,
);

console.log("\n## Bytes allocated per small reply (Rgetattr, Rlerror, Rwalk, Rclunk, empty Rread)\n");
const sizes = [8192, PLATFORM_MSIZE_CEILING];
// The two msizes alternate, run after run, so drift hits both alike.
const allocRuns = sizes.map(() => [] as ReturnType<typeof bytesPerSmallReply>[]);
for (let i = 0; i < 7; i++) sizes.forEach((msize, j) => allocRuns[j]!.push(bytesPerSmallReply(msize)));
const alloc = sizes.map((msize, j) => ({
  msize,
  bytesPerReply: median(allocRuns[j]!.map((r) => r.bytesPerReply)),
  gcs: allocRuns[j]!.reduce((n, r) => n + r.gcs, 0),
}));
console.log(
  table(
    ["msize", "bytes/reply", "an msize-sized buffer would be", "GCs while counting"],
    alloc.map((a) => [a.msize, a.bytesPerReply.toFixed(1), a.msize, a.gcs]),
  ),
);
const ratio = alloc[1]!.bytesPerReply / alloc[0]!.bytesPerReply;

console.log("\n## Memory during 8 concurrent 32 MiB reads at msize 32 MiB (a gateway of its own)\n");
const memory = await memoryBench();
const mb = (n: number | null) => (n === null ? "n/a" : (n / 1e6).toFixed(1));
const grew = (peak: number | null, base: number | null) => (peak === null || base === null ? null : peak - base);
console.log(
  table(
    ["reply-byte budget MB", "object's high-water MB", "workerd RSS before MB", "workerd peak RSS MB", "peak - before MB", "raw worker: peak - before MB"],
    [
      [
        mb(memory.budgetBytes),
        mb(memory.inflightHighWater),
        mb(memory.baseRssBytes),
        mb(memory.peakRssBytes),
        mb(grew(memory.peakRssBytes, memory.baseRssBytes)),
        mb(grew(memory.rawPeakRssBytes, memory.rawBaseRssBytes)),
      ],
    ],
  ),
);

console.log("\n## Memory with clients that never read (1 GiB of 4 MiB Treads each, sockets paused; a gateway of its own)\n");
const unread = await unreadBench();
console.log(
  table(
    ["clients", "asked, GiB each", "window MB each", "unread replies at most MB", "workerd grew MB", "object's high-water MB"],
    [
      [
        unread.clients,
        (unread.askedBytes / 2 ** 30).toFixed(2),
        mb(unread.windowBytes),
        mb(unread.clients * (unread.windowBytes + 2 ** 20)),
        mb(unread.grewBytes),
        mb(unread.inflightHighWater),
      ],
    ],
  ),
);

console.log("\n## Writes a reply waits on: SQLite rows per request (the share's stats; a gateway of its own)\n");
const writes = await writesBench();
const yes = (m: boolean | null) => (m === null ? "" : m ? "met" : "MISSED");
console.log(
  table(
    ["workload", "request", "requests", "rows/request", "statements/request", "target", ""],
    writes.rows.map((r) => [r.workload, r.request, r.requests, r.rowsPerRequest.toFixed(3), r.statementsPerRequest.toFixed(3), r.target, yes(r.met)]),
  ),
);
console.log("\n(Walks and clunks include their share of the sessions' batch writes. A resumable session writes its fid and its kept reply before each reply: no target.)\n");
console.log(
  `\nTgetattr round trips on one session: ${writes.getattrPerSec.toFixed(0)}/s; a small-file create one at a time is 4 round trips, 2 of them with a durable write`,
);

console.log("\n## At a distance: every R2 call held 30 ms (EDGE9P.r2_latency_ms) against R2 in the process, each figure beside its target\n");
const distance = await distanceBench();
console.log(distanceTable(distance));
console.log(`\nreadahead window at ${distance.latencyMs} ms: grew to ${(distance.window / 2 ** 20).toFixed(0)} MiB (EDGE9P.readahead_bytes)`);

console.log(`\n## Across the WAN: Linux's recorded requests replayed one at a time through edge9p bridge, at 0 and ${WAN_RTT_MS} ms round trip (--simulate-rtt)\n`);
const wan = await wanBench();
console.log(wanTable(wan));

const results = { date, machine, codec, read, iounit, metadata, readdir, locks, diod, write, alloc, memory, unread, writes, distance, wan, sizedRepliesRatio: ratio };
writeFileSync(fileURLToPath(new URL("./results.json", import.meta.url)), JSON.stringify(results, null, 2) + "\n");
type Row = { msize: number; inFlight: number; gatewayMBps: number; rawMBps: number };
const line = (rows: Row[], inFlight: number, key: "gatewayMBps" | "rawMBps", label: string, color: number): Series => ({
  label,
  color,
  dashed: key === "rawMBps",
  points: rows.filter((r) => r.inFlight === inFlight).map((r) => [r.msize, r[key]]),
});
const svg = throughputSvg(`edge9p, 64 MiB sequential (${date.slice(0, 10)}, ${machine.cores} cores)`, [
  line(read, 1, "gatewayMBps", "read, 1 in flight", 0),
  line(read, 1, "rawMBps", "raw read limit, 1", 0),
  line(read, 8, "gatewayMBps", "read, 8 in flight", 1),
  line(read, 8, "rawMBps", "raw read limit, 8", 1),
  line(write.rows, 1, "gatewayMBps", "write, 1 in flight", 2),
  line(write.rows, 8, "gatewayMBps", "write, 8 in flight", 3),
  line(write.rows, 8, "rawMBps", "raw R2 put limit, 8", 3),
]);
writeFileSync(fileURLToPath(new URL("./throughput.svg", import.meta.url)), svg);
console.log(`\nwrote bench/results.json and bench/throughput.svg`);
console.log(`sized-replies ratio=${ratio.toFixed(3)}`);
