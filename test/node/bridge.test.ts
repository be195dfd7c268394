// edge9p bridge between a TCP client and a real local gateway (wrangler dev).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bridge, startBridge } from "../../bridge/bridge.ts";
import { type Client, ERRNO, Framer, NOFID, decode, encode } from "../../protocol/index.ts";
import { type LocalGateway, startLocalGateway } from "../support/local-gateway.ts";
import { runEdge9p } from "../support/run-cli.ts";
import { tcpClient } from "../support/tcp-client.ts";
import { refusedRtt } from "../../bridge/rtt.ts";

let gw: LocalGateway;
let bridge: Bridge;
const lines: string[] = [];
const DATA = new Uint8Array(6 << 20).map((_, i) => (i * 2654435761) >>> 24);

beforeAll(async () => {
  gw = await startLocalGateway();
  const b = await gw.bucket();
  await b.put("br/data.bin", DATA);
  await b.put("br/small.txt", "small\n");
  bridge = await startBridge({
    listen: { host: "127.0.0.1", port: 0 },
    url: gw.wsUrl("dev"),
    log: (l) => lines.push(l),
  });
}, 120_000);

afterAll(async () => {
  await bridge?.close();
  await gw?.stop();
});

async function mounted(msize: number): Promise<Client> {
  const { client } = await tcpClient(bridge.port!);
  await client.version(msize);
  await client.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
  return client;
}

