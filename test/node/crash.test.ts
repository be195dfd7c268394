// Crash under load: 16 sessions create, write, rename and unlink files while
// the gateway's process (wrangler, workerd and the share's Durable Object)
// is killed with SIGKILL every few seconds and started again on the same
// state, as a crash or a deploy would. Afterwards every acknowledged change
// is there and nothing acknowledged as removed came back; once the
// publisher has caught up, R2 holds exactly the files the share holds, and
// the namespace passes its consistency check (GET /v1/shares/dev/check).

import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Client, NOFID, clientOverWebSocket, decodeDirents } from "../../protocol/index.ts";
import { type LocalGateway, operatorGet, startLocalGateway } from "../support/local-gateway.ts";

const WORKERS = 16;
const KILLS = 4;
const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface FileState {
  /** Names it may have now: one once every operation on it was acknowledged. */
  names: string[];
  content: string;
  /** Rlcreate arrived: it exists. */
  created: boolean;
  /** Rwrite arrived: its content must be there. */
  written: boolean;
  /** Tunlinkat sent but unanswered ("maybe"), or acknowledged ("yes"). */
  unlinked: "no" | "maybe" | "yes";
}

let gw: LocalGateway;
const sockets: WebSocket[] = [];

beforeAll(async () => {
  gw = await startLocalGateway({ config: { publish_delay_ms: 200, dir_revalidate_ms: 500 } });
});

afterAll(async () => {
  for (const ws of sockets) ws.terminate();
  await gw?.stop();
});

async function connect(): Promise<Client> {
  const ws = new WebSocket(gw.wsUrl(), ["9p"], { perMessageDeflate: false });
  sockets.push(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const c = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
  await c.version(65536);
  await c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
  return c;
}

async function walk(c: Client, names: string[]): Promise<number> {
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: names.map((n) => enc.encode(n)) });
  return fid;
}

async function entries(c: Client, dir: string[]): Promise<Set<string>> {
  const fid = await walk(c, dir);
  await c.request({ type: "Tlopen", fid, flags: 0 });
  const names = new Set<string>();
  let offset = 0n;
  for (;;) {
    const r = await c.request({ type: "Treaddir", fid, offset, count: 60_000 });
    if (r.data.byteLength === 0) break;
    const batch = decodeDirents(r.data);
    for (const e of batch) {
      const name = dec.decode(e.name);
      if (name !== "." && name !== "..") names.add(name);
    }
    offset = batch[batch.length - 1]!.offset;
  }
  await c.request({ type: "Tclunk", fid });
  return names;
}

async function cat(c: Client, path: string[]): Promise<string> {
  const fid = await walk(c, path);
  await c.request({ type: "Tlopen", fid, flags: 0 });
  const r = await c.request({ type: "Tread", fid, offset: 0n, count: 60_000 });
  await c.request({ type: "Tclunk", fid });
  return dec.decode(r.data);
}

/** One session's random work until `stop()`; reconnects whenever the gateway goes away. */
async function worker(id: number, stop: () => boolean, files: FileState[], counts: { ops: number; cut: number }) {
  const dir = ["crash", `w${id}`];
  let c: Client | null = null;
  let n = 0;
  while (!stop()) {
    try {
      if (!c) c = await connect();
      const live = files.filter((f) => f.created && f.unlinked === "no" && f.names.length === 1);
      const pick = Math.random();
      const d = await walk(c, dir);
      if (pick < 0.5 || live.length === 0) {
        const name = `f${n++}`;
        const f: FileState = { names: [name], content: `w${id}/${name} ${"x".repeat(n % 300)}`, created: false, written: false, unlinked: "no" };
        files.push(f);
        await c.request({ type: "Tlcreate", fid: d, name: enc.encode(name), flags: 1, mode: 0o644, gid: 0 });
        f.created = true;
        await c.request({ type: "Twrite", fid: d, offset: 0n, data: enc.encode(f.content) });
        f.written = true;
      } else if (pick < 0.8) {
        const f = live[Math.floor(Math.random() * live.length)]!;
        const to = `r${n++}`;
        f.names = [f.names[0]!, to];
        await c.request({ type: "Trenameat", olddirfid: d, oldname: enc.encode(f.names[0]!), newdirfid: d, newname: enc.encode(to) });
        f.names = [to];
      } else {
        const f = live[Math.floor(Math.random() * live.length)]!;
        f.unlinked = "maybe";
        await c.request({ type: "Tunlinkat", dirfid: d, name: enc.encode(f.names[0]!), flags: 0 });
        f.unlinked = "yes";
      }
      await c.request({ type: "Tclunk", fid: d });
      counts.ops++;
    } catch {
      // The gateway went away under us: reconnect once it is back.
      counts.cut++;
      c?.close();
      c = null;
      await sleep(100);
    }
  }
  c?.close();
}

