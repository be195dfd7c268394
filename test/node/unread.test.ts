// Clients that stop reading, against a real gateway (wrangler dev): each
// pipelines 1 GiB of Treads (256 of 4 MiB) with its socket paused, one over
// plain 9P and one over 9p.ack. Before the per-socket window, 250 such
// Treads grew workerd by about 745 MB while the object's own accounting said
// 0 bytes in flight. Now each socket holds at most its window (8 MiB) plus
// 1 MiB of small replies, the stall time (3 s here) closes both, and a
// bystander session answers within a second throughout.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ACK_SUBPROTOCOL, Client, NOFID, clientOverWebSocket } from "../../protocol/index.ts";
import { startBridge } from "../../bridge/bridge.ts";
import { type LocalGateway, operatorGet, startLocalGateway } from "../support/local-gateway.ts";
import { nonReader } from "../support/non-reader.ts";
import { tcpClient } from "../support/tcp-client.ts";
import { resetPeak, residentOf, workerdBelow } from "../support/process-memory.ts";

const MiB = 1 << 20;
const FILE = 64 * MiB;
const READ = 4 * MiB - 4096;
const READS = 256;
/** What the test allows workerd to grow by: two windows and their slack, with room for workerd's own buffers and the local R2 reads. */
const BOUND = 128 * MiB;

let gw: LocalGateway;
const data = new Uint8Array(FILE);
for (let i = 0; i < FILE; i += 4096) data[i] = (i >>> 12) & 0xff;

beforeAll(async () => {
  // A budget of two windows: the two clients that never read fill it.
  gw = await startLocalGateway({ config: { session_stall_ms: 3000, inflight_bytes: 16_000_000, multipart_threshold: 8 * MiB, max_file_bytes: 100 * 2 ** 30 } });
  const bucket = await gw.bucket();
  await bucket.put("unread/big.bin", data);
  await bucket.put("unread/small.txt", "a bystander's file");
}, 120_000);

afterAll(async () => {
  await gw?.stop();
});

interface Stats {
  notReading: number;
  inflightBytes: number;
  inflightHighWater: number;
  strandedBytes: number;
}
const statsOf = async () => (await (await operatorGet(`${gw.url}/v1/shares/dev/stats`)).json()) as Stats;

/** The status of a new 9P upgrade (closed at once if it opens). */
function upgradeStatus(): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(gw.wsUrl(), [ACK_SUBPROTOCOL, "9p"], { perMessageDeflate: false });
    ws.once("open", () => {
      ws.close(1000);
      resolve({ status: 101, body: "" });
    });
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (b: Buffer) => (body += b.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once("error", reject);
  });
}

const nonReaderOf = (protocols: string[]) =>
  nonReader(gw.wsUrl(), { protocols, path: ["unread", "big.bin"], fileBytes: FILE, msize: 4 * MiB, count: READ, reads: READS });

async function bystander(): Promise<Client> {
  const ws = new WebSocket(gw.wsUrl(), [ACK_SUBPROTOCOL, "9p"], { perMessageDeflate: false });
  await new Promise((r) => ws.once("open", r));
  const c = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
  await c.version(MiB);
  await c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
  return c;
}

