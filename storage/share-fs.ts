// The share filesystem: the namespace in SQLite, file content in R2 plus a
// write journal in SQLite, published back to R2 as plain objects.
//
// Concurrency: methods that return a Promise await R2 and may interleave
// with other requests at those awaits; they re-read what they need from
// SQLite after each await. Synchronous methods never interleave, so every
// namespace change (create, rename, unlink, write) is atomic.
// Permissions are the client's to check (Linux does with access=client);
// who may open a share at all is decided before its socket is accepted.

import { type DevNumbers, ERRNO, P9Error, S_IF, S_IFMT, encodeDev, validDev } from "../protocol/index.ts";
import { type CheckReport, checkNamespace } from "./fsck.ts";
import { Clock } from "./clock.ts";
import { ContentCache } from "./content-cache.ts";
import { Importer } from "./importer.ts";
import { Journal } from "./journal.ts";
import { NAME_MAX, checkNewName, checkNotReserved } from "./keys.ts";
import { LockTable } from "./locks.ts";
import { COOKIE_DOT, COOKIE_DOTDOT, Namespace, afterIdOf, cookieOf, nextVersion } from "./namespace.ts";
import { Publisher } from "./publisher.ts";
import { type R2Calls, countedBucket, noCalls } from "./r2-calls.ts";
import { Readahead } from "./readahead.ts";
import { ROOT_INO } from "./schema.ts";
import { modeAfterChown, modeAfterWrite } from "./setid.ts";
import { type Entry, type Inode, type ShareOptions, type StatFs, type Timespec, isDir, isLink, isReg } from "./types.ts";
import { Xattrs } from "./xattrs.ts";

/** What the share object's stats call the content cache's deferred writes (worker/sql-meter.ts). */
export const CACHE_WRITES = "cache fill";
/** PATH_MAX: the longest symlink target Linux reads. */
const SYMLINK_MAX = 4096;
/** How far ahead of the clock its persisted bound moves (tick). */
const CLOCK_RESERVE_NS = 1_000_000_000n;
const STATFS_BSIZE = 4096;
/** Inodes a share may hold, as statfs reports it. */
const STATFS_FILES = 2 ** 32;
/** Metadata-only changes wait this long, coalescing, before they are re-uploaded. */
const METADATA_DELAY_MS = 30_000;
/** A file whose journal grows past this is published even while open. */
const JOURNAL_PER_FILE_PUBLISH = 64 * 1024 * 1024;
const TOO_LARGE = "past the share's largest file (EDGE9P.max_file_bytes)";
const JOURNAL_FULL = "the share's write journal is full until files are published";

/** Tsetattr's changes (absent = unchanged; a time of "now" is resolved by the caller's clock). */
export interface SetAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: Timespec | "now";
  mtime?: Timespec | "now";
  /** Only update ctime (Linux sends CTIME with other bits; alone it means "touch ctime"). */
  ctime?: boolean;
}

export class ShareFs {
  readonly ns: Namespace;
  readonly journal: Journal;
  readonly publisher: Publisher;
  readonly locks: LockTable;
  readonly xattrs: Xattrs;
  /** Small files' R2 bytes in SQLite, by key and etag (content-cache.ts). */
  readonly cache: ContentCache;
  /** Sequential readers' next ranges, fetched ahead (readahead.ts). */
  readonly readahead: Readahead;
  /** R2 calls made, by method. */
  readonly r2Calls: R2Calls = noCalls();
  private readonly importer: Importer;
  private readonly clock: Clock;
  /** The time no restart goes back past (meta clock_ns): above every time handed out. */
  private clockBound: bigint;
  /** The binding as set, and the same counting its calls (what every call goes through). */
  private counted: R2Bucket;
  /** Cache fills on their way, by key and etag: concurrent readers of one file share one R2 get. */
  private readonly filling = new Map<string, Promise<Uint8Array | "gone" | "changed" | null>>();
  /** Fills whose bytes came from R2 and whose rows wait for their replies to be sent (writeCache). */
  private readonly fills: { key: string; etag: string; bytes: Uint8Array; done: () => void }[] = [];
  private cacheWriteQueued = false;
  /**
   * New files whose publish time their create set (create): their close
   * moves it later only when less than half of publish_delay_ms is left, so
   * a file renamed just after its close (editors, git, tar) is still
   * published once, at its final name. In memory: after a restart a close
   * keeps what is set.
   */
  private readonly scheduledByCreate = new Set<number>();

