// Benchmark clients: the 9P protocol client over a Node WebSocket, and the
// raw worker's client, both keeping N requests in flight over sequential
// offsets of one file.

import net from "node:net";
import WebSocket from "ws";
import { ACK_SUBPROTOCOL, type Client, Framer, NOFID, PLATFORM_MSIZE_CEILING, SUBPROTOCOL, clientOverWebSocket } from "../protocol/index.ts";

const WS_OPTS = { perMessageDeflate: false, maxPayload: 64 << 20 };

async function openWs(url: string, protocols: string[] = []): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, WS_OPTS);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return ws;
}

export interface Mounted {
  client: Client;
  close(): void;
}

/**
 * A 9P session over a WebSocket, version negotiated and attached as fid 0.
 * It acknowledges the gateway's marks, as the bridge and the CLI do: a plain
 * 9P client proves it read a reply only by using its tag again, so one that
 * waits on more large reads than the session's window holds (three 32 MiB
 * reads at the end of a file, with a 64 MiB window) waits for good, and the
 * gateway cuts it after the stall time (worker/outbox.ts).
 */
export async function mount9p(url: string, msize: number): Promise<Mounted> {
  const ws = await openWs(url, [ACK_SUBPROTOCOL, SUBPROTOCOL]);
  const client = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
  await client.version(msize);
  await client.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
  return { client, close: () => ws.close() };
}

/**
 * Reads the files `dir`/f0 ... f(count-1) of 4 KiB once each, one at a time
 * as cat does (walk, open, read, clunk) on a session of its own; `check`
 * (the file's number and bytes) may refuse what was read. Files per second.
 */
export async function readSmall9p(
  url: string,
  dir: string[],
  count: number,
  check: (i: number, data: Uint8Array) => boolean = (_, d) => d.byteLength === 4096,
): Promise<number> {
  const m = await mount9p(url, 1 << 20);
  const c = m.client;
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const fid = c.allocFid();
    await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [...dir, `f${i}`] });
    await c.request({ type: "Tlopen", fid, flags: 0 });
    const r = await c.request({ type: "Tread", fid, offset: 0n, count: 8192 });
    if (!check(i, r.data)) throw new Error(`${dir.join("/")}/f${i}: ${r.data.byteLength} bytes, not as written`);
    await c.request({ type: "Tclunk", fid });
    c.releaseFid(fid);
  }
  const secs = (performance.now() - start) / 1000;
  m.close();
  return count / secs;
}

/** Reads a whole file with `inFlight` Treads outstanding; returns seconds. */
export async function read9p(m: Mounted, path: string[], size: number, inFlight: number): Promise<number> {
  const c = m.client;
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: path });
  const open = await c.request({ type: "Tlopen", fid, flags: 0 });
  // As Linux does: iounit when the server gives one, else msize - 24.
  const count = open.iounit || c.msize - 24;
  let next = 0;
  let got = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < size) {
      const off = next;
      next += count;
      const r = await c.request({ type: "Tread", fid, offset: BigInt(off), count });
      got += r.data.byteLength;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const secs = (performance.now() - start) / 1000;
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
  if (got !== size) throw new Error(`read ${got} of ${size} bytes`);
  return secs;
}

export interface RawConn {
  /** Sends one request, resolves with the reply's length. */
  ask(offset: number, length: number, echo?: boolean): Promise<number>;
  /** Sends data to be put into R2 as one object (or dropped, `sink`); resolves on the ack. */
  put(offset: number, data: Uint8Array, sink?: boolean): Promise<void>;
  /** Sends data to be written as a row of the object's SQLite; resolves on the ack (after the write, as the output gate holds it). */
  store(data: Uint8Array): Promise<void>;
  close(): void;
}

export async function rawConnect(url: string): Promise<RawConn> {
  const ws = await openWs(url);
  ws.binaryType = "arraybuffer";
  const waiting = new Map<number, (n: number) => void>();
  let nextId = 1;
  ws.on("message", (data: ArrayBuffer) => {
    const id = new DataView(data).getUint32(0, true);
    waiting.get(id)?.(data.byteLength - 4);
    waiting.delete(id);
  });
  const send = (offset: number, lengthField: number, data: Uint8Array) => {
    const id = nextId++;
    const msg = new Uint8Array(16 + data.byteLength);
    const v = new DataView(msg.buffer);
    v.setUint32(0, id, true);
    v.setBigUint64(4, BigInt(offset), true);
    v.setUint32(12, lengthField, true);
    msg.set(data, 16);
    return new Promise<void>((resolve) => {
      waiting.set(id, () => resolve());
      ws.send(msg);
    });
  };
  return {
    ask(offset, length, echo = false) {
      const id = nextId++;
      const req = new DataView(new ArrayBuffer(16));
      req.setUint32(0, id, true);
      req.setBigUint64(4, BigInt(offset), true);
      req.setUint32(12, (echo ? 0x80000000 : 0) | length, true);
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        ws.send(new Uint8Array(req.buffer));
      });
    },
    put(offset, data, sink = false) {
      return send(offset, (sink ? 0xc0000000 : 0x40000000) | data.byteLength, data);
    },
    store(data) {
      return send(0, 0x60000000 | data.byteLength, data);
    },
    close: () => ws.close(),
  };
}