describe("clients that never read", () => {
  it("hold at most their windows of workerd's memory while a bystander carries on, and are closed after the stall", { timeout: 120_000 }, async () => {
    const pids = workerdBelow(gw.pid()!);
    expect(pids.length).toBeGreaterThan(0);
    const c = await bystander();
    resetPeak(pids);
    const base = residentOf(pids).now;
    const plain = await nonReaderOf(["9p"]);
    const acked = await nonReaderOf([ACK_SUBPROTOCOL, "9p"]);
    let slowest = 0;
    let asked = 0;
    const until = Date.now() + 8000;
    while (Date.now() < until) {
      const t = Date.now();
      const f = c.allocFid();
      await c.request({ type: "Twalk", fid: 0, newfid: f, wnames: ["unread", "small.txt"] });
      const a = await c.request({ type: "Tgetattr", fid: f, request_mask: 0x3fffn });
      await c.request({ type: "Tclunk", fid: f });
      c.releaseFid(f);
      expect(a.size).toBe(18n);
      slowest = Math.max(slowest, Date.now() - t);
      asked++;
      await new Promise((r) => setTimeout(r, 50));
    }
    const peak = residentOf(pids).peak;
    const stats = await statsOf();
    console.log(
      `2 clients asked for ${(2 * READS * READ) / 2 ** 30} GiB and read nothing: workerd ${(base / MiB).toFixed(0)} MB -> peak ${(peak / MiB).toFixed(0)} MB ` +
        `(+${((peak - base) / MiB).toFixed(1)} MB, bound ${BOUND / MiB} MB); object's high-water ${(stats.inflightHighWater / MiB).toFixed(1)} MiB; ` +
        `bystander: ${asked} walk+getattr+clunk, slowest ${slowest} ms; closed for not reading: ${stats.notReading}, ${stats.strandedBytes} bytes left unread on them`,
    );
    expect(peak - base).toBeLessThan(BOUND);
    expect(slowest).toBeLessThan(1000);
    expect(stats.notReading).toBe(2);
    // Closed, they gave the share's budget back: the bystander reads 4 MiB at once.
    expect(stats.inflightBytes).toBeLessThan(MiB);
    const big = c.allocFid();
    await c.request({ type: "Twalk", fid: 0, newfid: big, wnames: ["unread", "big.bin"] });
    await c.request({ type: "Tlopen", fid: big, flags: 0 });
    expect((await c.request({ type: "Tread", fid: big, offset: 0n, count: MiB - 4096 })).data.byteLength).toBe(MiB - 4096);
    // What they left unread still sits in workerd while they hold their
    // connections (their two windows): past the budget's worth of stranded
    // replies, new sessions wait.
    expect(stats.strandedBytes).toBeGreaterThanOrEqual(16_000_000);
    const refused = await upgradeStatus();
    expect(refused.status).toBe(503);
    expect(refused.body).toMatch(/closed for not reading/);
    plain.terminate();
    acked.terminate();
    for (let i = 0; i < 50 && (await statsOf()).strandedBytes > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await statsOf()).strandedBytes).toBe(0);
    expect((await upgradeStatus()).status).toBe(101);
  });

  it("through the bridge, a guest that stops reading past the stall time only stalls: the session resumes and every read answers", { timeout: 120_000 }, async () => {
    const lines: string[] = [];
    const bridge = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl(), log: (l) => lines.push(l) });
    try {
      const { client: c, socket } = await tcpClient(bridge.port!);
      await c.version(MiB);
      await c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
      await c.request({ type: "Twalk", fid: 0, newfid: 1, wnames: ["unread", "big.bin"] });
      await c.request({ type: "Tlopen", fid: 1, flags: 0 });
      // A paused VM: its side of the TCP connection reads nothing for 8 s.
      socket.pause();
      const step = MiB - 4096;
      const reads = Array.from({ length: 48 }, (_, i) => c.request({ type: "Tread", fid: 1, offset: BigInt(i * step), count: step }));
      await new Promise((r) => setTimeout(r, 8000));
      const before = (await (await operatorGet(`${gw.url}/v1/shares/dev/stats`)).json()) as { notReading: number };
      socket.resume();
      const got = await Promise.all(reads);
      got.forEach((r, i) => {
        expect(r.data.byteLength).toBe(step);
        expect(Buffer.compare(Buffer.from(r.data), Buffer.from(data.subarray(i * step, (i + 1) * step)))).toBe(0);
      });
      console.log(`bridge: ${lines.filter((l) => /reconnecting|resumed/.test(l)).join(" | ")}`);
      expect(before.notReading).toBeGreaterThanOrEqual(3);
      expect(lines.some((l) => /reconnecting .*4006/.test(l))).toBe(true);
      expect(lines.some((l) => /resumed session/.test(l))).toBe(true);
      socket.destroy();
    } finally {
      await bridge.close();
    }
  });
});