  constructor(
    sql: SqlStorage,
    private bucket: R2Bucket,
    private readonly opts: ShareOptions,
    private readonly log: (msg: string) => void = () => {},
    reserve: (n: number) => Promise<() => void> = async () => () => {},
    /** Takes bytes of the share's budget for a while, if there is room (readahead, cache fills); null if not. */
    private readonly hold: (n: number) => (() => void) | null = () => () => {},
    /**
     * Runs `f` after the reply of the request now running has been sent, its
     * SQLite rows counted as `what` (the share object meters them). A reply
     * that follows a storage write waits until the write is durable (the
     * output gate), so the content cache writes nothing before a reply.
     */
    private readonly afterReply: (what: string, f: () => void) => void = (_what, f) => void setTimeout(f, 0),
  ) {
    this.counted = countedBucket(bucket, this.r2Calls);
    this.ns = new Namespace(sql, opts);
    this.cache = new ContentCache(sql, {
      maxBytes: opts.cacheBytes ?? 0,
      fileMaxBytes: opts.cacheFileBytes ?? 0,
      marked: () => this.queueCacheWrite(),
    });
    this.readahead = new Readahead({
      windowMax: opts.readaheadBytes ?? 0,
      fetch: async (key, etag, offset, length, signal) => {
        const r = await this.getRange(key, etag, offset, length, signal);
        return r instanceof Uint8Array ? r : null;
      },
      hold: (n) => this.hold(n),
    });
    // Another tool replaced an object (a listing saw a new etag), or an inode went: its bytes are no one's now.
    this.ns.onContentGone = (ino, key) => {
      if (key !== null) this.cache.drop(key);
      this.readahead.cancelIno(ino);
    };
    this.clockBound = BigInt((this.ns.meta("clock_ns") as string | null) ?? "0");
    this.clock = new Clock(this.clockBound);
    this.journal = new Journal(sql, (n) => this.ns.setMeta("journal_bytes", n), (this.ns.meta("journal_bytes") as number | null) ?? 0);
    this.locks = new LockTable(sql, { perSession: opts.maxLocksPerSession, perInode: opts.maxLocksPerInode, perShare: opts.maxLocks });
    this.xattrs = new Xattrs(sql);
    this.publisher = new Publisher({
      ns: this.ns,
      journal: this.journal,
      bucket: () => this.counted,
      read: (f, off, into) => this.readContent(f, off, into),
      reserve,
      log,
      // The bytes just uploaded are the new object's: the next read needs no R2 get.
      published: (oldKey, key, etag, body) => {
        if (oldKey !== null && oldKey !== key) this.cache.drop(oldKey);
        this.cache.put(key, etag, body, true);
      },
    });
    this.importer = new Importer(this.ns, () => this.counted, opts.prefix, log, this.publisher);
  }

  /** Swaps the R2 binding (tests inject faults through a wrapper). */
  setBucket(b: R2Bucket): void {
    this.bucket = b;
    this.counted = countedBucket(b, this.r2Calls);
  }

  get r2(): R2Bucket {
    return this.bucket;
  }

  /**
   * A time later than any this share handed out before. What survives a
   * restart is a bound above every time handed out (meta clock_ns), moved
   * a second ahead when the clock reaches it: one row write a second of
   * changes rather than one per change (two per small-file create). A
   * restart then starts from the bound, so times handed out in the second
   * after a restart may run up to a second ahead of the wall clock, and
   * never repeat or go back.
   */
  private tick(): Timespec {
    const t = this.clock.tick();
    if (this.clock.lastNs >= this.clockBound) {
      this.clockBound = this.clock.lastNs + CLOCK_RESERVE_NS;
      this.ns.setMeta("clock_ns", this.clockBound.toString());
    }
    return t;
  }

  root(): Inode {
    return this.ns.get(ROOT_INO)!;
  }

  /** The inode, or ESTALE when it no longer exists. */
  get(ino: number): Inode {
    const i = this.ns.get(ino);
    if (i === null) throw new P9Error(ERRNO.ESTALE);
    return i;
  }

  get listCalls(): number {
    return this.importer.lists;
  }

  /** Makes sure a directory reflects R2 as of at most the revalidation time ago. */
  async refresh(dir: Inode): Promise<void> {
    await this.importer.ensureFresh(dir, this.opts.revalidateMs);
  }

  /** Forces a new listing of a directory from R2. */
  async reimport(dir: Inode): Promise<void> {
    await this.importer.importDir(dir);
  }

  /**
   * The child `name` of a directory. "." is the directory, ".." its parent,
   * never above `top` (the attach point).
   */
  async lookup(dirIno: number, name: Uint8Array, top: number): Promise<Inode> {
    const dir = this.get(dirIno);
    if (!isDir(dir)) throw new P9Error(ERRNO.ENOTDIR);
    if (name.byteLength > NAME_MAX) throw new P9Error(ERRNO.ENAMETOOLONG);
    if (name.byteLength === 1 && name[0] === 0x2e) return dir;
    if (name.byteLength === 2 && name[0] === 0x2e && name[1] === 0x2e) {
      return dir.ino === top || dir.ino === ROOT_INO ? dir : this.get(dir.parent);
    }
    await this.refresh(dir);
    const child = this.ns.lookup(dirIno, name);
    if (child === null) throw new P9Error(ERRNO.ENOENT);
    return child;
  }