/** The raw limit for writes: WebSocket + R2 put of each piece (or the WebSocket alone, `sink`). Returns seconds. */
export async function writeRaw(conn: RawConn, data: Uint8Array, count: number, inFlight: number, sink = false): Promise<number> {
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < data.byteLength) {
      const off = next;
      next += count;
      await conn.put(off, data.subarray(off, Math.min(data.byteLength, off + count)), sink);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return (performance.now() - start) / 1000;
}

/**
 * Writes a new file through 9P with `inFlight` Twrites outstanding, then
 * closes it; returns seconds (to the last Rwrite and the Rclunk).
 */
export async function write9p(m: Mounted, name: string, data: Uint8Array, inFlight: number): Promise<number> {
  const c = m.client;
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [] });
  const r = await c.request({ type: "Tlcreate", fid, name, flags: 1, mode: 0o100644, gid: 0 });
  const count = r.iounit || c.msize - 24;
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < data.byteLength) {
      const off = next;
      next += count;
      await c.request({ type: "Twrite", fid, offset: BigInt(off), data: data.subarray(off, Math.min(data.byteLength, off + count)) });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  await c.request({ type: "Tclunk", fid });
  const secs = (performance.now() - start) / 1000;
  c.releaseFid(fid);
  return secs;
}

/** Removes a file in the root of the mount. */
export async function unlink9p(m: Mounted, name: string): Promise<void> {
  const c = m.client;
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [] });
  await c.request({ type: "Tunlinkat", dirfid: fid, name, flags: 0 });
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
}

/** The raw limit: the same reads, no 9P. Returns seconds. */
export async function readRaw(conn: RawConn, size: number, count: number, inFlight: number, echo = false): Promise<number> {
  let next = 0;
  let got = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < size) {
      const off = next;
      const len = Math.min(count, size - off);
      next += count;
      const n = await conn.ask(off, len, echo);
      if (n !== len) throw new Error(`raw reply of ${n} bytes to a request of ${len} at ${off}`);
      got += n;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  if (got !== size) throw new Error(`raw read ${got} of ${size} bytes`);
  return (performance.now() - start) / 1000;
}

/**
 * Reads a file the way Linux serves an application's read(2) of `appRead`
 * bytes with cache=none: each read becomes Treads of at most `rsize` bytes
 * (iounit, or msize - 24 when iounit is 0), one after another. Returns seconds
 * and the number of Treads.
 */
export async function readAsLinux(
  m: Mounted,
  path: string[],
  size: number,
  appRead: number,
  rsize: number,
): Promise<{ secs: number; requests: number }> {
  const c = m.client;
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: path });
  await c.request({ type: "Tlopen", fid, flags: 0 });
  let requests = 0;
  const start = performance.now();
  for (let app = 0; app < size; app += appRead) {
    const end = Math.min(size, app + appRead);
    for (let off = app; off < end; ) {
      const r = await c.request({ type: "Tread", fid, offset: BigInt(off), count: Math.min(rsize, end - off) });
      requests++;
      off += r.data.byteLength;
    }
  }
  const secs = (performance.now() - start) / 1000;
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
  return { secs, requests };
}

/**
 * Reads `size` bytes from a raw worker socket opened at /9p-shaped through
 * `edge9p bridge` at host:port, as diodcat reads (seen on the wire): one
 * Tread of `count` (the iounit) at a time, in order, until an empty reply.
 * Returns seconds.
 */
export async function readFramedRaw(host: string, port: number, size: number, count: number): Promise<number> {
  const sock = net.connect(port, host);
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  let waiting: ((n: number) => void) | null = null;
  let failed: ((e: Error) => void) | null = null;
  sock.on("close", () => failed?.(new Error("9p-shaped raw read: the bridge closed the connection")));
  // The project's framer, as the bridge uses: whole messages, no copying of chunks.
  const framer = new Framer(PLATFORM_MSIZE_CEILING);
  sock.on("data", (b: Buffer) => framer.push(b, (m) => waiting?.(m[7]! | (m[8]! << 8) | (m[9]! << 16) | (m[10]! * 2 ** 24))));
  const ask = (offset: number) => {
    const t = Buffer.alloc(23);
    t.writeUInt32LE(23, 0);
    t.writeUInt8(116, 4); // Tread
    t.writeUInt16LE(1, 5);
    t.writeUInt32LE(1, 7);
    t.writeBigUInt64LE(BigInt(offset), 11);
    t.writeUInt32LE(count, 19);
    return new Promise<number>((resolve, reject) => {
      waiting = resolve;
      failed = reject;
      sock.write(t);
    });
  };
  const start = performance.now();
  let off = 0;
  for (;;) {
    const n = await ask(off);
    if (n === 0) break;
    off += n;
  }
  const secs = (performance.now() - start) / 1000;
  failed = null;
  sock.destroy();
  if (off !== size) throw new Error(`9p-shaped raw read ${off} of ${size} bytes`);
  return secs;
}
