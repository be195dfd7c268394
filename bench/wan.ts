// Across the WAN: what a mount pays when the gateway is a round trip away.
// Linux's 9p client (cache=none) sends one request and waits for its reply
// before the next, so a workload costs its requests times the round trip.
// This replays what Linux 6.1 sent (test/fixtures/captures: linux61-read,
// linux61-write, recorded against diod) through edge9p bridge, one request
// at a time, with the bridge's round-trip model at 0 and at 20 ms
// (`--simulate-rtt`), and prints the requests that crossed the WebSocket,
// the time, and time / (requests x RTT): 1.00 is a workload that waits a
// full round trip on every request.

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
async function replay(port: number, capture: string, dir: string): Promise<number> {
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
          clearTimeout(timer);
          resolve();
        };
        sock.write(bytes);
      });
    }
  } finally {
    sock.destroy();
  }
  return (performance.now() - start) / 1000;
}

export async function wanBench(rtts = [0, WAN_RTT_MS]): Promise<WanRow[]> {
  const gw = await startLocalGateway();
  const rows: WanRow[] = [];
  try {
    for (const capture of ["linux61-read", "linux61-write"]) {
      for (const rttMs of rtts) {
        const dir = `wan/${capture}-${rttMs}`;
        if (capture === "linux61-read") await readTree(gw, dir);
        else await (await gw.bucket()).put(`${dir}/.keep`, "");
        const bridge = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), simulateRttMs: rttMs });
        try {
          const secs = await replay(bridge.port!, capture, dir);
          const { requests } = bridge.stats();
          rows.push({ workload: capture, rttMs, requests, secs, perRoundTrip: rttMs ? secs / ((requests * rttMs) / 1000) : null });
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
  return table(
    ["workload (Linux 6.1, cache=none)", "RTT ms", "requests over the WebSocket", "time s", "time / (requests x RTT)"],
    rows.map((r) => [r.workload, r.rttMs, r.requests, r.secs.toFixed(2), r.perRoundTrip === null ? "-" : r.perRoundTrip.toFixed(2)]),
  );
}

// `npx tsx bench/wan.ts`: this section alone.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(wanTable(await wanBench()));
}
