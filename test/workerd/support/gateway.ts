// Talking to the gateway from a workerd test: real WebSockets through the
// worker's routes into the share's Durable Object, and the protocol client.

import { env, exports } from "cloudflare:workers";
import { type Client, NOFID, NONUNAME, RESUME_HEADER, SECRET_HEADER, SESSION_HEADER, clientOverWebSocket, decodeDirents } from "../../../protocol/index.ts";

export const BUCKET = (env as unknown as { BUCKET: R2Bucket }).BUCKET;

/** Puts an object under a share's prefix. */
export async function put(share: string, path: string, body: string | Uint8Array, meta?: Record<string, string>) {
  const prefix = share === "other" ? "other/deeper" : share;
  return BUCKET.put(`${prefix}/${path}`, body, meta ? { customMetadata: meta } : undefined);
}

export async function upgrade(share: string, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(`http://gateway/v1/shares/${share}/9p`, {
    headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": "9p", ...headers },
  });
}

export interface Conn {
  client: Client;
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens a session (no Tversion yet). */
export async function open(share = "main"): Promise<Conn> {
  const res = await upgrade(share);
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
  const ws = res.webSocket;
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.addEventListener("close", (ev) => resolve({ code: ev.code, reason: ev.reason })),
  );
  const client = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
  ws.accept();
  return { client, ws, closed };
}

/** A session mounted the way Linux mounts: Tversion, Tattach as fid 0. */
export async function mount(share = "main", msize = 1 << 20): Promise<Conn> {
  const c = await open(share);
  await c.client.version(msize);
  await c.client.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "nobody", aname: "", n_uname: NONUNAME });
  return c;
}

/** A resumable session (as `edge9p bridge` opens them), attached as fid 0. */
export async function resumable(share = "main") {
  const res = await upgrade(share, { [RESUME_HEADER]: "new" });
  const ws = res.webSocket!;
  const client = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
  ws.accept();
  await client.version(1 << 20);
  await client.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "nobody", aname: "", n_uname: NONUNAME });
  return { client, ws, token: `${res.headers.get(SESSION_HEADER)}.${res.headers.get(SECRET_HEADER)}` };
}

/**
 * Resumes it on a new socket; its fids are as it left them. `hello` false
 * leaves the hello (no replays, numbering from 1,000,000) to the caller.
 */
export async function resume(token: string, share = "main", hello = true): Promise<Conn> {
  const res = await upgrade(share, { [RESUME_HEADER]: token });
  if (res.status !== 101 || !res.webSocket) throw new Error(`resume failed: ${res.status} ${await res.text()}`);
  const ws = res.webSocket;
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.addEventListener("close", (ev) => resolve({ code: ev.code, reason: ev.reason })),
  );
  const client = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
  ws.accept();
  if (hello) ws.send(HELLO);
  return { client, ws, closed };
}

export const HELLO = JSON.stringify({ replay: 0, seqs: [], next: 1_000_000 });

const enc = new TextEncoder();

/** Walks from fid 0 to a path into a new fid. */
export async function walk(c: Client, path: string, newfid = c.allocFid()) {
  const wnames = path.split("/").filter(Boolean).map((p) => enc.encode(p));
  const r = await c.request({ type: "Twalk", fid: 0, newfid, wnames });
  return { fid: newfid, qids: r.qids };
}

