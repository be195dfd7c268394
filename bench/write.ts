// Write benchmarks: sequential write of a 64 MiB file through the gateway
// next to the raw limit (WebSocket + R2 put of the same pieces) in the same
// run; small-file create + 4 KiB write + close per second; and the time from
// close to a published R2 object.

import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { alignedIounit } from "../protocol/index.ts";
import { type LocalGateway, ROOT, startLocalGateway } from "../test/support/local-gateway.ts";
import { mount9p, rawConnect, unlink9p, write9p, writeRaw } from "./clients.ts";
import { median } from "./stats.ts";

const MiB = 1 << 20;
const FILE = 64 * MiB;

export interface WriteRow {
  msize: number;
  inFlight: number;
  requestBytes: number;
  gatewayMBps: number;
  rawMBps: number;
  /** The WebSocket alone: the same messages, acknowledged without an R2 put. */
  echoMBps: number;
  ratio: number;
}

export interface WriteBench {
  rows: WriteRow[];
  smallFilesPerSec: number;
  publish: { delayMs: number; closeToObjectMs: number };
}

export async function writeBench(runs = 3): Promise<WriteBench> {
  // Publishing is pushed far out here so that uploads do not run beside the
  // measured writes; it is measured on its own below.
  const gw = await startLocalGateway({
    config: { msize_cap: 32 * MiB, inflight_bytes: 96 * MiB, publish_delay_ms: 3_600_000 },
  });
  const raw = await startLocalGateway({ wranglerConfig: join(ROOT, "bench/raw/wrangler.toml"), config: null, stateDir: gw.stateDir });
  const data = new Uint8Array(randomBytes(FILE));
  const rows: WriteRow[] = [];
  try {
    for (const msize of [64 * 1024, 128 * 1024, MiB, 4 * MiB, 32 * MiB]) {
      for (const inFlight of [1, 8]) {
        const m = await mount9p(gw.wsUrl("dev"), msize);
        const conn = await rawConnect(raw.url.replace("http", "ws"));
        const requestBytes = alignedIounit(msize) || msize - 24;
        const g: number[] = [];
        const r: number[] = [];
        const e: number[] = [];
        for (let i = 0; i < runs; i++) {
          g.push(FILE / MiB / (await write9p(m, `w-${msize}-${inFlight}-${i}`, data, inFlight)));
          await unlink9p(m, `w-${msize}-${inFlight}-${i}`);
          r.push(FILE / MiB / (await writeRaw(conn, data, requestBytes, inFlight)));
          e.push(FILE / MiB / (await writeRaw(conn, data, requestBytes, inFlight, true)));
        }
        m.close();
        conn.close();
        const row = { msize, inFlight, requestBytes, gatewayMBps: median(g), rawMBps: median(r), echoMBps: median(e), ratio: 0 };
        row.ratio = row.gatewayMBps / row.rawMBps;
        rows.push(row);
      }
    }
    const smallFilesPerSec = await smallFiles(gw);
    await raw.stop();
    await gw.stop();
    const publish = await publishLatency(data);
    return { rows, smallFilesPerSec, publish };
  } finally {
    await raw.stop().catch(() => {});
    await gw.stop().catch(() => {});
  }
}

/** create + write 4 KiB + close, one after another, as an untar does. */
/** Creates `n` files of 4 KiB (create, write, close) one at a time in a new directory; returns files per second. */
export async function smallFiles(gw: LocalGateway, n = 300, dirName = "small"): Promise<number> {
  const m = await mount9p(gw.wsUrl("dev"), MiB);
  const c = m.client;
  const page = new Uint8Array(randomBytes(4096));
  const dir = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: dir, wnames: [] });
  await c.request({ type: "Tmkdir", dfid: dir, name: dirName, mode: 0o40755, gid: 0 });
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const fid = c.allocFid();
    await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [dirName] });
    await c.request({ type: "Tlcreate", fid, name: `f${i}`, flags: 1, mode: 0o100644, gid: 0 });
    await c.request({ type: "Twrite", fid, offset: 0n, data: page });
    await c.request({ type: "Tclunk", fid });
    c.releaseFid(fid);
  }
  const secs = (performance.now() - start) / 1000;
  m.close();
  return n / secs;
}

/** From the Rclunk of a freshly written 64 MiB file to its object in R2, with the default publish delay. */
async function publishLatency(data: Uint8Array): Promise<{ delayMs: number; closeToObjectMs: number }> {
  const delayMs = 2000;
  const gw = await startLocalGateway({ config: { msize_cap: 4 * MiB, publish_delay_ms: delayMs } });
  try {
    const m = await mount9p(gw.wsUrl("dev"), 4 * MiB);
    await write9p(m, "published.bin", data, 4);
    const closed = performance.now();
    const b = await gw.bucket();
    for (;;) {
      const list = await b.list({ prefix: "published.bin" });
      if (list.objects.some((o) => o.key === "published.bin" && o.size === data.byteLength)) break;
      if (performance.now() - closed > 120_000) throw new Error("not published within 120 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    m.close();
    return { delayMs, closeToObjectMs: performance.now() - closed };
  } finally {
    await gw.stop();
  }
}
