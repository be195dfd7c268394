// A share as programs see it without a mount: path-level operations (stat,
// list, read, write, mkdir, remove, rename) on top of the protocol client,
// over any transport. The CLI (cli/remote.ts, over `ws`) and the browser
// page (web/, over the browser's WebSocket) both use it, so the page needs no
// second file API. Paths are relative to the share's root, '/'-separated.

import { AT_REMOVEDIR, ATTR, type Client, DOTL, ERRNO, NOFID, P9Error, QT, S_IF, S_IFMT, STATS, decodeDirents, shownName } from "../protocol/index.ts";

export interface Stat {
  mode: number;
  size: number;
  mtimeSec: number;
}

/** Where a read's pieces go, in order. */
export type Sink = (piece: Uint8Array) => Promise<void> | void;

export interface Entry {
  name: string;
  stat: Stat;
}

/**
 * Whether a Stat's mode is a directory's. The client cannot reach
 * storage/types.ts's isDir (the page and the CLI use the protocol only), so
 * this is the same test on a bare mode, over the protocol's constants.
 */
export const isDirMode = (mode: number) => (mode & S_IFMT) === S_IF.DIR;
const enc = new TextEncoder();

function names(path: string): Uint8Array[] {
  return path
    .split("/")
    .filter(Boolean)
    .map((n) => enc.encode(n));
}

/** `name` below the share path `dir` ("" is the root; an empty name is `dir` itself). */
export function joinPath(dir: string, name: string): string {
  return !name ? dir : dir ? `${dir}/${name}` : name;
}

/** ls -l's mode column: type, then rwx for owner, group and others. */
export function modeString(mode: number): string {
  const t = isDirMode(mode) ? "d" : (mode & S_IFMT) === S_IF.LNK ? "l" : "-";
  let s = "";
  for (let i = 8; i >= 0; i--) s += mode & (1 << i) ? "rwx"[(8 - i) % 3] : "-";
  return t + s;
}

/** Runs `f` over `items`, `n` at a time (uploads and downloads of many files). */
export async function eachAtOnce<T>(items: readonly T[], n: number, f: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await f(items[next++]!);
    }),
  );
}

/**
 * Walks in flight at once for one page of a listing: a page of a large
 * directory holds thousands of entries, more than a gateway lets one
 * session have in flight (EDGE9P.max_inflight, 1024 by default).
 */
const STATS_AT_ONCE = 64;

/** A share path's directory and last name ("a/b/c" -> "a/b", "c"). */
export function splitPath(path: string): [string, Uint8Array] {
  const cut = path.lastIndexOf("/");
  return [cut < 0 ? "" : path.slice(0, cut), enc.encode(path.slice(cut + 1))];
}

/**
 * A directory read a page at a time (one Treaddir each), so a directory of
 * thousands of entries costs the first page's round trips, not all of them.
 * Entries come without "." and ".."; close() clunks the directory's fid.
 */
export class DirPager {
  private offset = 0n;
  private ended = false;
  private closed = false;

  constructor(
    private readonly files: ShareFiles,
    private readonly fid: number,
    private readonly pageBytes: number,
  ) {}

  get done(): boolean {
    return this.ended;
  }

  /** The next page of entries with their attributes; [] once the end is reached. */
  async next(): Promise<Entry[]> {
    if (this.ended || this.closed) return [];
    const c = this.files.c;
    const r = await c.request({ type: "Treaddir", fid: this.fid, offset: this.offset, count: Math.min(this.pageBytes, c.msize - 24) });
    const batch = decodeDirents(r.data);
    if (batch.length === 0) {
      this.ended = true;
      return [];
    }
    this.offset = batch[batch.length - 1]!.offset;
    const shown = batch.map((e) => shownName(e.name)).filter((n) => n !== "." && n !== "..");
    // One walk from the directory's fid per entry, STATS_AT_ONCE in flight;
    // an entry removed since the Treaddir is left out rather than failing the page.
    const found: (Entry | null)[] = new Array(shown.length).fill(null);
    await eachAtOnce([...shown.keys()], STATS_AT_ONCE, async (i) => {
      try {
        found[i] = { name: shown[i]!, stat: await this.files.statFrom(this.fid, [enc.encode(shown[i]!)]) };
      } catch (e) {
        if (!(e instanceof P9Error && e.errno === ERRNO.ENOENT)) throw e;
      }
    });
    return found.filter((e): e is Entry => e !== null);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.files.c.request({ type: "Tclunk", fid: this.fid }).catch(() => {});
    this.files.c.releaseFid(this.fid);
  }
}

export class ShareFiles {
  /** `c` has negotiated a version; fid 0 is the share's root once attached. */
  constructor(readonly c: Client) {}

  /** Tversion and Tattach on a fresh client: fid 0 becomes the root. */
  static async attach(c: Client, msize: number): Promise<ShareFiles> {
    await c.version(msize);
    await c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
    return new ShareFiles(c);
  }