  /**
   * Directory entries after `cookie` ("." and ".." first, then entries in
   * the order they were added), at most `limit` of them. Cookies name an
   * entry, not a position, so a listing resumes correctly from any cookie
   * also after entries were added or removed.
   */
  readdir(dir: Inode, cookie: bigint, limit: number, top: number): Entry[] {
    const out: Entry[] = [];
    if (cookie < COOKIE_DOT && out.length < limit) out.push({ name: DOT, cookie: COOKIE_DOT, inode: dir });
    if (cookie < COOKIE_DOTDOT && out.length < limit) {
      const parent = dir.ino === top || dir.ino === ROOT_INO ? dir : (this.ns.get(dir.parent) ?? dir);
      out.push({ name: DOTDOT, cookie: COOKIE_DOTDOT, inode: parent });
    }
    if (out.length < limit) {
      for (const e of this.ns.entries(dir.ino, afterIdOf(cookie), limit - out.length)) {
        out.push({ name: e.name, cookie: cookieOf(e.id), inode: e.inode });
      }
    }
    return out;
  }

  /**
   * Reads up to into.byteLength bytes at `offset` into `into`; returns how
   * many. The file's content is the first baseLen bytes of its R2 object,
   * zeros up to its size, and its journal over both. The R2 part is pinned to
   * `pin` (the etag the reader opened): if another writer replaced the
   * object meanwhile, the read fails with ESTALE rather than mix versions.
   */
  async read(file: Inode, offset: number, into: Uint8Array, signal?: AbortSignal, pin?: string | null, stream?: string): Promise<number> {
    return this.readContent(file, offset, into, signal, pin === undefined ? file.etag : pin, stream);
  }

  /**
   * The file's bytes: its R2 object's (from the content cache, a stream's
   * readahead or R2 itself, all pinned to one object version), zeros past
   * base_len, and the journal over both.
   */
  private async readContent(
    file: Inode,
    offset: number,
    into: Uint8Array,
    signal?: AbortSignal,
    pin: string | null = file.etag,
    stream?: string,
  ): Promise<number> {
    const length = Math.min(into.byteLength, Math.max(0, file.size - offset));
    if (length === 0) return 0;
    const view = length === into.byteLength ? into : into.subarray(0, length);
    const r2End = Math.min(offset + length, file.baseLen);
    // R2 throws on an empty range (or any range of an empty object): never ask.
    if (r2End > offset && file.key !== null && !this.journal.covers(file.ino, offset, r2End)) {
      const got = await this.objectBytes(file, file.key, pin, offset, view.subarray(0, r2End - offset), signal, stream);
      if (got !== "ok") {
        // Our own publish may have moved or rewritten the object meanwhile:
        // the content is the same, read it where it is now.
        const now = this.ns.get(file.ino);
        if (now && now.replaced === file.replaced && now.key !== null && (now.key !== file.key || now.etag !== file.etag)) {
          return this.readContent(now, offset, into, signal, now.etag, stream);
        }
        if (got === "gone") throw new P9Error(ERRNO.ESTALE, "the object is gone from R2");
        await this.noteChanged(file);
        throw new P9Error(ERRNO.ESTALE, "the object changed in R2 while open");
      }
      // The zero-initialised rest of `view` is the hole past baseLen.
    }
    // Re-read the journal after the await: it may have changed meanwhile.
    this.journal.overlay(file.ino, offset, view);
    return length;
  }

  /**
   * Bytes [offset, offset + part.length) of the object (key, pin) into
   * `part`: from the content cache; for a small file not in it, the whole
   * object from R2 into the cache; for a larger one, from what the reader's
   * stream fetched ahead; else one R2 range get.
   */
  private async objectBytes(
    file: Inode,
    key: string,
    pin: string | null,
    offset: number,
    part: Uint8Array,
    signal?: AbortSignal,
    stream?: string,
  ): Promise<"ok" | "gone" | "changed"> {
    if (pin !== null) {
      if (this.cache.read(key, pin, offset, part)) return "ok";
      // A dirty file will be published as a new object: its old one is not worth keeping.
      if (this.cache.takes(file.baseLen) && !file.dirty) {
        const whole = await this.fill(key, pin, file.baseLen);
        if (whole instanceof Uint8Array) {
          part.set(whole.subarray(offset, offset + part.byteLength));
          return "ok";
        }
        if (whole !== null) return whole;
        // No room in the budget to hold the whole file: read just the range.
      } else if (stream !== undefined) {
        const served = this.readahead.read(stream, { ino: file.ino, key, etag: pin, end: file.baseLen }, offset, part, signal);
        if (served !== null && (await served)) return "ok";
      }
    }
    const r = await this.getRange(key, pin, offset, part.byteLength, signal, part);
    return r instanceof Uint8Array ? "ok" : r;
  }

