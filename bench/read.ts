// Sequential read throughput of a 64 MiB file through the gateway, next to
// the raw limit (WebSocket + R2 range read of the same sizes at the same
// concurrency) measured in the same run, alternating.

import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { alignedIounit } from "../protocol/index.ts";
import { type LocalGateway, ROOT, startLocalGateway } from "../test/support/local-gateway.ts";
import { mount9p, rawConnect, read9p, readAsLinux, readRaw } from "./clients.ts";
import { median } from "./stats.ts";

const MiB = 1 << 20;
export const FILE_SIZE = 64 * MiB;

export interface ReadRow {
  msize: number;
  inFlight: number;
  requestBytes: number;
  gatewayMBps: number;
  rawMBps: number;
  /** The WebSocket alone: replies of the same size, no R2 read. */
  echoMBps: number;
  ratio: number;
}

export interface BenchGateways {
  gw: LocalGateway;
  raw: LocalGateway;
  stop(): Promise<void>;
}

/** The gateway with msize up to the platform ceiling, and the raw worker on the same bucket. */
export async function startBenchGateways(): Promise<BenchGateways> {
  // A window of twice the largest msize: two reads in flight per socket at 32 MiB (the default 8 MiB suits msize_cap 4 MiB).
  const gw = await startLocalGateway({ config: { msize_cap: 32 * MiB, inflight_bytes: 96 * MiB, session_window_bytes: 64 * MiB } });
  const raw = await startLocalGateway({
    wranglerConfig: join(ROOT, "bench/raw/wrangler.toml"),
    config: null,
    stateDir: gw.stateDir,
  });
  const data = new Uint8Array(randomBytes(FILE_SIZE));
  const b = await gw.bucket();
  await b.put("bench/read-64MiB", data);
  await b.put("bench/raw-target", data);
  return {
    gw,
    raw,
    async stop() {
      await raw.stop();
      await gw.stop();
    },
  };
}

const mbps = (secs: number) => FILE_SIZE / MiB / secs;

export async function readThroughput(g: BenchGateways, runs = 5): Promise<ReadRow[]> {
  const rows: ReadRow[] = [];
  for (const msize of [64 * 1024, 128 * 1024, MiB, 4 * MiB, 32 * MiB]) {
    for (const inFlight of [1, 8]) {
      const m = await mount9p(g.gw.wsUrl("dev"), msize);
      const conn = await rawConnect(g.raw.url.replace("http", "ws"));
      // The raw reads use the request size the 9P client ends up using.
      const requestBytes = alignedIounit(msize) || msize - 24;
      const gw: number[] = [];
      const raw: number[] = [];
      const echo: number[] = [];
      await read9p(m, ["bench", "read-64MiB"], FILE_SIZE, inFlight); // warm up
      for (let i = 0; i < runs; i++) {
        gw.push(mbps(await read9p(m, ["bench", "read-64MiB"], FILE_SIZE, inFlight)));
        raw.push(mbps(await readRaw(conn, FILE_SIZE, requestBytes, inFlight)));
        echo.push(mbps(await readRaw(conn, FILE_SIZE, requestBytes, inFlight, true)));
      }
      m.close();
      conn.close();
      const row = { msize, inFlight, requestBytes, gatewayMBps: median(gw), rawMBps: median(raw), echoMBps: median(echo), ratio: 0 };
      row.ratio = row.gatewayMBps / row.rawMBps;
      rows.push(row);
    }
  }
  return rows;
}

export interface IounitRow {
  msize: number;
  appRead: number;
  zeroMBps: number;
  zeroRequests: number;
  alignedMBps: number;
  alignedRequests: number;
}

/**
 * iounit 0 (Linux then uses msize - 24) against a 4 KiB-aligned iounit, for
 * read(2) sizes larger than one request, split the way Linux splits them
 * (with smaller reads both send the same requests). The two alternate, each
 * going first every other run, and the figures are medians.
 */
export async function iounitPolicies(g: BenchGateways, runs = 7): Promise<IounitRow[]> {
  const rows: IounitRow[] = [];
  const size = FILE_SIZE / 4;
  for (const [msize, appRead] of [
    [MiB, MiB],
    [MiB, 4 * MiB],
    [4 * MiB, 4 * MiB],
  ] as const) {
    const m = await mount9p(g.gw.wsUrl("dev"), msize);
    const zero: number[] = [];
    const aligned: number[] = [];
    let zr = 0;
    let ar = 0;
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? ["zero", "aligned"] : ["aligned", "zero"];
      for (const which of order) {
        const rsize = which === "zero" ? msize - 24 : alignedIounit(msize);
        const r = await readAsLinux(m, ["bench", "read-64MiB"], size, appRead, rsize);
        if (which === "zero") {
          zero.push(size / MiB / r.secs);
          zr = r.requests;
        } else {
          aligned.push(size / MiB / r.secs);
          ar = r.requests;
        }
      }
    }
    rows.push({ msize, appRead, zeroMBps: median(zero), zeroRequests: zr, alignedMBps: median(aligned), alignedRequests: ar });
    m.close();
  }
  return rows;
}
