// Across the WAN: what a mount pays when the gateway is a round trip away.
// Linux's 9p client (cache=none) sends one request and waits for its reply
// before the next, so a workload costs its requests times the round trip.
// This replays what Linux 6.1 sent (test/fixtures/captures: linux61-read,
// linux61-write, recorded against diod) through edge9p bridge, one request
// at a time, with the bridge's round-trip model at 0 and at 20 ms
// (`--simulate-rtt`), and prints the requests that crossed the WebSocket,
// the time, and time / (requests x RTT): 1.00 is a workload that waits a
// full round trip on every request. A "with cache" row per stream runs the
// 20 ms replay through `edge9p bridge --cache` (docs/leases.md) and prints it
// beside issue 18's targets: at most 5 requests crossing per file of the
// workload, and at most 3x the time at 0 ms.

import net from "node:net";
import { pathToFileURL } from "node:url";
import { startBridge } from "../bridge/bridge.ts";
import { Framer, PLATFORM_MSIZE_CEILING, decode, encode } from "../protocol/index.ts";
import { readCapture } from "../test/node/support/capture.ts";
import { type LocalGateway, startLocalGateway } from "../test/support/local-gateway.ts";
import { table } from "./stats.ts";

const L = "9P2000.L";
export const WAN_RTT_MS = 20;

export interface WanRow {
  workload: string;
  rttMs: number;
  /** Through the bridge's lease cache (--cache). */
  cache: boolean;
  /** Files (and directories) the workload names: what "per file" divides by. */
  files: number;
  requests: number;
  secs: number;
  /** secs / (requests x RTT); null at 0 ms. */
  perRoundTrip: number | null;
}

/** The tree linux61-read was recorded against (test/workerd/mount.test.ts puts the same), under `dir`. */
async function readTree(gw: LocalGateway, dir: string): Promise<void> {
  const b = await gw.bucket();
  await b.put(`${dir}/hello.txt`, "hi there\n");
  await b.put(`${dir}/link`, "hello.txt", { customMetadata: { mode: String(0o120777) } });
  await b.put(`${dir}/dir/a200k.txt`, new Uint8Array(200_000).fill(7));
  for (let i = 1; i <= 40; i++) await b.put(`${dir}/dir/sub/e${i}`, `entry ${i}\n`);
}

/**
 * Sends the capture's requests through the bridge at `port`, each after the
 * reply to the one before (as the recorded client waited), with every
 * Tattach's aname pointed at `dir`.
 */
