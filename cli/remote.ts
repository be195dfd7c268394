// A share as the file commands see it: 9P over a WebSocket straight to the
// gateway (no mount, no bridge), with path-level operations on top of the
// protocol client. Paths are relative to the share's root, '/'-separated.

import WebSocket from "ws";
import { type Client, ERRNO, NOFID, P9Error, clientOverWebSocket, decodeDirents } from "../protocol/index.ts";

/** A share URL split into its 9P WebSocket URL and the path within the share. */
export interface ShareTarget {
  wsUrl: string;
  path: string;
}

/**
 * Parses `http(s)://HOST/v1/shares/NAME[/PATH]` (ws:// and wss:// too).
 * Returns null when the URL does not name a share.
 */
export function parseShareUrl(s: string): ShareTarget | null {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return null;
  }
  const m = /^\/v1\/shares\/([^/]+)(?:\/(.*))?$/.exec(u.pathname);
  if (!m || !["http:", "https:", "ws:", "wss:"].includes(u.protocol)) return null;
  const scheme = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
  const path = (m[2] ?? "").split("/").filter(Boolean).map(decodeURIComponent).join("/");
  return { wsUrl: `${scheme}//${u.host}/v1/shares/${m[1]}/9p`, path };
}

export interface Stat {
  mode: number;
  size: number;
  mtimeSec: number;
}

const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const isDirMode = (mode: number) => (mode & S_IFMT) === S_IFDIR;
const enc = new TextEncoder();
const dec = new TextDecoder();
// open(2) flags and P9_SETATTR_MODE, as Linux sends them (docs/9p-wire.md).
const O_WRONLY = 0o1;
const O_TRUNC = 0o1000;
const SETATTR_MODE = 0x1;

function names(path: string): Uint8Array[] {
  return path
    .split("/")
    .filter(Boolean)
    .map((n) => enc.encode(n));
}

export class Remote {
  private constructor(
    private readonly ws: WebSocket,
    readonly c: Client,
  ) {}