  /** The first `size` bytes of a small object, read once from R2 and kept in the cache. */
  private fill(key: string, etag: string, size: number): Promise<Uint8Array | "gone" | "changed" | null> {
    const id = `${etag}\n${key}`;
    let p = this.filling.get(id);
    if (!p) {
      const release = this.hold(size);
      if (!release) return Promise.resolve(null);
      // Not aborted with the request that started it: others may wait on it too (it is one small file).
      p = this.getRange(key, etag, 0, size).then(
        (r) => {
          if (r instanceof Uint8Array) {
            // Written after the reply (writeCache); until then readers of the file share these bytes.
            this.fills.push({
              key,
              etag,
              bytes: r,
              done: () => {
                this.filling.delete(id);
                release();
              },
            });
            this.queueCacheWrite();
          } else {
            this.filling.delete(id);
            release();
          }
          return r;
        },
        (e) => {
          this.filling.delete(id);
          release();
          throw e;
        },
      );
      this.filling.set(id, p);
    }
    return p;
  }

  /** Asks for the cache's pending rows (fills, LRU marks) to be written once the current reply is out. */
  private queueCacheWrite(): void {
    if (this.cacheWriteQueued) return;
    this.cacheWriteQueued = true;
    this.afterReply(CACHE_WRITES, () => this.writeCache());
  }

  /**
   * The content cache's deferred rows: the LRU marks of hits, then the fills
   * (whose evictions take the least recently used, marks applied). An entry
   * written late is still right: it is one object version's bytes, by key
   * and etag, whatever the file became meanwhile.
   */
  private writeCache(): void {
    this.cacheWriteQueued = false;
    const fills = this.fills.splice(0);
    try {
      this.cache.writeMarks();
      for (const f of fills) this.cache.put(f.key, f.etag, f.bytes);
    } catch (e) {
      // The object is going away (a restart), or SQLite refused: the cache is only an optimisation.
      this.log(`content cache: ${(e as Error).message}`);
    } finally {
      for (const f of fills) f.done();
    }
  }

  /**
   * One R2 range get pinned to `pin`, into `into` (or a new buffer): the
   * bytes, or "gone" (no object) or "changed" (another etag there now).
   */
  private async getRange(
    key: string,
    pin: string | null,
    offset: number,
    length: number,
    signal?: AbortSignal,
    into: Uint8Array = new Uint8Array(length),
  ): Promise<Uint8Array | "gone" | "changed"> {
    const obj = await this.counted.get(key, { range: { offset, length }, onlyIf: pin ? { etagMatches: pin } : undefined });
    if (obj === null) return "gone";
    if (!("body" in obj)) return "changed";
    const n = await readInto((obj as R2ObjectBody).body, into, length, signal);
    if (n !== length) throw new P9Error(ERRNO.EIO, `R2 returned ${n} of ${length} bytes`);
    return into;
  }

  private async noteChanged(file: Inode): Promise<void> {
    const dir = this.ns.get(file.parent);
    if (dir && isDir(dir)) await this.importer.importDir(dir);
  }

  async readlink(link: Inode): Promise<Uint8Array> {
    if (!isLink(link)) throw new P9Error(ERRNO.EINVAL);
    const cached = this.ns.target(link.ino);
    if (cached) return cached;
    if (link.key === null || link.size > SYMLINK_MAX) throw new P9Error(ERRNO.EIO, "symlink without a target");
    // A symlink put by s3fs: the object's content is the target.
    const obj = await this.counted.get(link.key);
    if (obj === null) throw new P9Error(ERRNO.ESTALE);
    const target = new Uint8Array(await obj.arrayBuffer());
    this.ns.setTarget(link.ino, target);
    return target;
  }

  statfs(): StatFs {
    const { bytes, inodes } = this.ns.usage();
    const blocks = Math.floor(this.opts.quotaBytes / STATFS_BSIZE);
    const used = Math.ceil(bytes / STATFS_BSIZE);
    // What the journal may still take bounds what a write can use now.
    const journalFree = Math.floor(Math.max(0, this.opts.journalCap - this.journal.bytes) / STATFS_BSIZE);
    const free = Math.max(0, blocks - used);
    return {
      bsize: STATFS_BSIZE,
      blocks,
      bfree: free,
      bavail: Math.min(free, journalFree),
      files: STATFS_FILES,
      ffree: Math.max(0, STATFS_FILES - inodes),
      fsid: this.opts.fsid,
      namelen: NAME_MAX,
    };
  }

  // ---- changes ----------------------------------------------------------

  /**
   * A directory ready for a new entry `name`: fresh from R2, name unused
   * and not the reserved one. Any path length goes: an object whose key
   * would pass R2's 1,024 bytes gets a derived key (keys.ts).
   */
  private async prepareNew(dirIno: number, name: Uint8Array): Promise<Inode> {
    checkNewName(name);
    checkNotReserved(dirIno === ROOT_INO, name);
    const dir0 = this.get(dirIno);
    if (!isDir(dir0)) throw new P9Error(ERRNO.ENOTDIR);
    await this.refresh(dir0);
    const dir = this.get(dirIno);
    const path = this.ns.pathOf(dir.ino);
    if (path === null) throw new P9Error(ERRNO.ENOENT, "the directory was removed");
    this.checkDepth(path);
    if (this.ns.lookup(dir.ino, name) !== null) throw new P9Error(ERRNO.EEXIST);
    return dir;
  }