describe("crash under load", () => {
  it(`keeps every acknowledged change of ${WORKERS} sessions while the gateway is killed ${KILLS} times`, { timeout: 300_000 }, async () => {
    const setup = await connect();
    await setup.request({ type: "Tmkdir", dfid: 0, name: enc.encode("crash"), mode: 0o755, gid: 0 });
    const top = await walk(setup, ["crash"]);
    for (let i = 0; i < WORKERS; i++) await setup.request({ type: "Tmkdir", dfid: top, name: enc.encode(`w${i}`), mode: 0o755, gid: 0 });
    setup.close();

    const files: FileState[][] = Array.from({ length: WORKERS }, () => []);
    const counts = { ops: 0, cut: 0 };
    let done = false;
    const work = Promise.all(files.map((f, i) => worker(i, () => done, f, counts)));
    for (let k = 0; k < KILLS; k++) {
      await sleep(2500);
      await gw.kill();
      await gw.restart();
    }
    await sleep(2500);
    done = true;
    await work;
    console.log(`crash under load: ${KILLS} kills, ${counts.ops} operations acknowledged, ${counts.cut} cut short`);
    expect(counts.cut).toBeGreaterThanOrEqual(KILLS);

    const c = await connect();
    let checked = 0;
    let uncertain = 0;
    for (let w = 0; w < WORKERS; w++) {
      const names = await entries(c, ["crash", `w${w}`]);
      for (const f of files[w]!) {
        const present = f.names.filter((name) => names.has(name));
        if (f.unlinked === "yes") {
          expect(present, `w${w}: ${f.names} was removed`).toEqual([]);
          continue;
        }
        if (!f.created || f.unlinked === "maybe" || f.names.length > 1) {
          uncertain++; // either outcome is right
          continue;
        }
        expect(present, `w${w}: ${f.names} was acknowledged`).toHaveLength(1);
        if (f.written) expect(await cat(c, ["crash", `w${w}`, present[0]!])).toBe(f.content);
        checked++;
      }
    }
    console.log(`crash check: ${checked} files as acknowledged, ${uncertain} cut mid-operation (either outcome right)`);
    expect(checked).toBeGreaterThan(100);

    // The namespace in SQLite is consistent (storage/fsck.ts).
    const check = async () => (await (await operatorGet(`${gw.url}/v1/shares/dev/check`)).json()) as { ok: boolean; problems: object; pending: { unpublished: number; jobs: number } };
    const report = await check();
    expect(report.problems).toEqual({
      entriesWithoutInode: 0,
      entriesInNonDirectories: 0,
      orphanExtents: 0,
      journalMiscounts: 0,
      holeMiscounts: 0,
      journalTotalOff: 0,
      unreachable: 0,
      linkMiscounts: 0,
    });
    expect(report.ok).toBe(true);

    // Once published, R2 holds exactly what the share holds.
    const want = new Set<string>();
    for (let w = 0; w < WORKERS; w++) for (const name of await entries(c, ["crash", `w${w}`])) want.add(`crash/w${w}/${name}`);
    c.close();
    const bucket = await gw.bucket();
    let have = new Set<string>();
    const deadline = Date.now() + 60_000;
    for (;;) {
      have = new Set<string>();
      let cursor: string | undefined;
      do {
        const page = await bucket.list({ prefix: "crash/", cursor });
        for (const o of page.objects) if (!o.key.endsWith("/")) have.add(o.key);
        cursor = page.truncated ? page.cursor : undefined;
      } while (cursor);
      const same = have.size === want.size && [...want].every((k) => have.has(k));
      const { pending } = await check();
      if ((same && pending.unpublished === 0 && pending.jobs === 0) || Date.now() > deadline) break;
      await sleep(500);
    }
    expect([...want].filter((k) => !have.has(k)), "in the share, not in R2").toEqual([]);
    expect([...have].filter((k) => !want.has(k)), "in R2, not in the share").toEqual([]);
    expect((await check()).pending).toEqual({ unpublished: 0, jobs: 0 });
  });
});