  /**
   * Clunks a fid without waiting for the Rclunk: nothing that follows
   * depends on it, so a small file's read or stat costs one round trip
   * less in turn. The fid's number is free again once the Rclunk arrives
   * (a server may refuse a number still in use).
   */
  private clunkLater(fid: number): void {
    const free = () => this.c.releaseFid(fid);
    this.c.request({ type: "Tclunk", fid }).then(free, free);
  }

  /** Runs `f` with a fid walked to `path`, clunked afterwards (without waiting for the Rclunk). */
  async withFid<T>(path: string, f: (fid: number) => Promise<T>): Promise<T> {
    const fid = this.c.allocFid();
    const wnames = names(path);
    let walked = false;
    try {
      const r = await this.c.request({ type: "Twalk", fid: 0, newfid: fid, wnames });
      // A partial walk answers with fewer qids and makes no fid (walk(5)).
      if (r.qids.length !== wnames.length) throw new P9Error(ERRNO.ENOENT);
      walked = true;
      return await f(fid);
    } finally {
      if (walked) this.clunkLater(fid);
      else this.c.releaseFid(fid);
    }
  }

  /** The attributes of what `wnames` names below `from`. */
  async statFrom(from: number, wnames: Uint8Array[]): Promise<Stat> {
    const fid = this.c.allocFid();
    try {
      const w = await this.c.request({ type: "Twalk", fid: from, newfid: fid, wnames });
      if (w.qids.length !== wnames.length) throw new P9Error(ERRNO.ENOENT);
    } catch (e) {
      this.c.releaseFid(fid);
      throw e;
    }
    try {
      const a = await this.c.request({ type: "Tgetattr", fid, request_mask: STATS.BASIC });
      return { mode: a.mode, size: Number(a.size), mtimeSec: Number(a.mtime_sec) };
    } finally {
      this.clunkLater(fid);
    }
  }

  stat(path: string): Promise<Stat> {
    return this.statFrom(0, names(path));
  }

  /** A directory opened for reading in pages of about `pageBytes` of entries. */
  async openDir(path: string, pageBytes = 8192): Promise<DirPager> {
    const fid = this.c.allocFid();
    const wnames = names(path);
    try {
      const w = await this.c.request({ type: "Twalk", fid: 0, newfid: fid, wnames });
      if (w.qids.length !== wnames.length) throw new P9Error(ERRNO.ENOENT);
    } catch (e) {
      this.c.releaseFid(fid);
      throw e;
    }
    const pager = new DirPager(this, fid, pageBytes);
    try {
      await this.c.request({ type: "Tlopen", fid, flags: 0 });
    } catch (e) {
      await pager.close();
      throw e;
    }
    return pager;
  }

  /**
   * Every name in a directory (without "." and ".."), with whether it is a
   * directory (the entry's qid type): Treaddir alone, no walk or Tgetattr
   * per entry, for a caller that opens each entry anyway (cp -r down).
   */
  async names(path: string): Promise<{ name: string; dir: boolean }[]> {
    const fid = this.c.allocFid();
    const wnames = names(path);
    try {
      const w = await this.c.request({ type: "Twalk", fid: 0, newfid: fid, wnames });
      if (w.qids.length !== wnames.length) throw new P9Error(ERRNO.ENOENT);
    } catch (e) {
      this.c.releaseFid(fid);
      throw e;
    }
    try {
      await this.c.request({ type: "Tlopen", fid, flags: 0 });
      const out: { name: string; dir: boolean }[] = [];
      for (let offset = 0n; ; ) {
        const r = await this.c.request({ type: "Treaddir", fid, offset, count: this.c.msize - 24 });
        const batch = decodeDirents(r.data);
        if (batch.length === 0) return out;
        offset = batch[batch.length - 1]!.offset;
        for (const e of batch) {
          const name = shownName(e.name);
          if (name !== "." && name !== "..") out.push({ name, dir: (e.qid.type & QT.DIR) !== 0 });
        }
      }
    } finally {
      this.clunkLater(fid);
    }
  }

  /** Every entry of a directory (without "." and ".."), with its attributes. */
  async list(path: string): Promise<Entry[]> {
    const dir = await this.openDir(path, this.c.msize - 24);
    try {
      const all: Entry[] = [];
      for (let page = await dir.next(); page.length > 0 || !dir.done; page = await dir.next()) all.push(...page);
      return all;
    } finally {
      await dir.close();
    }
  }

  /**
   * Reads a file, handing each piece to `sink` in order; stops after `limit`
   * bytes. With the `size` a stat gave, a read that comes back short at or
   * past it is taken as the end, sparing the empty read that would say so
   * (one round trip of the three a small file's read costs otherwise).
   */
  async read(path: string, sink: Sink, limit = Infinity, size?: number): Promise<void> {
    await this.withFid(path, async (fid) => {
      const o = await this.c.request({ type: "Tlopen", fid, flags: 0 });
      await this.readOpen(fid, o.iounit, sink, limit, size);
    });
  }

