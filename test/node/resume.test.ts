// Resumable sessions through `edge9p bridge` against a real local gateway
// (wrangler dev): the gateway closes the sockets mid-stream (POST .../drain)
// or its whole process is killed and started again, as a deploy does, while
// creates, renames and writes are in flight. The guest side (a TCP client)
// must see every request answered exactly once, no create run twice, and
// the same files it would have seen with no interruption.

import net from "node:net";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bridge, startBridge } from "../../bridge/bridge.ts";
import { Client, Framer, NOFID, PLATFORM_MSIZE_CEILING, decodeDirents, peekTag } from "../../protocol/index.ts";
import { type LocalGateway, OPERATOR_AUTH, startLocalGateway } from "../support/local-gateway.ts";

let gw: LocalGateway;
let bridge: Bridge;
const lines: string[] = [];
/** A TCP relay between a second bridge and the gateway, to cut like a network would. */
let relay: { port: number; cut(): number; close(): void };
let relayed: Bridge;

function startRelay(to: number): Promise<typeof relay> {
  const conns = new Set<net.Socket>();
  const server = net.createServer((a) => {
    const b = net.connect(to, "127.0.0.1");
    for (const s of [a, b]) {
      conns.add(s);
      s.on("close", () => conns.delete(s));
      s.on("error", () => {});
    }
    a.pipe(b);
    b.pipe(a);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        // Both ends at once, with no close frame: what a network change does.
        cut: () => {
          const n = conns.size;
          for (const s of conns) s.destroy();
          return n;
        },
        close: () => server.close(),
      }),
    ),
  );
}

beforeAll(async () => {
  gw = await startLocalGateway();
  bridge = await startBridge({
    listen: { host: "127.0.0.1", port: 0 },
    url: gw.wsUrl("dev"),
    log: (l) => lines.push(l),
  });
  relay = await startRelay(Number(new URL(gw.url).port));
  relayed = await startBridge({
    listen: { host: "127.0.0.1", port: 0 },
    url: gw.wsUrl("dev").replace(/:\d+\//, `:${relay.port}/`),
    log: (l) => lines.push(l),
  });
}, 120_000);

afterAll(async () => {
  if (process.env.EDGE9P_DEBUG) console.log(lines.join("\n"), gw?.output());
  await relayed?.close();
  relay?.close();
  await bridge?.close();
  await gw?.stop();
});

/**
 * A 9P client over TCP to the bridge that counts what crosses the wire:
 * requests sent and replies received per tag, so a duplicate or a missing
 * reply shows.
 */
async function guest(
  via: Bridge = bridge,
): Promise<{ c: Client; sent: () => number; replies: () => number; duplicates: () => number; close(): void }> {
  const socket = net.connect(via.port!, "127.0.0.1");
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  let sent = 0;
  let replies = 0;
  let duplicates = 0;
  const waiting = new Set<number>();
  const c = new Client({
    send: (m) => {
      sent++;
      waiting.add(peekTag(m)!);
      socket.write(m);
    },
    close: () => socket.end(),
  });
  const framer = new Framer(PLATFORM_MSIZE_CEILING);
  socket.on("data", (chunk: Buffer) =>
    framer.push(chunk, (m) => {
      replies++;
      const tag = peekTag(m)!;
      if (!waiting.delete(tag)) duplicates++;
      c.receive(m);
    }),
  );
  socket.on("close", () => c.fail(new Error("connection closed")));
  socket.on("error", (e) => c.fail(e));
  await c.version(1 << 20);
  await c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
  return { c, sent: () => sent, replies: () => replies, duplicates: () => duplicates, close: () => socket.destroy() };
}

const enc = (s: string) => new TextEncoder().encode(s);

async function walk(c: Client, path: string[]): Promise<number> {
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: path.map(enc) });
  return fid;
}

async function clunk(c: Client, fid: number): Promise<void> {
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
}

/** Creates `name` in `dir` and writes `data` in pieces of `piece` bytes, 4 at a time. */
async function createAndWrite(c: Client, dir: string, name: string, data: Uint8Array, piece: number): Promise<void> {
  const fid = await walk(c, [dir]);
  await c.request({ type: "Tlcreate", fid, name: enc(name), flags: 1, mode: 0o100644, gid: 0 });
  let next = 0;
  const writer = async () => {
    while (next < data.byteLength) {
      const off = next;
      next += piece;
      await c.request({ type: "Twrite", fid, offset: BigInt(off), data: data.subarray(off, off + piece) });
    }
  };
  await Promise.all([writer(), writer(), writer(), writer()]);
  await clunk(c, fid);
}

async function rename(c: Client, dir: string, from: string, to: string): Promise<void> {
  const d = await walk(c, [dir]);
  await c.request({ type: "Trenameat", olddirfid: d, oldname: enc(from), newdirfid: d, newname: enc(to) });
  await clunk(c, d);
}