  private dirChanged(dir: Inode, t: Timespec): void {
    this.ns.update(dir.ino, { mtime: t, ctime: t });
  }

  private makeNode(dir: Inode, name: Uint8Array, mode: number, uid: number, gid: number, rdev = 0, publishAfter?: number): Inode {
    const t = this.tick();
    const node = this.ns.create({
      publishAfter,
      mode,
      uid,
      gid,
      rdev,
      mtime: t,
      key: null,
      parent: dir.ino,
      fromR2: false,
      dirty: true,
    });
    this.ns.link(dir.ino, name, node.ino);
    this.dirChanged(dir, t);
    this.publisher.changed(node.ino);
    return node;
  }

  /** Tlcreate: a new regular file (mode's type bits are ignored). */
  async create(dirIno: number, name: Uint8Array, mode: number, uid: number, gid: number): Promise<Inode> {
    const dir = await this.prepareNew(dirIno, name);
    // Scheduled now, in the create's own row, rather than at its close:
    // the close of a file written soon after (create, write, close, as an
    // untar does) then finds it scheduled and writes nothing, so its Rclunk
    // does not wait on a write. Still open when due, it waits for the close.
    const node = this.makeNode(dir, name, S_IF.REG | (mode & 0o7777), uid, gid, 0, this.publisher.scheduleNew(this.opts.publishDelayMs));
    this.journal.noteEmpty(node.ino);
    this.scheduledByCreate.add(node.ino);
    return node;
  }

  async mkdir(dirIno: number, name: Uint8Array, mode: number, uid: number, gid: number): Promise<Inode> {
    const dir = await this.prepareNew(dirIno, name);
    const node = this.makeNode(dir, name, S_IF.DIR | (mode & 0o7777), uid, gid);
    // Nothing in R2 to list yet: its listing is its own.
    this.ns.setListedAt(node.ino, Date.now());
    this.publisher.schedule(node.ino, this.opts.publishDelayMs);
    return node;
  }

  async symlink(dirIno: number, name: Uint8Array, target: Uint8Array, uid: number, gid: number): Promise<Inode> {
    if (target.byteLength === 0 || target.byteLength > SYMLINK_MAX) throw new P9Error(ERRNO.ENAMETOOLONG);
    const dir = await this.prepareNew(dirIno, name);
    const node = this.makeNode(dir, name, S_IF.LNK | 0o777, uid, gid);
    this.ns.setTarget(node.ino, target);
    this.ns.update(node.ino, { size: target.byteLength });
    this.publisher.schedule(node.ino, this.opts.publishDelayMs);
    return this.get(node.ino);
  }

  /**
   * FIFOs, sockets and block and character devices are metadata: an empty
   * object whose mode (and, for a device, rdev) says what it is. Devices
   * only where the share allows them (EPERM otherwise: a device made here
   * opens that device in any guest that mounts the share without nodev),
   * and only with numbers Linux's dev_t holds (EINVAL).
   */
  async mknod(dirIno: number, name: Uint8Array, mode: number, uid: number, gid: number, dev?: DevNumbers): Promise<Inode> {
    const type = mode & S_IFMT;
    let rdev = 0;
    if (type === S_IF.CHR || type === S_IF.BLK) {
      if (!this.opts.deviceNodes) throw new P9Error(ERRNO.EPERM, "this share refuses device nodes (device_nodes = false)");
      if (!dev || !validDev(dev.major, dev.minor)) throw new P9Error(ERRNO.EINVAL, "device numbers past Linux's (major < 4096, minor < 2^20)");
      rdev = encodeDev(dev.major, dev.minor);
    } else if (type !== S_IF.FIFO && type !== S_IF.SOCK && type !== S_IF.REG && type !== 0) {
      throw new P9Error(ERRNO.EINVAL);
    }
    const dir = await this.prepareNew(dirIno, name);
    const node = this.makeNode(dir, name, (type || S_IF.REG) | (mode & 0o7777), uid, gid, rdev);
    this.publisher.schedule(node.ino, this.opts.publishDelayMs);
    return node;
  }

  /** Tlink: a hard link; the object stays at the path of the first link. */
  async link(dirIno: number, name: Uint8Array, ino: number): Promise<void> {
    const dir = await this.prepareNew(dirIno, name);
    const node = this.get(ino);
    if (isDir(node)) throw new P9Error(ERRNO.EPERM, "hard links to directories are not allowed");
    if (this.ns.pathOf(ino) === null) throw new P9Error(ERRNO.ENOENT, "the file was removed");
    const t = this.tick();
    this.ns.link(dir.ino, name, ino);
    this.ns.update(ino, { nlink: node.nlink + 1, ctime: t });
    this.dirChanged(dir, t);
    this.publisher.changed(ino);
  }

  /** Marks an inode (and, for a directory, everything below) as to be republished. */
  private moved(node: Inode): void {
    const all = isDir(node) ? [node.ino, ...this.ns.descendants(node.ino)] : [node.ino];
    for (const ino of all) {
      this.ns.update(ino, { dirty: 1, from_r2: 0 });
      this.publisher.changed(ino);
      this.publisher.schedule(ino, this.opts.publishDelayMs);
    }
  }

