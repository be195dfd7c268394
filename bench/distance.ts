// The gateway at a distance: the same suites on two gateways, one with R2
// as Miniflare gives it (in the process, well under a millisecond a call)
// and one with the development latency model holding every R2 call 30 ms
// (EDGE9P.r2_latency_ms), as R2 from a Durable Object is in production.
// Each figure at 30 ms is shown beside the 0 ms one: the ratio says how
// much of a path waits on R2 round trips.

import { randomBytes } from "node:crypto";
import { type LocalGateway, startLocalGateway } from "../test/support/local-gateway.ts";
import { mount9p, read9p, readSmall9p } from "./clients.ts";
import { smallFiles } from "./write.ts";

const MiB = 1024 * 1024;
const FILES = 300;

export interface DistanceRow {
  what: string;
  unit: string;
  near: number;
  far: number;
}

/** Reads every small file once; files per second. */
const readSmall = (gw: LocalGateway) => readSmall9p(gw.wsUrl("dev"), ["bench", "small4k"], FILES);

async function suites(gw: LocalGateway, big: Uint8Array): Promise<Record<string, number>> {
  const bucket = await gw.bucket();
  await bucket.put("bench/read-64MiB", big);
  const page = new Uint8Array(randomBytes(4096));
  for (let i = 0; i < FILES; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => bucket.put(`bench/small4k/f${i + j}`, page)));
  const m = await mount9p(gw.wsUrl("dev"), MiB);
  const secs = await read9p(m, ["bench", "read-64MiB"], big.byteLength, 1);
  m.close();
  const first = await readSmall(gw);
  const second = await readSmall(gw);
  const creates = await smallFiles(gw, FILES, "creates");
  return { seq: big.byteLength / 1e6 / secs, first, second, creates };
}

export async function distanceBench(latencyMs = 30): Promise<{ latencyMs: number; rows: DistanceRow[] }> {
  const big = new Uint8Array(randomBytes(64 * MiB));
  const results: Record<string, number>[] = [];
  for (const ms of [0, latencyMs]) {
    const gw = await startLocalGateway({ config: { r2_latency_ms: ms } });
    try {
      results.push(await suites(gw, big));
    } finally {
      await gw.stop();
    }
  }
  const [near, far] = results as [Record<string, number>, Record<string, number>];
  const row = (what: string, unit: string, k: string): DistanceRow => ({ what, unit, near: near[k]!, far: far[k]! });
  return {
    latencyMs,
    rows: [
      row("sequential read of 64 MiB, msize 1 MiB, 1 in flight", "MB/s", "seq"),
      row(`first read of ${FILES} files of 4 KiB, one at a time`, "files/s", "first"),
      row(`second read of the same ${FILES} files`, "files/s", "second"),
      row(`create + write 4 KiB + close, ${FILES} files`, "files/s", "creates"),
    ],
  };
}