async function readFile(c: Client, path: string[]): Promise<Uint8Array> {
  const fid = await walk(c, path);
  await c.request({ type: "Tlopen", fid, flags: 0 });
  const parts: Uint8Array[] = [];
  for (let off = 0; ; ) {
    const r = await c.request({ type: "Tread", fid, offset: BigInt(off), count: c.msize - 24 });
    if (r.data.byteLength === 0) break;
    parts.push(r.data.slice());
    off += r.data.byteLength;
  }
  await clunk(c, fid);
  return Buffer.concat(parts);
}

async function names(c: Client, dir: string): Promise<string[]> {
  const fid = await walk(c, [dir]);
  await c.request({ type: "Tlopen", fid, flags: 0 });
  const out: string[] = [];
  let offset = 0n;
  for (;;) {
    const r = await c.request({ type: "Treaddir", fid, offset, count: 65536 });
    if (r.data.byteLength === 0) break;
    const batch = decodeDirents(r.data);
    for (const e of batch) out.push(new TextDecoder().decode(e.name));
    offset = batch[batch.length - 1]!.offset;
  }
  await clunk(c, fid);
  return out.filter((n) => n !== "." && n !== "..").sort();
}

function content(seed: number, size: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => ((i + seed) * 2654435761) >>> 24);
}

async function drain(): Promise<number> {
  const r = await fetch(`${gw.url}/v1/shares/dev/drain`, { method: "POST", headers: { "Content-Type": "application/json", ...OPERATOR_AUTH } });
  expect(r.status).toBe(200);
  return ((await r.json()) as { closed: number }).closed;
}

/** The work a guest does: per round, two new files written in pieces, one renamed over the other's old name. */
async function workload(c: Client, dir: string, rounds: number): Promise<Map<string, Uint8Array>> {
  const d = await walk(c, []);
  await c.request({ type: "Tmkdir", dfid: d, name: enc(dir), mode: 0o40755, gid: 0 });
  await clunk(c, d);
  const expected = new Map<string, Uint8Array>();
  // Four rounds at a time: a steady stream of requests in flight.
  let next = 0;
  const runner = async () => {
    for (let i = next++; i < rounds; i = next++) {
      const a = content(i, 200_000 + i * 1000);
      const b = content(i + 1000, 20_000);
      // Creates and renames dominate: each must run once, or EEXIST/ENOENT shows.
      const small = Array.from({ length: 6 }, (_, k) => [`s${i}-${k}`, content(i * 10 + k, 3000 + k)] as const);
      await Promise.all([
        createAndWrite(c, dir, `a${i}`, a, 16_384),
        createAndWrite(c, dir, `b${i}`, b, 4096),
        ...small.map(([n, d]) => createAndWrite(c, dir, n, d, 4096)),
      ]);
      await rename(c, dir, `a${i}`, `c${i}`);
      for (const [n, d] of small) expected.set(n, d);
      expected.set(`b${i}`, b);
      expected.set(`c${i}`, a);
    }
  };
  await Promise.all([runner(), runner(), runner(), runner()]);
  return expected;
}