  /**
   * Trenameat: atomic in SQLite. An existing target is replaced (a directory
   * only by an empty directory, never by a file; a file never by a directory).
   * The objects follow through the publisher.
   */
  async rename(oldDirIno: number, oldName: Uint8Array, newDirIno: number, newName: Uint8Array): Promise<void> {
    checkNewName(newName);
    checkNewName(oldName);
    checkNotReserved(newDirIno === ROOT_INO, newName);
    for (const ino of [oldDirIno, newDirIno]) {
      const d = this.get(ino);
      if (!isDir(d)) throw new P9Error(ERRNO.ENOTDIR);
      await this.refresh(d);
    }
    const oldDir = this.get(oldDirIno);
    const newDir = this.get(newDirIno);
    const src = this.ns.lookup(oldDir.ino, oldName);
    if (src === null) throw new P9Error(ERRNO.ENOENT);
    const dst = this.ns.lookup(newDir.ino, newName);
    if (dst?.ino === src.ino) return;
    if (isDir(src) && this.ns.isWithin(newDir.ino, src.ino)) throw new P9Error(ERRNO.EINVAL, "cannot move a directory into itself");
    const newPath = this.ns.pathOf(newDir.ino);
    if (newPath === null) throw new P9Error(ERRNO.ENOENT);
    this.checkDepth(newPath);
    if (dst) {
      if (isDir(src) && !isDir(dst)) throw new P9Error(ERRNO.ENOTDIR);
      if (!isDir(src) && isDir(dst)) throw new P9Error(ERRNO.EISDIR);
      if (isDir(dst)) {
        await this.refresh(dst);
        if (this.ns.hasEntries(dst.ino)) throw new P9Error(ERRNO.ENOTEMPTY);
      }
    }
    // Re-check after the awaits, then change everything at once.
    if (this.ns.lookup(oldDir.ino, oldName)?.ino !== src.ino) throw new P9Error(ERRNO.ENOENT);
    const t = this.tick();
    const cur = this.ns.lookup(newDir.ino, newName);
    if (cur) this.dropLink(newDir.ino, newName, cur);
    this.ns.unlink(oldDir.ino, oldName);
    this.ns.link(newDir.ino, newName, src.ino);
    if (isDir(src)) this.ns.update(src.ino, { parent: newDir.ino });
    this.ns.update(src.ino, { ctime: t });
    this.dirChanged(oldDir, t);
    if (newDir.ino !== oldDir.ino) this.dirChanged(newDir, t);
    this.moved(this.get(src.ino));
  }

  /** Removes one name of an inode; the inode goes when no name and no fid is left. */
  private dropLink(dirIno: number, name: Uint8Array, node: Inode): void {
    const wasPrimary = this.ns.primaryLink(node.ino);
    this.ns.unlink(dirIno, name);
    const nlink = isDir(node) ? 0 : node.nlink - 1;
    // An inode kept open after its last name has its open count in its row (fsck: not unreachable).
    this.ns.update(node.ino, { nlink: Math.max(0, nlink), ctime: this.tick(), opens: nlink > 0 ? undefined : node.opens });
    this.publisher.changed(node.ino);
    if (nlink > 0) {
      // Still linked elsewhere: if this was the path its object lives at, move it.
      if (wasPrimary && wasPrimary.parent === dirIno) this.moved(this.get(node.ino));
      return;
    }
    if (node.opens > 0) return; // unlinked but open: kept until its last clunk
    this.forget(node);
  }

  /** A new name in the directory at `dirPath` stays within EDGE9P.max_depth. */
  private checkDepth(dirPath: readonly unknown[]): void {
    if (dirPath.length + 1 > this.opts.maxDepth) throw new P9Error(ERRNO.ENAMETOOLONG, "too many directory levels (EDGE9P.max_depth)");
  }

  /** An inode with no name and no open fid: its object and its journal go. */
  private forget(node: Inode): void {
    this.scheduledByCreate.delete(node.ino);
    if (node.key !== null) this.publisher.deleteKey(node.key, node.etag);
    // (ns.remove below drops its cache entry and readahead: onContentGone.)
    this.journal.clear(node.ino);
    this.locks.dropInode(node.ino);
    this.ns.remove(node.ino);
  }

  /** Tunlinkat: a file (or, with rmdir, an empty directory). */
  async unlink(dirIno: number, name: Uint8Array, rmdir: boolean): Promise<void> {
    checkNewName(name);
    const dir0 = this.get(dirIno);
    if (!isDir(dir0)) throw new P9Error(ERRNO.ENOTDIR);
    await this.refresh(dir0);
    const node0 = this.ns.lookup(dirIno, name);
    if (node0 === null) throw new P9Error(ERRNO.ENOENT);
    if (rmdir && !isDir(node0)) throw new P9Error(ERRNO.ENOTDIR);
    if (!rmdir && isDir(node0)) throw new P9Error(ERRNO.EISDIR);
    // An empty directory in the namespace may still hold objects in R2.
    if (rmdir) await this.refresh(node0);
    const node = this.ns.lookup(dirIno, name);
    if (node === null || node.ino !== node0.ino) throw new P9Error(ERRNO.ENOENT);
    if (rmdir && this.ns.hasEntries(node.ino)) throw new P9Error(ERRNO.ENOTEMPTY);
    this.dropLink(dirIno, name, node);
    this.dirChanged(this.get(dirIno), this.tick());
  }