/** The whole content of a file, read in msize-sized Treads. */
export async function readFile(c: Client, path: string): Promise<Uint8Array> {
  const { fid } = await walk(c, path);
  await c.request({ type: "Tlopen", fid, flags: 0 });
  const parts: Uint8Array[] = [];
  let offset = 0n;
  for (;;) {
    const r = await c.request({ type: "Tread", fid, offset, count: c.msize - 24 });
    if (r.data.byteLength === 0) break;
    parts.push(r.data.slice());
    offset += BigInt(r.data.byteLength);
  }
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

export interface Dirent {
  name: string;
  type: number;
  offset: bigint;
  path: bigint;
}

/** Parses Rreaddir data into entries. */
export function parseDirents(data: Uint8Array): Dirent[] {
  return decodeDirents(data).map((e) => ({ name: new TextDecoder().decode(e.name), type: e.type, offset: e.offset, path: e.qid.path }));
}

/** Every entry of a directory, in Treaddir calls of `count` bytes. */
export async function listDir(c: Client, path: string, count = 8192): Promise<{ entries: Dirent[]; calls: number }> {
  const { fid } = await walk(c, path);
  await c.request({ type: "Tlopen", fid, flags: 0 });
  const entries: Dirent[] = [];
  let offset = 0n;
  let calls = 0;
  for (;;) {
    const r = await c.request({ type: "Treaddir", fid, offset, count });
    calls++;
    const batch = parseDirents(r.data);
    if (batch.length === 0) break;
    entries.push(...batch);
    offset = batch[batch.length - 1]!.offset;
  }
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
  return { entries, calls };
}

/** The share's Durable Object, for its stats. */
export function shareObject(share = "main") {
  const prefix = share === "other" ? "other/deeper" : share;
  return (env as unknown as { SHARE: DurableObjectNamespace<import("../../../worker/share-object.ts").ShareObject> }).SHARE.getByName(
    `edge9p-test/${prefix}`,
  );
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Deterministic pseudo-random bytes. */
export function noise(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A session driven by raw messages, to see replies exactly as they come. */
export async function rawSession(share = "main", headers: Record<string, string> = {}) {
  const res = await upgrade(share, headers);
  const ws = res.webSocket!;
  const queue: (Uint8Array | string)[] = [];
  const waiters: ((m: Uint8Array | string) => void)[] = [];
  let closeInfo: { code: number; reason: string } | null = null;
  const closeWaiters: ((c: { code: number; reason: string }) => void)[] = [];
  ws.binaryType = "arraybuffer";
  ws.addEventListener("message", (ev) => {
    const m = typeof ev.data === "string" ? ev.data : new Uint8Array(ev.data as ArrayBuffer);
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  ws.addEventListener("close", (ev) => {
    closeInfo = { code: ev.code, reason: ev.reason };
    for (const w of closeWaiters.splice(0)) w(closeInfo);
  });
  ws.accept();
  return {
    ws,
    res,
    send: (b: Uint8Array | string) => ws.send(b),
    next: (ms = 5000) =>
      new Promise<Uint8Array>((resolve, reject) => {
        const m = queue.shift();
        if (m !== undefined) return resolve(m as Uint8Array);
        const t = setTimeout(() => reject(new Error("no message within timeout")), ms);
        waiters.push((x) => {
          clearTimeout(t);
          resolve(x as Uint8Array);
        });
      }),
    closed: () =>
      new Promise<{ code: number; reason: string }>((resolve) => (closeInfo ? resolve(closeInfo) : closeWaiters.push(resolve))),
    pending: () => queue.length,
    /** The messages received and not yet taken. */
    take: () => queue.splice(0),
  };
}

/**
 * "equal" or where two byte arrays first differ. vitest's toEqual walks
 * typed arrays element by element and takes seconds on megabytes.
 */
export function diff(a: Uint8Array, b: Uint8Array): string {
  if (a.byteLength !== b.byteLength) return `lengths differ: ${a.byteLength} and ${b.byteLength}`;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return `first difference at byte ${i}`;
  return "equal";
}

/** A Twstat stat that changes nothing: every field "don't touch" (~0 or empty; stat(5)). */
export function unchangedStat() {
  return {
    type: 0xffff,
    dev: 0xffffffff,
    qid: { type: 0xff, version: 0xffffffff, path: 0xffffffffffffffffn },
    mode: 0xffffffff,
    atime: 0xffffffff,
    mtime: 0xffffffff,
    length: 0xffffffffffffffffn,
    name: "",
    uid: "",
    gid: "",
    muid: "",
    extension: "",
    n_uid: 0xffffffff,
    n_gid: 0xffffffff,
    n_muid: 0xffffffff,
  };
}
