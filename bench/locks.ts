// Lock requests with many locks held: one session holds 1-byte write locks
// at every other offset of a file (up to the default 10,000 per session);
// a bystander on the same file locks and unlocks a range of its own and
// stats the file. Each figure is a median per-request latency, next to a
// small raw WebSocket round trip into a Durable Object measured in the
// same run.

import { LOCK_STATUS, LOCK_TYPE, STATS } from "../protocol/index.ts";
import { type Mounted, mount9p, rawConnect } from "./clients.ts";
import { type BenchGateways } from "./read.ts";
import { median } from "./stats.ts";

const enc = new TextEncoder();

export interface LockRow {
  held: number;
  lockMs: number;
  unlockMs: number;
  getattrMs: number;
  rawMs: number;
}

async function openRw(m: Mounted, name: string): Promise<number> {
  const c = m.client;
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [enc.encode("bench")] });
  await c.request({ type: "Tlcreate", fid, name, flags: 2, mode: 0o100644, gid: 0 }).catch(async () => {
    await c.request({ type: "Tclunk", fid });
    await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [enc.encode("bench"), enc.encode(name)] });
    await c.request({ type: "Tlopen", fid, flags: 2 });
  });
  return fid;
}

function lock(m: Mounted, fid: number, type: number, start: number, length: number, proc: number) {
  return m.client.request({ type: "Tlock", fid, lock_type: type, flags: 0, start: BigInt(start), length: BigInt(length), proc_id: proc, client_id: "bench" });
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

export async function lockBench(g: BenchGateways, levels = [0, 1000, 10_000], ops = 200): Promise<LockRow[]> {
  const holder = await mount9p(g.gw.wsUrl("dev"), 65536);
  const bystander = await mount9p(g.gw.wsUrl("dev"), 65536);
  const raw = await rawConnect(g.raw.url.replace("http", "ws"));
  const name = `locks-${Date.now()}`;
  const fh = await openRw(holder, name);
  const fb = await openRw(bystander, name);
  const rows: LockRow[] = [];
  let held = 0;
  for (const level of levels) {
    while (held < level) {
      const from = held;
      const batch = Math.min(256, level - from);
      const got = await Promise.all(Array.from({ length: batch }, (_, i) => lock(holder, fh, LOCK_TYPE.WRLCK, 2 * (from + i), 1, 1)));
      if (got.some((r) => r.status !== LOCK_STATUS.SUCCESS)) throw new Error("a holder's lock was refused");
      held += batch;
    }
    const far = 4 * level + 1_000_000 + 2 * (ops >> 2);
    const lockMs: number[] = [];
    const unlockMs: number[] = [];
    const getattrMs: number[] = [];
    const rawMs: number[] = [];
    // The first quarter warms up (JIT, SQLite's cache) and is not counted.
    for (let i = -(ops >> 2); i < ops; i++) {
      const l = await timed(() => lock(bystander, fb, LOCK_TYPE.WRLCK, far + 2 * i, 1, 2));
      const u = await timed(() => lock(bystander, fb, LOCK_TYPE.UNLCK, far + 2 * i, 1, 2));
      const a = await timed(() => bystander.client.request({ type: "Tgetattr", fid: fb, request_mask: STATS.BASIC }));
      const r = await timed(() => raw.ask(0, 64, true));
      if (i < 0) continue;
      lockMs.push(l);
      unlockMs.push(u);
      getattrMs.push(a);
      rawMs.push(r);
    }
    rows.push({ held, lockMs: median(lockMs), unlockMs: median(unlockMs), getattrMs: median(getattrMs), rawMs: median(rawMs) });
  }
  holder.close();
  bystander.close();
  raw.close();
  return rows;
}