async function readAll(c: Client, path: string[], inFlight = 1): Promise<Uint8Array> {
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: path });
  await c.request({ type: "Tlopen", fid, flags: 0 });
  const a = await c.request({ type: "Tgetattr", fid, request_mask: 0x3fffn });
  const size = Number(a.size);
  const out = new Uint8Array(size);
  const step = c.msize - 24;
  let next = 0;
  const worker = async () => {
    while (next < size) {
      const off = next;
      next += step;
      const r = await c.request({ type: "Tread", fid, offset: BigInt(off), count: step });
      out.set(r.data, off);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  await c.request({ type: "Tclunk", fid });
  return out;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

describe("edge9p bridge", () => {
  it("reports the negotiated msize and why it is lower than asked", async () => {
    const c = await mounted(64 << 20);
    expect(c.msize).toBe(4 << 20);
    await new Promise((r) => setTimeout(r, 50));
    expect(lines.join("\n")).toMatch(
      /9P2000\.L, msize 4194304, lower than the 67108864 asked: the gateway allows at most 4194304 \(operator cap EDGE9P\.msize_cap\)/,
    );
  });

  it("carries reads of every size, one or many in flight", async () => {
    for (const msize of [8192, 131096, 1 << 20, 4 << 20]) {
      const c = await mounted(msize);
      expect(same(await readAll(c, ["br", "data.bin"], 1), DATA)).toBe(true);
      expect(same(await readAll(c, ["br", "data.bin"], 8), DATA)).toBe(true);
    }
  });

  it("gives each TCP connection its own session", async () => {
    const a = await mounted(65536);
    const b = await mounted(65536);
    await a.request({ type: "Twalk", fid: 0, newfid: 5, wnames: ["br"] });
    // fid 5 exists only in a's session.
    await expect(b.request({ type: "Tclunk", fid: 5 })).rejects.toMatchObject({ errno: ERRNO.EBADF });
    await a.request({ type: "Tclunk", fid: 5 });
  });

  it("closes the TCP connection when the client breaks framing, and says why", async () => {
    const { socket } = await tcpClient(bridge.port!);
    const closed = new Promise((r) => socket.once("close", r));
    socket.write(Buffer.from([3, 0, 0, 0, 100, 0, 0])); // size 3 < header
    await closed;
    expect(lines.join("\n")).toMatch(/client sent a broken stream: size field 3 is smaller than the 7-byte header/);
  });

  it("says why the gateway refused the WebSocket", async () => {
    const errors: string[] = [];
    const bad = await startBridge({
      listen: { host: "127.0.0.1", port: 0 },
      url: gw.wsUrl("nope"),
      log: () => {},
      error: (l) => errors.push(l),
    });
    const { socket } = await tcpClient(bad.port!);
    await new Promise((r) => socket.once("close", r));
    await bad.close();
    expect(errors.join("\n")).toMatch(/gateway refused the WebSocket: HTTP 404 \{"error":"no share named \\"nope\\""\}/);
  });

  it("passes a Tflush that races its request in order: no reply after Rflush", async () => {
    const { socket } = await tcpClient(bridge.port!);
    // Raw, to see every reply in the order it comes.
    const replies: string[] = [];
    const framer = new Framer(1 << 21);
    socket.removeAllListeners("data");
    const L = "9P2000.L";
    const got = new Promise<void>((resolve) => {
      socket.on("data", (chunk: Buffer) =>
        framer.push(chunk, (m) => {
          const msg = decode(m, L);
          replies.push(`${msg.type}:${msg.tag}`);
          if (replies.filter((x) => x.startsWith("Rflush")).length === 64) resolve();
        }),
      );
    });
    const send = (m: Parameters<typeof encode>[0]) => socket.write(encode(m, L));
    send({ type: "Tversion", tag: 0xffff, msize: 1 << 20, version: L });
    send({ type: "Tattach", tag: 1, fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
    send({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: ["br", "data.bin"] });
    send({ type: "Tlopen", tag: 3, fid: 1, flags: 0 });
    for (let i = 0; i < 64; i++) {
      send({ type: "Tread", tag: 100 + i, fid: 1, offset: BigInt((i % 6) << 20), count: 1 << 20 });
      send({ type: "Tflush", tag: 1000 + i, oldtag: 100 + i });
    }
    await got;
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 64; i++) {
      const read = replies.indexOf(`Rread:${100 + i}`);
      expect(read === -1 || read < replies.indexOf(`Rflush:${1000 + i}`)).toBe(true);
    }
    // Some reads were flushed while in flight (no reply at all).
    expect(replies.filter((r) => r.startsWith("Rread")).length).toBeLessThan(64);
    socket.destroy();
  });

  it("holds a request while the gateway is away and answers it once the gateway is back (the session resumes)", async () => {
    const c = await mounted(65536);
    await gw.kill();
    const waiting = c.request({ type: "Tgetattr", fid: 0, request_mask: 0x7ffn });
    await gw.restart();
    await expect(waiting).resolves.toMatchObject({ type: "Rgetattr" });
    expect(lines.some((l) => /resumed session .* replayed 1 requests/.test(l))).toBe(true);
    const again = await mounted(65536);
    expect(same(await readAll(again, ["br", "small.txt"]), new TextEncoder().encode("small\n"))).toBe(true);
  });

  it("with --simulate-rtt, holds each request and reply half the round trip: a Tgetattr waits a whole one, reads stay whole and in order", async () => {
    const slow = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), simulateRttMs: 150 });
    try {
      const { client: c, socket } = await tcpClient(slow.port!);
      await c.version(65536);
      await c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
      const t = performance.now();
      await c.request({ type: "Tgetattr", fid: 0, request_mask: 0x3fffn });
      // A lower bound only: the model adds the round trip, the machine adds the rest.
      expect(performance.now() - t).toBeGreaterThanOrEqual(149);
      // Many in flight: each reply still matches its request and the bytes are the file's.
      expect(same(await readAll(c, ["br", "data.bin"], 8), DATA)).toBe(true);
      socket.end();
    } finally {
      await slow.close();
    }
  });
});

describe("--simulate-rtt", () => {
  it("is refused for a gateway that is not on this machine, and for a delay that is not milliseconds", async () => {
    expect(refusedRtt("ws://127.0.0.1:8787/v1/shares/dev/9p", 20)).toBeNull();
    expect(refusedRtt("ws://localhost:8787/v1/shares/dev/9p", 20)).toBeNull();
    expect(refusedRtt("ws://[::1]:8787/v1/shares/dev/9p", 20)).toBeNull();
    expect(refusedRtt("wss://files.example.com/v1/shares/dev/9p", 0)).toBeNull();
    expect(refusedRtt("wss://files.example.com/v1/shares/dev/9p", 20)).toMatch(/files\.example\.com is not loopback/);
    expect(refusedRtt("ws://127.0.0.1:8787/v1/shares/dev/9p", Number.NaN)).toMatch(/milliseconds/);
    expect(refusedRtt("ws://127.0.0.1:8787/v1/shares/dev/9p", -5)).toMatch(/milliseconds/);
    await expect(startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: "wss://files.example.com/v1/shares/dev/9p", simulateRttMs: 20 })).rejects.toThrow(/not loopback/);
    const r = await runEdge9p(["bridge", "--simulate-rtt", "20", "wss://files.example.com/v1/shares/dev/9p"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--simulate-rtt is for a gateway on this machine/);
  });
});