async function replay(port: number, capture: string, dir: string): Promise<{ secs: number; kinds: string[] }> {
  const sock = net.connect(port, "127.0.0.1");
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  let waiting: ((m: Uint8Array) => void) | null = null;
  const framer = new Framer(PLATFORM_MSIZE_CEILING);
  sock.on("data", (chunk: Buffer) => framer.push(chunk, (m) => waiting?.(m)));
  const start = performance.now();
  /** Each reply's type, and its errno for an error: what runs of one capture must agree on. */
  const kinds: string[] = [];
  try {
    for (const r of readCapture(capture)) {
      if (r.dir !== "T") continue;
      let bytes = r.bytes;
      if (bytes[4] === 104 /* Tattach */) {
        const t = decode(bytes, L);
        if (t.type === "Tattach") bytes = encode({ ...t, aname: dir }, L);
      }
      const tag = bytes[5]! | (bytes[6]! << 8);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${capture}: no reply to tag ${tag} in 30 s`)), 30_000);
        waiting = (m) => {
          if ((m[5]! | (m[6]! << 8)) !== tag) return;
          kinds.push(m[4] === RLERROR ? `Rlerror ${m[7]}` : String(m[4]));
          clearTimeout(timer);
          resolve();
        };
        sock.write(bytes);
      });
    }
  } finally {
    sock.destroy();
  }
  return { secs: (performance.now() - start) / 1000, kinds };
}

const RLERROR = 7;

/** The names a capture walks to or creates: the files the workload touches. */
export function filesOf(capture: string): number {
  const names = new Set<string>();
  for (const r of readCapture(capture)) {
    if (r.dir !== "T") continue;
    const t = decode(r.bytes, L);
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    if (t.type === "Twalk") for (const n of t.wnames) names.add(text(n));
    if (t.type === "Tlcreate" || t.type === "Tmkdir" || t.type === "Tsymlink" || t.type === "Tlink" || t.type === "Tmknod") names.add(text(t.name));
    if (t.type === "Trenameat") names.add(text(t.newname));
  }
  names.delete("..");
  names.delete(".");
  return names.size;
}

/** Issue 18's targets for the cache at 20 ms. */
export const CACHE_TARGETS = { crossingPerFile: 5, timesZeroRtt: 3 };

export async function wanBench(rtts = [0, WAN_RTT_MS]): Promise<WanRow[]> {
  const gw = await startLocalGateway();
  const rows: WanRow[] = [];
  const captures = ["linux61-read", "linux61-write"];
  const runs = [...rtts.map((rttMs) => ({ rttMs, cache: false })), { rttMs: WAN_RTT_MS, cache: true }];
  const dirOf = (capture: string, r: { rttMs: number; cache: boolean }) => `wan/${capture}-${r.rttMs}${r.cache ? "-cache" : ""}`;
  try {
    // Every run's tree before the gateway lists wan/ once: a listing is R2
    // as of its last revalidation, so a tree put after it would be missing
    // (and the replay would get errors for what the recording got).
    for (const capture of captures) {
      for (const run of runs) {
        if (capture === "linux61-read") await readTree(gw, dirOf(capture, run));
        else await (await gw.bucket()).put(`${dirOf(capture, run)}/.keep`, "");
      }
    }
    for (const capture of captures) {
      const files = filesOf(capture);
      /** The first run's replies: every other run (the cache's above all) must get the same. */
      let first: string[] | null = null;
      for (const { rttMs, cache } of runs) {
        const dir = dirOf(capture, { rttMs, cache });
        const bridge = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), simulateRttMs: rttMs, cache, log: process.env.EDGE9P_DEBUG ? (l) => console.error(l) : undefined });
        try {
          const { secs, kinds } = await replay(bridge.port!, capture, dir);
          first ??= kinds;
          const at = kinds.findIndex((k, i) => k !== first![i]);
          if (at >= 0) throw new Error(`${capture} at ${rttMs} ms${cache ? " with the cache" : ""}: reply ${at} is ${kinds[at]}, the first run's was ${first[at]}`);
          const { requests, crossed, answered } = bridge.stats();
          if (process.env.EDGE9P_DEBUG) console.error(capture, rttMs, cache, { crossed, answered });
          rows.push({ workload: capture, rttMs, cache, files, requests, secs, perRoundTrip: rttMs ? secs / ((requests * rttMs) / 1000) : null });
        } finally {
          await bridge.close();
        }
      }
    }
  } finally {
    await gw.stop();
  }
  return rows;
}

export function wanTable(rows: WanRow[]): string {
  const zero = (w: string) => rows.find((r) => r.workload === w && r.rttMs === 0 && !r.cache);
  return table(
    [
      "workload (Linux 6.1, cache=none)",
      "bridge",
      "RTT ms",
      "requests over the WebSocket",
      `per file (target <= ${CACHE_TARGETS.crossingPerFile} with the cache)`,
      "time s",
      `x the 0 ms time (target <= ${CACHE_TARGETS.timesZeroRtt} with the cache)`,
      "time / (requests x RTT)",
    ],
    rows.map((r) => {
      const z = zero(r.workload);
      return [
        r.workload,
        r.cache ? "with cache" : "plain",
        r.rttMs,
        r.requests,
        `${(r.requests / r.files).toFixed(1)} (${r.files} files)`,
        r.secs.toFixed(2),
        z && r.rttMs ? (r.secs / z.secs).toFixed(1) : "-",
        r.perRoundTrip === null ? "-" : r.perRoundTrip.toFixed(2),
      ];
    }),
  );
}

// `npx tsx bench/wan.ts`: this section alone.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(wanTable(await wanBench()));
}