  /**
   * Tsetattr by the user `by`. Size changes go through the journal; mode
   * keeps its type bits. A truncate or a chown that does not set the mode
   * clears set-ID bits as Linux's would (setid.ts); one that sets it is
   * taken as sent (Linux's client computed it, and notify_change never gets
   * both a mode and ATTR_KILL_S*ID).
   */
  setattr(ino: number, a: SetAttr, by: number): Inode {
    const node = this.get(ino);
    const t = this.tick();
    let content = false;
    if (a.size !== undefined && a.size !== node.size) {
      if (!isReg(node)) throw new P9Error(isDir(node) ? ERRNO.EISDIR : ERRNO.EINVAL);
      this.checkResize(node, a.size);
      this.truncate(node, a.size);
      content = true;
    } else if (a.size !== undefined) {
      // truncate(2) to the same size still updates mtime and ctime.
      this.ns.update(ino, { mtime: t });
    }
    const u: Parameters<Namespace["update"]>[1] = { ctime: t };
    if (a.mode !== undefined) u.mode = (node.mode & S_IFMT) | (a.mode & 0o7777);
    else {
      let mode = node.mode;
      if (a.size !== undefined) mode = modeAfterWrite(mode, by);
      if (a.uid !== undefined || a.gid !== undefined) mode = modeAfterChown(mode);
      if (mode !== node.mode) u.mode = mode;
    }
    if (a.uid !== undefined) u.uid = a.uid;
    if (a.gid !== undefined) u.gid = a.gid;
    if (a.atime !== undefined) u.atime = a.atime === "now" ? t : a.atime;
    if (a.mtime !== undefined) u.mtime = a.mtime === "now" ? t : a.mtime;
    u.dirty = 1;
    u.from_r2 = 0;
    this.ns.update(ino, u);
    this.publisher.changed(ino);
    const cur = this.get(ino);
    if (!content) this.publisher.schedule(ino, METADATA_DELAY_MS);
    else if (cur.opens === 0) this.publisher.schedule(ino, this.opts.publishDelayMs);
    return cur;
  }

  /**
   * Whether a file may be truncated to `size`, before anything changes
   * (Twstat checks it before its rename). Growing past max_file_bytes is
   * EFBIG, as inode_newsize_ok (fs/attr.c) answers past s_maxbytes;
   * shrinking is always allowed. Growing leaves a hole its publish uploads
   * as zeros, so it must fit the journal cap like written bytes (ENOSPC).
   */
  checkResize(node: Inode, size: number): void {
    if (!isReg(node) || size <= node.size) return; // (setattr answers for the rest)
    if (size > this.opts.maxFileBytes) throw new P9Error(ERRNO.EFBIG, TOO_LARGE);
    if (this.journal.bytes + (size - node.size) > this.opts.journalCap) throw new P9Error(ERRNO.ENOSPC, JOURNAL_FULL);
  }

  private truncate(node: Inode, size: number): void {
    this.contentChanging(node);
    const t = this.tick();
    this.journal.truncate(node.ino, size, { size: node.size, base: node.baseLen });
    this.publisher.truncated(node.ino, size);
    this.ns.update(node.ino, {
      size,
      base_len: Math.min(node.baseLen, size),
      version: nextVersion(node.version),
      mtime: t,
      ctime: t,
      dirty: 1,
      from_r2: 0,
    });
  }

  /**
   * Twrite: journaled before the reply leaves. With `append`, at the end of
   * the file whatever the offset. Returns how many bytes were written: as
   * Linux's generic_write_check_limits (fs/read_write.c; mm/filemap.c in
   * older kernels) does at s_maxbytes, a write at or past max_file_bytes is
   * EFBIG and one that crosses it is cut short there. A write of nothing
   * succeeds anywhere (generic_write_checks returns before the limits) and
   * changes nothing. A write by `by` clears set-ID bits as Linux's
   * file_remove_privs does (setid.ts).
   */
  write(ino: number, offset: number, data: Uint8Array, append: boolean, by: number): number {
    const node = this.get(ino);
    if (!isReg(node)) throw new P9Error(isDir(node) ? ERRNO.EISDIR : ERRNO.EINVAL);
    if (data.byteLength === 0) return 0;
    const at = append ? node.size : offset;
    const max = this.opts.maxFileBytes;
    if (at >= max) throw new P9Error(ERRNO.EFBIG, TOO_LARGE);
    const bytes = at + data.byteLength > max ? data.subarray(0, max - at) : data;
    // The cap counts what the write adds: its new bytes and any hole it
    // leaves past the end, less what it overwrites or fills.
    const span = { size: node.size, base: node.baseLen };
    if (this.journal.bytes + this.journal.growth(ino, at, bytes.byteLength, span) > this.opts.journalCap) {
      throw new P9Error(ERRNO.ENOSPC, JOURNAL_FULL);
    }
    this.contentChanging(node);
    const counts = this.journal.write(ino, at, bytes, span);
    const t = this.tick();
    const mode = modeAfterWrite(node.mode, by);
    this.ns.update(ino, {
      ...counts,
      size: Math.max(node.size, at + bytes.byteLength),
      mode: mode !== node.mode ? mode : undefined,
      version: nextVersion(node.version),
      mtime: t,
      ctime: t,
      dirty: 1,
      from_r2: 0,
    });
    this.publisher.changed(ino);
    if (this.journal.fileBytes(ino) > JOURNAL_PER_FILE_PUBLISH) {
      this.publisher.schedule(ino, 0);
      this.scheduledByCreate.delete(ino);
    }
    return bytes.byteLength;
  }