async function verify(c: Client, dir: string, expected: Map<string, Uint8Array>): Promise<void> {
  expect(await names(c, dir)).toEqual([...expected.keys()].sort());
  for (const [name, data] of expected) {
    const got = await readFile(c, [dir, name]);
    expect(got.byteLength, name).toBe(data.byteLength);
    expect(Buffer.compare(got, data), name).toBe(0);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the workload through `via` and, `times` times while it runs (each
 * once the bridge has resumed from the one before), `interrupt`s it. Then
 * every request must have had exactly one reply and the files must be the
 * ones written. Returns the bridge's "resumed" lines.
 */
async function interrupted(via: Bridge, dir: string, times: number, interrupt: () => Promise<void>, rounds = 96): Promise<string[]> {
  const g = await guest(via);
  const before = lines.length;
  const resumes = () => lines.slice(before).filter((l) => l.includes("resumed session"));
  let finished = false;
  const work = workload(g.c, dir, rounds).finally(() => (finished = true));
  for (let i = 0; i < times; i++) {
    await sleep(100);
    if (finished) await work; // a failure shows here with its own message
    expect(finished, "the workload was over before the interruption").toBe(false);
    await interrupt();
    const end = Date.now() + 60_000;
    while (resumes().length <= i && Date.now() < end) await sleep(20);
  }
  const expected = await work;
  console.log(resumes().join("\n"));
  expect(resumes().length).toBeGreaterThanOrEqual(times);
  await verify(g.c, dir, expected);
  expect(g.duplicates()).toBe(0);
  expect(g.replies()).toBe(g.sent());
  g.close();
  return resumes();
}

describe("resumable sessions through edge9p bridge", () => {
  it("the gateway closes the socket mid-stream, three times: every request answered once, no create twice", async () => {
    const resumed = await interrupted(bridge, "drained", 3, async () => {
      expect(await drain()).toBeGreaterThanOrEqual(1);
    });
    // Each resume replayed requests that were in flight.
    for (const l of resumed) expect(Number(/replayed (\d+) requests/.exec(l)?.[1])).toBeGreaterThan(0);
  }, 120_000);

  it("the network drops three times mid-stream: requests that finished meanwhile get their kept replies, none runs twice", async () => {
    await interrupted(relayed, "dropped", 3, async () => {
      expect(relay.cut()).toBeGreaterThanOrEqual(2);
    });
  }, 120_000);

  it("the gateway process is killed and started again twice (as a deploy does): the guest only stalls", async () => {
    // Each restart takes seconds: enough work to still be running at the second.
    await interrupted(
      bridge,
      "restarted",
      2,
      async () => {
        await gw.kill();
        await gw.restart();
      },
      192,
    );
    const check = await fetch(`${gw.url}/v1/shares/dev/check`, { headers: OPERATOR_AUTH });
    expect(check.status, await check.clone().text()).toBe(200);
  }, 240_000);

  it("refuses a resume with a wrong secret, or of a session that does not exist, with close code 4003", async () => {
    const open = (resume: string) =>
      new Promise<{ headers: Record<string, string | string[] | undefined>; ws: WebSocket }>((resolve, reject) => {
        const ws = new WebSocket(gw.wsUrl("dev"), ["9p"], { headers: { "X-Edge9p-Resume": resume } });
        ws.once("upgrade", (res) => resolve({ headers: res.headers, ws }));
        ws.once("error", reject);
      });
    const closed = (ws: WebSocket) => new Promise<[number, string]>((r) => ws.once("close", (code, why) => r([code, why.toString()])));
    const first = await open("new");
    const sid = first.headers["x-edge9p-session"] as string;
    const secret = first.headers["x-edge9p-secret"] as string;
    expect(sid).toMatch(/^[0-9a-f-]{36}$/);
    expect(secret).toMatch(/^[0-9a-f]{48}$/);

    const wrong = await open(`${sid}.${"0".repeat(48)}`);
    expect(await closed(wrong.ws)).toEqual([4003, `session ${sid}: wrong resume secret`]);
    const unknown = await open(`00000000-0000-4000-8000-000000000000.${secret}`);
    const [code, why] = await closed(unknown.ws);
    expect(code).toBe(4003);
    expect(why).toMatch(/cannot be resumed: it ended/);

    // The refused attempts did not disturb the session: its own secret resumes it.
    const firstClosed = closed(first.ws);
    const again = await open(`${sid}.${secret}`);
    expect(again.headers["x-edge9p-session"]).toBe(sid);
    expect((await firstClosed)[0]).toBe(4004);
    again.ws.close();
  }, 60_000);

  it("past the resume window the bridge gives up loudly and closes the guest's connection; the session is ended", async () => {
    const short = await startLocalGateway({ config: { resume_window_ms: 1500 } });
    const said: string[] = [];
    const b = await startBridge({
      listen: { host: "127.0.0.1", port: 0 },
      url: short.wsUrl("dev"),
      log: (l) => said.push(l),
      error: (l) => said.push(`ERROR ${l}`),
    });
    try {
      const g = await guest(b);
      const sid = /session ([0-9a-f-]{36}), resumable/.exec(said.join("\n"))?.[1];
      expect(sid).toBeTruthy();
      await short.kill();
      // Down for longer than the window: the bridge stops trying.
      const end = Date.now() + 30_000;
      while (!said.some((l) => l.includes("lost:")) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      expect(said.find((l) => l.includes("lost:"))).toMatch(/^ERROR \[1\] lost: session .* could not be resumed within the gateway's 1.5 s window/);
      // The guest's connection is closed: its next request fails, it does not hang.
      await expect(g.c.request({ type: "Tgetattr", fid: 0, request_mask: 0x7ffn })).rejects.toThrow(/closed/);
      // Started again (the window counts from the object's start: it cannot
      // know when the process died), the gateway ends the session once the
      // window is past, by its alarm.
      await short.restart();
      expect((await fetch(`${short.url}/v1/shares/dev/stats`, { headers: OPERATOR_AUTH })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 3000));
      const ws = new WebSocket(short.wsUrl("dev"), ["9p"], { headers: { "X-Edge9p-Resume": `${sid}.${"0".repeat(48)}` } });
      const [code, why] = await new Promise<[number, string]>((r) => ws.once("close", (c, w) => r([c, w.toString()])));
      expect(code).toBe(4003);
      expect(why).toMatch(/cannot be resumed: it ended/);
    } finally {
      await b.close();
      await short.stop();
    }
  }, 120_000);
});