  static async open(wsUrl: string, token?: string, msize = 1 << 20): Promise<Remote> {
    const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
    const ws = new WebSocket(wsUrl, ["9p"], { headers, perMessageDeflate: false, maxPayload: msize + 4096 });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (b: Buffer) => (body += b.toString()));
        res.on("end", () => reject(new Error(`the gateway refused: HTTP ${res.statusCode} ${body.trim()}`)));
      });
      ws.once("error", reject);
    });
    const c = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
    await c.version(msize);
    await c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
    return new Remote(ws, c);
  }

  close(): void {
    this.ws.close(1000, "done");
  }

  /** Runs `f` with a fid walked to `path`, clunked afterwards. */
  private async withFid<T>(path: string, f: (fid: number) => Promise<T>): Promise<T> {
    const fid = this.c.allocFid();
    const wnames = names(path);
    const r = await this.c.request({ type: "Twalk", fid: 0, newfid: fid, wnames });
    if (r.qids.length !== wnames.length) {
      this.c.releaseFid(fid);
      throw new P9Error(ERRNO.ENOENT);
    }
    try {
      return await f(fid);
    } finally {
      await this.c.request({ type: "Tclunk", fid }).catch(() => {});
      this.c.releaseFid(fid);
    }
  }

  async stat(path: string): Promise<Stat> {
    return this.withFid(path, async (fid) => {
      const a = await this.c.request({ type: "Tgetattr", fid, request_mask: 0x7ffn });
      return { mode: a.mode, size: Number(a.size), mtimeSec: Number(a.mtime_sec) };
    });
  }

  /** Entries of a directory (without "." and ".."), with their attributes. */
  async list(path: string): Promise<{ name: string; stat: Stat }[]> {
    const found: string[] = [];
    await this.withFid(path, async (fid) => {
      await this.c.request({ type: "Tlopen", fid, flags: 0 });
      let offset = 0n;
      for (;;) {
        const r = await this.c.request({ type: "Treaddir", fid, offset, count: this.c.msize - 24 });
        const batch = decodeDirents(r.data);
        if (batch.length === 0) break;
        for (const e of batch) {
          const n = dec.decode(e.name);
          if (n !== "." && n !== "..") found.push(n);
        }
        offset = batch[batch.length - 1]!.offset;
      }
    });
    const join = (n: string) => (path ? `${path}/${n}` : n);
    return Promise.all(found.map(async (name) => ({ name, stat: await this.stat(join(name)) })));
  }

  /** Reads a file, handing each piece to `sink` in order. */
  async read(path: string, sink: (piece: Uint8Array) => Promise<void> | void): Promise<void> {
    await this.withFid(path, async (fid) => {
      const o = await this.c.request({ type: "Tlopen", fid, flags: 0 });
      const count = o.iounit || this.c.msize - 24;
      for (let off = 0n; ; ) {
        const r = await this.c.request({ type: "Tread", fid, offset: off, count });
        if (r.data.byteLength === 0) break;
        await sink(r.data);
        off += BigInt(r.data.byteLength);
      }
    });
  }

  /** A fid open for writing on `path`: the file truncated if it exists, else created with `mode`. */
  private async openForWrite(path: string, mode: number): Promise<number> {
    const fid = this.c.allocFid();
    const wnames = names(path);
    let exists = false;
    try {
      exists = (await this.c.request({ type: "Twalk", fid: 0, newfid: fid, wnames })).qids.length === wnames.length;
    } catch (e) {
      if (!(e instanceof P9Error) || e.errno !== ERRNO.ENOENT) throw e;
    }
    if (exists) {
      await this.c.request({ type: "Tlopen", fid, flags: O_WRONLY | O_TRUNC });
      await this.c.request({ type: "Tsetattr", fid, valid: SETATTR_MODE, mode: mode & 0o7777, uid: 0, gid: 0, size: 0n, atime_sec: 0n, atime_nsec: 0n, mtime_sec: 0n, mtime_nsec: 0n });
      return fid;
    }
    const parent = wnames.slice(0, -1);
    await this.c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: parent });
    await this.c.request({ type: "Tlcreate", fid, name: wnames[wnames.length - 1]!, flags: O_WRONLY, mode: S_IFREG | (mode & 0o7777), gid: 0 });
    return fid;
  }

  /** Writes `pieces` to a file (created or truncated), up to 4 writes in flight; `progress` gets each written count. */
  async write(path: string, mode: number, pieces: AsyncIterable<Uint8Array>, progress: (n: number) => void = () => {}): Promise<void> {
    const fid = await this.openForWrite(path, mode);
    try {
      const iounit = this.c.msize - 24;
      let off = 0;
      const inflight = new Set<Promise<void>>();
      let buf: Uint8Array = new Uint8Array(0);
      const send = async (chunk: Uint8Array) => {
        const at = off;
        off += chunk.byteLength;
        const p: Promise<void> = this.c.request({ type: "Twrite", fid, offset: BigInt(at), data: chunk }).then(() => {
          inflight.delete(p);
          progress(chunk.byteLength);
        });
        inflight.add(p);
        if (inflight.size >= 4) await Promise.race(inflight);
      };
      for await (const piece of pieces) {
        buf = buf.byteLength ? concat(buf, piece) : piece;
        while (buf.byteLength >= iounit) {
          await send(buf.subarray(0, iounit));
          buf = buf.subarray(iounit);
        }
      }
      if (buf.byteLength) await send(buf);
      await Promise.all(inflight);
    } finally {
      await this.c.request({ type: "Tclunk", fid }).catch(() => {});
      this.c.releaseFid(fid);
    }
  }

  async mkdir(path: string, mode = 0o755): Promise<void> {
    const [dir, name] = split(path);
    await this.withFid(dir, async (fid) => {
      await this.c.request({ type: "Tmkdir", dfid: fid, name, mode: S_IFDIR | mode, gid: 0 });
    });
  }

  async remove(path: string, isDir: boolean): Promise<void> {
    const [dir, name] = split(path);
    await this.withFid(dir, async (fid) => {
      await this.c.request({ type: "Tunlinkat", dirfid: fid, name, flags: isDir ? 0x200 : 0 });
    });
  }

  async rename(from: string, to: string): Promise<void> {
    const [fromDir, oldname] = split(from);
    const [toDir, newname] = split(to);
    await this.withFid(fromDir, (a) =>
      this.withFid(toDir, async (b) => {
        await this.c.request({ type: "Trenameat", olddirfid: a, oldname, newdirfid: b, newname });
      }),
    );
  }
}

/** A share path's directory and last name ("a/b/c" -> "a/b", "c"). */
function split(path: string): [string, Uint8Array] {
  const cut = path.lastIndexOf("/");
  return [cut < 0 ? "" : path.slice(0, cut), enc.encode(path.slice(cut + 1))];
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