  /**
   * A write or truncate: the file will be published as a new object, so its
   * old one's cache entry is not worth its room (dropped at the first change
   * after a publish; later ones find it gone), and its streams' readahead goes.
   */
  private contentChanging(node: Inode): void {
    if (!node.dirty && node.key !== null) this.cache.drop(node.key);
    this.readahead.cancelIno(node.ino);
  }

  /** A fid was clunked: what its stream fetched ahead is no one's now. */
  forgetStream(stream: string): void {
    this.readahead.cancel(stream);
  }

  /** A metadata change outside setattr (an xattr): republished later with the rest. */
  touchMeta(ino: number): void {
    this.ns.update(ino, { ctime: this.tick() });
    this.publisher.changed(ino);
  }

  /** A fid was opened on the inode (counted in memory: Namespace.openCount). */
  opened(ino: number): void {
    if (this.ns.get(ino)) this.ns.setOpenCount(ino, this.ns.openCount(ino) + 1);
  }

  /** A fid open on the inode was clunked (or its session ended). */
  closed(ino: number): void {
    const node = this.ns.get(ino);
    if (!node) return;
    const opens = Math.max(0, this.ns.openCount(ino) - 1);
    this.ns.setOpenCount(ino, opens);
    if (opens > 0) return;
    // Removed while open (a directory too: rmdir while a process had it open): it goes now.
    if (node.nlink === 0 && this.ns.pathOf(ino) === null) {
      this.forget(node);
      return;
    }
    if (!node.dirty) return;
    if (this.scheduledByCreate.delete(ino)) this.publisher.scheduleAfterClose(ino, this.opts.publishDelayMs);
    else this.publisher.schedule(ino, this.opts.publishDelayMs);
  }

  /**
   * The share's object starts: `inos` are the inodes of the open fids that
   * have rows (worker/session-store.ts), one entry per fid.
   */
  countOpens(inos: Iterable<number>): void {
    for (const ino of inos) this.ns.setOpenCount(ino, this.ns.openCount(ino) + 1);
  }

  /**
   * After a restart ended sessions: fids that had no row yet (a plain
   * session writes its fids in batches, worker/session.ts) are gone with
   * them, and so is what they held. An inode they kept after its last name
   * went is forgotten, and a changed file that waited for their close is
   * scheduled for publishing, as their clunks would have done.
   */
  settleLostFids(): void {
    for (const ino of this.ns.heldByFids()) {
      if (this.ns.openCount(ino) > 0) continue;
      const node = this.ns.get(ino);
      if (!node) continue;
      if (node.nlink === 0 && this.ns.pathOf(ino) === null) this.forget(node);
      else if (node.dirty) this.publisher.schedule(ino, this.opts.publishDelayMs);
    }
  }

  async runDue(): Promise<void> {
    await this.publisher.runDue();
  }

  nextWakeup(): number | null {
    return this.publisher.nextWakeup();
  }

  /** The namespace's consistency (fsck.ts). */
  check(): CheckReport {
    return checkNamespace(this.ns.sqlStorage, (this.ns.meta("journal_bytes") as number | null) ?? 0);
  }

  async publishAll(): Promise<void> {
    await this.publisher.publishAll();
  }
}


const DOT = new Uint8Array([0x2e]);
const DOTDOT = new Uint8Array([0x2e, 0x2e]);

/** Copies a body into `into` (one copy, from the runtime's chunks). */
async function readInto(body: ReadableStream<Uint8Array>, into: Uint8Array, length: number, signal?: AbortSignal): Promise<number> {
  const reader = body.getReader();
  let filled = 0;
  try {
    while (filled < length) {
      if (signal?.aborted) throw signal.reason;
      const { value, done } = await reader.read();
      if (done) break;
      const n = Math.min(value.byteLength, length - filled);
      into.set(n === value.byteLength ? value : value.subarray(0, n), filled);
      filled += n;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return filled;
}
