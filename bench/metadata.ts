// Small-message rates: what a `ls -l`, a `git status` or a build's stat storm
// costs. Each gateway figure is run alternately with the raw limit measured
// in the same run: small WebSocket round trips into a Durable Object (the
// raw worker's echo, no 9P, no SQLite), on 1 and on 4 sockets at once.

import { STATS, decodeDirents } from "../protocol/index.ts";
import { type BenchGateways } from "./read.ts";
import { type Mounted, type RawConn, mount9p, rawConnect } from "./clients.ts";
import { median } from "./stats.ts";

const enc = new TextEncoder();

export interface RateRow {
  what: string;
  clients: number;
  perSec: number;
  rawPerSec: number;
  ratio: number;
}

export interface ReaddirResult {
  entries: number;
  /** The first Treaddir pass: the directory is listed from R2 (10 list calls). */
  firstSec: number;
  /** Again, from the namespace in SQLite. */
  cachedSec: number;
}

/** Runs `op` back to back on each of `n` workers for `ms`; returns operations per second. */
async function loop(workers: (() => Promise<unknown>)[], ms: number): Promise<number> {
  const end = performance.now() + ms;
  let count = 0;
  const start = performance.now();
  await Promise.all(
    workers.map(async (op) => {
      while (performance.now() < end) {
        await op();
        count++;
      }
    }),
  );
  return count / ((performance.now() - start) / 1000);
}

async function rawEcho(conns: RawConn[], ms: number): Promise<number> {
  return loop(
    conns.map((c) => () => c.ask(0, 64, true)),
    ms,
  );
}

async function walkGetattrClunk(m: Mounted): Promise<void> {
  const c = m.client;
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [enc.encode("bench"), enc.encode("read-64MiB")] });
  await c.request({ type: "Tgetattr", fid, request_mask: STATS.BASIC });
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
}

export async function metadataRates(g: BenchGateways, runs = 5, ms = 1000): Promise<RateRow[]> {
  const ws = g.raw.url.replace("http", "ws");
  const raws = await Promise.all([0, 1, 2, 3].map(() => rawConnect(ws)));
  const mounts = await Promise.all([0, 1, 2, 3].map(() => mount9p(g.gw.wsUrl("dev"), 65536)));
  const getattr = (m: Mounted) => () => m.client.request({ type: "Tgetattr", fid: 0, request_mask: STATS.BASIC });
  const cases: { what: string; clients: number; run: () => Promise<number>; perOp: number }[] = [
    { what: "Tgetattr", clients: 1, run: () => loop([getattr(mounts[0]!)], ms), perOp: 1 },
    { what: "Tgetattr", clients: 4, run: () => loop(mounts.map(getattr), ms), perOp: 1 },
    { what: "Twalk + Tgetattr + Tclunk", clients: 1, run: () => loop([() => walkGetattrClunk(mounts[0]!)], ms), perOp: 3 },
  ];
  const rows: RateRow[] = [];
  for (const c of cases) {
    const gw: number[] = [];
    const raw: number[] = [];
    await c.run(); // warm up
    for (let i = 0; i < runs; i++) {
      gw.push(await c.run());
      raw.push(await rawEcho(raws.slice(0, c.clients), ms));
    }
    // A walk+getattr+clunk is three round trips: compare round trips with round trips.
    const perSec = median(gw);
    const rawPerSec = median(raw);
    rows.push({ what: c.what, clients: c.clients, perSec, rawPerSec, ratio: (perSec * c.perOp) / rawPerSec });
  }
  for (const r of raws) r.close();
  for (const m of mounts) m.close();
  return rows;
}

/** Treaddir of a directory of `entries` objects put straight into R2. */
export async function readdirBench(g: BenchGateways, entries = 10_000): Promise<ReaddirResult> {
  const b = await g.gw.bucket();
  const names = Array.from({ length: entries }, (_, i) => `bench/dir/f${String(i).padStart(5, "0")}.txt`);
  for (let i = 0; i < names.length; i += 64) await Promise.all(names.slice(i, i + 64).map((k) => b.put(k, "x")));
  const m = await mount9p(g.gw.wsUrl("dev"), 1 << 20);
  const c = m.client;
  const pass = async (): Promise<number> => {
    const fid = c.allocFid();
    const start = performance.now();
    await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [enc.encode("bench"), enc.encode("dir")] });
    await c.request({ type: "Tlopen", fid, flags: 0 });
    let offset = 0n;
    let seen = 0;
    for (;;) {
      const r = await c.request({ type: "Treaddir", fid, offset, count: 65536 });
      if (r.data.byteLength === 0) break;
      const batch = decodeDirents(r.data);
      seen += batch.length;
      offset = batch[batch.length - 1]!.offset;
    }
    const secs = (performance.now() - start) / 1000;
    await c.request({ type: "Tclunk", fid });
    c.releaseFid(fid);
    if (seen < entries) throw new Error(`readdir saw ${seen} of ${entries} entries`);
    return secs;
  };
  const firstSec = await pass();
  const cached: number[] = [];
  for (let i = 0; i < 3; i++) cached.push(await pass());
  m.close();
  return { entries, firstSec, cachedSec: median(cached) };
}