  /**
   * Opens a file for reading and hands `f` its attributes and a reader of
   * its bytes. The Tgetattr goes beside the Tlopen, on the one walked fid:
   * a copy that needs each file's mode and size pays no walk of its own for
   * them (cp -r down: 5 requests a small file, where a listing's stats and
   * then a read cost 7).
   */
  async fetch<T>(path: string, f: (st: Stat, read: (sink: Sink) => Promise<void>) => Promise<T>): Promise<T> {
    return this.withFid(path, async (fid) => {
      const [a, o] = await Promise.all([
        this.c.request({ type: "Tgetattr", fid, request_mask: STATS.BASIC }),
        this.c.request({ type: "Tlopen", fid, flags: 0 }),
      ]);
      const st = { mode: a.mode, size: Number(a.size), mtimeSec: Number(a.mtime_sec) };
      return f(st, (sink) => this.readOpen(fid, o.iounit, sink, Infinity, st.size));
    });
  }

  /** Reads an open fid from offset 0 into `sink` (see read for `limit` and `size`). */
  private async readOpen(fid: number, iounit: number, sink: Sink, limit: number, size: number | undefined): Promise<void> {
    const count = iounit || this.c.msize - 24;
    for (let off = 0; off < limit; ) {
      const want = Math.min(count, limit - off);
      const r = await this.c.request({ type: "Tread", fid, offset: BigInt(off), count: want });
      if (r.data.byteLength === 0) break;
      await sink(r.data);
      off += r.data.byteLength;
      if (size !== undefined && r.data.byteLength < want && off >= size) break;
    }
  }

  /**
   * A fid open for writing on `path`: created with `mode`, or, when it
   * exists (EEXIST), truncated and given `mode`. Creating first costs a new
   * file (the common case of a copy) two round trips, where looking first
   * cost three, one of them a failed walk.
   */
  private async openForWrite(path: string, mode: number): Promise<number> {
    const fid = this.c.allocFid();
    const wnames = names(path);
    const name = wnames[wnames.length - 1];
    if (!name) {
      this.c.releaseFid(fid);
      throw new P9Error(ERRNO.EISDIR, "the share's root is a directory");
    }
    try {
      const w = await this.c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: wnames.slice(0, -1) });
      if (w.qids.length !== wnames.length - 1) throw new P9Error(ERRNO.ENOENT);
    } catch (e) {
      this.c.releaseFid(fid);
      throw e;
    }
    try {
      try {
        await this.c.request({ type: "Tlcreate", fid, name, flags: DOTL.WRONLY, mode: S_IF.REG | (mode & 0o7777), gid: 0 });
        return fid;
      } catch (e) {
        if (!(e instanceof P9Error) || e.errno !== ERRNO.EEXIST) throw e;
      }
      // The fid is still the directory's (a failed Tlcreate leaves it so): walk it to the file.
      const w = await this.c.request({ type: "Twalk", fid, newfid: fid, wnames: [name] });
      if (w.qids.length !== 1) throw new P9Error(ERRNO.ENOENT);
      await this.c.request({ type: "Tlopen", fid, flags: DOTL.WRONLY | DOTL.TRUNC });
      await this.c.request({ type: "Tsetattr", fid, valid: ATTR.MODE, mode: mode & 0o7777, uid: 0, gid: 0, size: 0n, atime_sec: 0n, atime_nsec: 0n, mtime_sec: 0n, mtime_nsec: 0n });
      return fid;
    } catch (e) {
      await this.c.request({ type: "Tclunk", fid }).catch(() => {});
      this.c.releaseFid(fid);
      throw e;
    }
  }

  /**
   * Writes `pieces` to a file (created or truncated) in writes of the
   * negotiated size, up to 4 in flight; `progress` gets each written count.
   */
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
        const p: Promise<void> = this.c.request({ type: "Twrite", fid, offset: BigInt(at), data: chunk }).then((r) => {
          inflight.delete(p);
          if (r.count !== chunk.byteLength) throw new P9Error(ERRNO.EIO, `short write: ${r.count} of ${chunk.byteLength} bytes`);
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
    const [dir, name] = splitPath(path);
    await this.withFid(dir, async (fid) => {
      await this.c.request({ type: "Tmkdir", dfid: fid, name, mode: S_IF.DIR | mode, gid: 0 });
    });
  }

  async remove(path: string, isDir: boolean): Promise<void> {
    const [dir, name] = splitPath(path);
    await this.withFid(dir, async (fid) => {
      await this.c.request({ type: "Tunlinkat", dirfid: fid, name, flags: isDir ? AT_REMOVEDIR : 0 });
    });
  }

  /** Removes a file, or a directory and everything below it. */
  async removeTree(path: string): Promise<void> {
    const st = await this.stat(path);
    if (isDirMode(st.mode)) {
      for (const e of await this.list(path)) await this.removeTree(joinPath(path, e.name));
    }
    await this.remove(path, isDirMode(st.mode));
  }

  async rename(from: string, to: string): Promise<void> {
    const [fromDir, oldname] = splitPath(from);
    const [toDir, newname] = splitPath(to);
    await this.withFid(fromDir, (a) =>
      this.withFid(toDir, async (b) => {
        await this.c.request({ type: "Trenameat", olddirfid: a, oldname, newdirfid: b, newname });
      }),
    );
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
