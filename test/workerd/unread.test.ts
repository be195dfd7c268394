// A client that stops reading cannot make the share's object hold more than
// its socket's window of replies (EDGE9P.session_window_bytes, 8 MiB here):
// large reads wait for room, and room comes back only when the client shows
// it read what was sent (an ack of a mark with "9p.ack", a tag used again
// with plain 9P). Other sessions of the share carry on meanwhile. Before the
// window, 250 pipelined 4 MiB Treads of a client that never read grew
// workerd by about 745 MB.

import { describe, expect, it } from "vitest";
import { ACK_SUBPROTOCOL, NOFID, NOTAG, decode, encode, parseMark } from "../../protocol/index.ts";
import { getattr } from "./support/fs.ts";
import { mount, noise, put, rawSession, shareObject, sleep } from "./support/gateway.ts";

const L = "9P2000.L";
const MiB = 1 << 20;
const WINDOW = 8 * MiB;
const READ = MiB;

type Raw = Awaited<ReturnType<typeof rawSession>>;

/** Opens big.bin for reading on fid 1 (tags 0 and 1, reused by every step). */
async function openBig(r: Raw) {
  r.send(encode({ type: "Tversion", tag: NOTAG, msize: 4 * MiB, version: L }, L));
  await r.next();
  r.send(encode({ type: "Tattach", tag: 0, fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 }, L));
  await r.next();
  r.send(encode({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["big.bin"] }, L));
  await r.next();
  r.send(encode({ type: "Tlopen", tag: 1, fid: 1, flags: 0 }, L));
  await r.next();
}

/** Sends `n` Treads of READ bytes on tags 100, 101, ... (none used again). */
function pipelineReads(r: Raw, n: number) {
  for (let i = 0; i < n; i++) r.send(encode({ type: "Tread", tag: 100 + i, fid: 1, offset: BigInt(i * READ), count: READ }, L));
}

// One file's bytes for every test: made once, not 40 MiB of fresh garbage per test.
const BIG = noise(40 * MiB, 4);

const binary = (ms: (Uint8Array | string)[]) => ms.filter((m): m is Uint8Array => typeof m !== "string");

describe("a client that does not read", () => {
  it("gets at most its window of replies over plain 9P, and more once it uses a tag again", { timeout: 60_000 }, async () => {
    await put("main", "big.bin", BIG);
    const r = await rawSession("main");
    await openBig(r);
    pipelineReads(r, 40);
    await sleep(1500);
    const first = binary(r.take());
    const bytes = first.reduce((n, m) => n + m.byteLength, 0);
    console.log(`plain 9P: ${first.length} of 40 Rreads (${bytes} bytes) before the client showed it read any`);
    expect(first.length).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(WINDOW);
    // And no more come while it shows nothing.
    await sleep(1500);
    expect(binary(r.take())).toHaveLength(0);
    const stats = await shareObject().stats();
    expect(stats.unreadBytes).toBeLessThanOrEqual(WINDOW + MiB);
    // The budget also holds what readahead fetched for the reads still to come (at most its window).
    expect(stats.inflightBytes - stats.readahead.heldBytes).toBeLessThanOrEqual(WINDOW + MiB);
    expect(stats.readahead.heldBytes).toBeLessThanOrEqual(2 * stats.readahead.windowMax);
    // Using the tag of the last reply again shows everything before it was read.
    const last = decode(first.at(-1)!, L);
    r.send(encode({ type: "Tclunk", tag: last.tag, fid: 77 }, L));
    await sleep(1500);
    const more = binary(r.take()).filter((m) => decode(m, L).type === "Rread");
    expect(more.length).toBeGreaterThanOrEqual(first.length - 1);
    r.ws.close(1000);
  });

  it("gets at most its window with 9p.ack until it acknowledges a mark, then the rest", { timeout: 60_000 }, async () => {
    await put("main", "big.bin", BIG);
    const r = await rawSession("main", { "Sec-WebSocket-Protocol": `${ACK_SUBPROTOCOL}, 9p` });
    expect(r.res.headers.get("Sec-WebSocket-Protocol")).toBe(ACK_SUBPROTOCOL);
    await openBig(r);
    pipelineReads(r, 40);
    await sleep(1500);
    const got = r.take();
    const reads = binary(got);
    const marks = got.filter((m): m is string => typeof m === "string").map((m) => parseMark(m));
    console.log(`9p.ack: ${reads.length} of 40 Rreads and ${marks.length} marks before any ack`);
    expect(reads.reduce((n, m) => n + m.byteLength, 0)).toBeLessThanOrEqual(WINDOW);
    expect(marks.length).toBeGreaterThan(0);
    await sleep(1500);
    expect(binary(r.take())).toHaveLength(0);
    expect(marks.every((m) => m !== null)).toBe(true);
    // Tags used again prove nothing on a 9p.ack socket: only acks do.
    r.send(encode({ type: "Tclunk", tag: decode(reads.at(-1)!, L).tag, fid: 77 }, L));
    await sleep(500);
    expect(binary(r.take()).filter((m) => decode(m, L).type === "Rread")).toHaveLength(0);
    // A made-up ack is no proof either.
    r.send("ack 0123456789abcdef");
    await sleep(500);
    expect(binary(r.take()).filter((m) => decode(m, L).type === "Rread")).toHaveLength(0);
    // Acknowledging every mark as it comes lets the remaining reads through.
    let left = 40 - reads.length;
    r.send(`ack ${marks.at(-1)}`);
    while (left > 0) {
      const m = await r.next(5000);
      if (typeof m === "string") r.send(`ack ${parseMark(m)}`);
      else if (decode(m, L).type === "Rread") left--;
    }
    expect(left).toBe(0);
    r.ws.close(1000);
  });

  it("leaves other sessions of the share working while it holds its window", { timeout: 60_000 }, async () => {
    await put("main", "big.bin", BIG);
    await put("main", "small.txt", "a bystander's file");
    const r = await rawSession("main");
    await openBig(r);
    pipelineReads(r, 40);
    await sleep(500);
    const { client: c } = await mount("main", 4 * MiB);
    for (let i = 0; i < 5; i++) {
      const t = Date.now();
      const a = await getattr(c, "small.txt");
      expect(a.size).toBe(18n);
      expect(Date.now() - t).toBeLessThan(1000);
    }
    // A bystander's large read gets room of its own.
    const { fid } = await (async () => {
      const f = c.allocFid();
      await c.request({ type: "Twalk", fid: 0, newfid: f, wnames: ["big.bin"] });
      await c.request({ type: "Tlopen", fid: f, flags: 0 });
      return { fid: f };
    })();
    const rr = await c.request({ type: "Tread", fid, offset: 0n, count: 4 * MiB - 4096 });
    expect(rr.data.byteLength).toBe(4 * MiB - 4096);
    r.ws.close(1000);
  });

  it("still gets a reply larger than its window, alone, without being cut", { timeout: 60_000 }, async () => {
    await put("main", "big.bin", BIG);
    const { client: c, closed } = await mount("main", 16 * MiB);
    let code = 0;
    void closed.then((x) => (code = x.code));
    const f = c.allocFid();
    await c.request({ type: "Twalk", fid: 0, newfid: f, wnames: ["big.bin"] });
    await c.request({ type: "Tlopen", fid: f, flags: 0 });
    for (let i = 0; i < 2; i++) {
      const r = await c.request({ type: "Tread", fid: f, offset: BigInt(i * 12 * MiB), count: 12 * MiB });
      expect(r.data.byteLength).toBe(12 * MiB);
      await getattr(c, "big.bin");
    }
    await sleep(200);
    expect(code).toBe(0);
  });
});
