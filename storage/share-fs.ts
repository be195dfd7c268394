// The share filesystem: the namespace in SQLite, file content in R2 plus a
// write journal in SQLite, published back to R2 as plain objects. This class
// is the door the handlers use; its parts each keep one concern: the read
// path (read-path.ts), namespace changes (changes.ts), setattr and write
// (writes.ts), removing a name (removal.ts), listings (importer.ts) and
// publishing (publisher.ts).
//
// Concurrency: methods that return a Promise await R2 and may interleave
// with other requests at those awaits; they re-read what they need from
// SQLite after each await. Synchronous methods never interleave, so every
// namespace change (create, rename, unlink, write) is atomic.
// Permissions are the client's to check (Linux does with access=client);
// who may open a share at all is decided before its socket is accepted.

import { type DevNumbers, ERRNO, P9Error } from "../protocol/index.ts";
import { Changes } from "./changes.ts";
import { ShareClock } from "./clock.ts";
import type { CacheStats, ContentCache } from "./content-cache.ts";
import { type CheckReport, checkNamespace } from "./fsck.ts";
import type { FsContext } from "./fs-context.ts";
import { Importer } from "./importer.ts";
import { Jobs } from "./jobs.ts";
import { Journal } from "./journal.ts";
import { type HeldLock, type LockRequest, LockTable } from "./locks.ts";
import { Lookups } from "./lookups.ts";
import { Namespace } from "./namespace.ts";
import { Opens } from "./opens.ts";
import { type PublishStats, Publisher } from "./publisher.ts";
import { type R2Calls, countedBucket, noCalls } from "./r2-calls.ts";
import { ReadPath } from "./read-path.ts";
import type { Readahead, ReadaheadStats } from "./readahead.ts";
import { Removal } from "./removal.ts";
import { ROOT_INO } from "./schema.ts";
import { type Entry, type Inode, type ShareOptions, type StatFs, isDir } from "./types.ts";
import { type SetAttr, Writes } from "./writes.ts";
import { Xattrs } from "./xattrs.ts";

export { CACHE_WRITES } from "./read-path.ts";
export { isDir, isLink, isReg } from "./types.ts";
export type { SetAttr } from "./writes.ts";

export class ShareFs {
  // The stores: for this class and its parts. Handlers use the methods below (tests may look in).
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
  private readonly reads: ReadPath;
  private readonly removal: Removal;
  private readonly changes: Changes;
  private readonly writes: Writes;
  private readonly opens: Opens;
  private readonly lookups: Lookups;
  /** Times that never repeat or go back, across restarts too (meta clock_ns). */
  private readonly clock: ShareClock;
  /** The binding as set, and the same counting its calls (what every call goes through). */
  private counted: R2Bucket;
  /** New files whose publish time their create set (FsContext.scheduledByCreate). */
  private readonly scheduledByCreate = new Set<number>();

  constructor(
    /** Kept only for the checker (fsck.ts), the one reader of every table. */
    private readonly sql: SqlStorage,
    private bucket: R2Bucket,
    private readonly opts: ShareOptions,
    log: (msg: string) => void = () => {},
    reserve: (n: number) => Promise<() => void> = async () => () => {},
    /** Takes bytes of the share's budget for a while, if there is room (readahead, cache fills); null if not. */
    hold: (n: number) => (() => void) | null = () => () => {},
    /**
     * Runs `f` after the reply of the request now running has been sent, its
     * SQLite rows counted as `what` (the share object meters them). A reply
     * that follows a storage write waits until the write is durable (the
     * output gate), so the content cache writes nothing before a reply.
     */
    afterReply: (what: string, f: () => void) => void = (_what, f) => void setTimeout(f, 0),
  ) {
    this.counted = countedBucket(bucket, this.r2Calls);
    this.ns = new Namespace(sql, opts);
    this.clock = new ShareClock({ get: () => this.ns.meta("clock_ns") as string | null, set: (v) => this.ns.setMeta("clock_ns", v) });
    this.journal = new Journal(sql, (n) => this.ns.setMeta("journal_bytes", n), (this.ns.meta("journal_bytes") as number | null) ?? 0);
    this.locks = new LockTable(sql, { perSession: opts.maxLocksPerSession, perInode: opts.maxLocksPerInode, perShare: opts.maxLocks });
    this.xattrs = new Xattrs(sql);
    const bucketNow = () => this.counted;
    this.reads = new ReadPath(sql, opts, {
      ns: this.ns,
      journal: this.journal,
      bucket: bucketNow,
      hold,
      afterReply,
      log,
      changedInR2: async (file) => {
        const dir = this.ns.get(file.parent);
        if (dir && isDir(dir)) await this.importer.importDir(dir);
      },
    });
    this.cache = this.reads.cache;
    this.readahead = this.reads.readahead;
    // Another tool replaced an object (a listing saw a new etag), or an inode went: its bytes are no one's now.
    this.ns.onContentGone = (ino, key) => {
      if (key !== null) this.cache.drop(key);
      this.readahead.cancelIno(ino);
    };
    this.publisher = new Publisher({
      ns: this.ns,
      journal: this.journal,
      jobs: new Jobs(sql),
      bucket: bucketNow,
      read: (f, off, into) => this.reads.readContent(f, off, into),
      reserve,
      log,
      // The bytes just uploaded are the new object's: the next read needs no R2 get.
      published: (oldKey, key, etag, body) => {
        if (oldKey !== null && oldKey !== key) this.cache.drop(oldKey);
        this.cache.put(key, etag, body, true);
      },
    });
    const { ns, journal, locks, xattrs, publisher, cache, readahead } = this;
    this.removal = new Removal({ ns, journal, locks, xattrs, publisher, forgotten: (ino) => this.scheduledByCreate.delete(ino) });
    this.importer = new Importer(ns, bucketNow, opts.prefix, log, publisher.deletions, this.removal);
    const c: FsContext = {
      ns,
      journal,
      publisher,
      cache,
      readahead,
      removal: this.removal,
      opts,
      scheduledByCreate: this.scheduledByCreate,
      tick: () => this.clock.tick(),
      get: (ino) => this.get(ino),
      refresh: (dir) => this.refresh(dir),
    };
    this.changes = new Changes(c);
    this.writes = new Writes(c);
    this.opens = new Opens(c);
    this.lookups = new Lookups(c, bucketNow);
  }

  /** Swaps the R2 binding (tests inject faults through a wrapper). */
  setBucket(b: R2Bucket): void {
    this.bucket = b;
    this.counted = countedBucket(b, this.r2Calls);
  }

  get r2(): R2Bucket {
    return this.bucket;
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

  /** The first name the inode has, and its directory (null for the root or an unlinked inode). */
  primaryLink(ino: number): { parent: number; name: Uint8Array } | null {
    return this.ns.primaryLink(ino);
  }

  /** A name the inode has (null for the root or an unlinked inode). */
  nameOf(ino: number): Uint8Array | null {
    return this.ns.nameOf(ino);
  }

  /** A symlink's target as the share keeps it, or null (not fetched from R2: readlink does). */
  knownTarget(ino: number): Uint8Array | null {
    return this.ns.target(ino);
  }

  get listCalls(): number {
    return this.importer.lists;
  }

  /** Makes sure a directory reflects R2 as of at most the revalidation time ago. */
  async refresh(dir: Inode): Promise<void> {
    await this.importer.ensureFresh(dir, this.opts.revalidateMs);
  }

  /** The child `name` of a directory; "." is the directory, ".." its parent, never above `top` (the attach point). */
  lookup(dirIno: number, name: Uint8Array, top: number): Promise<Inode> {
    return this.lookups.lookup(dirIno, name, top);
  }

  /** Directory entries after `cookie`, at most `limit` of them (lookups.ts). */
  readdir(dir: Inode, cookie: bigint, limit: number, top: number): Entry[] {
    return this.lookups.readdir(dir, cookie, limit, top);
  }

  readlink(link: Inode): Promise<Uint8Array> {
    return this.lookups.readlink(link);
  }

  statfs(): StatFs {
    return this.lookups.statfs();
  }

  /**
   * Reads up to into.byteLength bytes at `offset` into `into`; returns how
   * many (read-path.ts). The R2 part is read at one object version: `pin`
   * when the caller passes one (the files route, at the etag its response
   * named), else the etag `file` has, which Tread takes from the inode as the
   * read starts. If the object there changed meanwhile, the read fails with
   * ESTALE rather than mix versions.
   */
  async read(file: Inode, offset: number, into: Uint8Array, signal?: AbortSignal, pin?: string | null, stream?: string): Promise<number> {
    return this.reads.readContent(file, offset, into, signal, pin === undefined ? file.etag : pin, stream);
  }

  /** Tlcreate: a new regular file (mode's type bits are ignored). */
  create(dirIno: number, name: Uint8Array, mode: number, uid: number, gid: number): Promise<Inode> {
    return this.changes.create(dirIno, name, mode, uid, gid);
  }

  mkdir(dirIno: number, name: Uint8Array, mode: number, uid: number, gid: number): Promise<Inode> {
    return this.changes.mkdir(dirIno, name, mode, uid, gid);
  }

  symlink(dirIno: number, name: Uint8Array, target: Uint8Array, uid: number, gid: number): Promise<Inode> {
    return this.changes.symlink(dirIno, name, target, uid, gid);
  }

  mknod(dirIno: number, name: Uint8Array, mode: number, uid: number, gid: number, dev?: DevNumbers): Promise<Inode> {
    return this.changes.mknod(dirIno, name, mode, uid, gid, dev);
  }

  link(dirIno: number, name: Uint8Array, ino: number): Promise<void> {
    return this.changes.link(dirIno, name, ino);
  }

  rename(oldDirIno: number, oldName: Uint8Array, newDirIno: number, newName: Uint8Array): Promise<void> {
    return this.changes.rename(oldDirIno, oldName, newDirIno, newName);
  }

  unlink(dirIno: number, name: Uint8Array, rmdir: boolean): Promise<void> {
    return this.changes.unlink(dirIno, name, rmdir);
  }

  setattr(ino: number, a: SetAttr, by: number): Inode {
    return this.writes.setattr(ino, a, by);
  }

  /** Whether a file may be truncated to `size`, before anything changes (Twstat checks it before its rename). */
  checkResize(node: Inode, size: number): void {
    this.writes.checkResize(node, size);
  }

  write(ino: number, offset: number, data: Uint8Array, append: boolean, by: number): number {
    return this.writes.write(ino, offset, data, append, by);
  }

  /** A metadata change outside setattr (an xattr): republished later with the rest. */
  touchMeta(ino: number): void {
    this.ns.update(ino, { ctime: this.clock.tick() });
    this.publisher.changed(ino);
  }

  /** An xattr's value (ENODATA if none), or with an empty name the inode's xattr names as listxattr returns them. */
  xattr(ino: number, name: Uint8Array): Uint8Array {
    return name.byteLength === 0 ? this.xattrs.list(ino) : this.xattrs.get(ino, name);
  }

  /** Sets (or, with `remove`, removes) an xattr; its ctime moves and it is republished later. */
  setXattr(ino: number, name: Uint8Array, value: Uint8Array, flags: number, remove: boolean): void {
    this.xattrs.set(ino, name, value, flags, remove);
    this.touchMeta(ino);
  }

  /** Tlock: a POSIX lock's status (locks.ts). */
  lock(req: LockRequest, block: boolean, signal?: AbortSignal): Promise<number> {
    return this.locks.lock(req, block, signal);
  }

  /** Tgetlock: the first lock that would refuse `req`, or null. */
  lockConflict(req: LockRequest): HeldLock | null {
    return this.locks.conflict(req);
  }

  /** A session ended: its locks go. */
  dropSessionLocks(sid: string): void {
    this.locks.dropSession(sid);
  }

  /** A fid was clunked: what its stream fetched ahead is no one's now. */
  forgetStream(stream: string): void {
    this.readahead.cancel(stream);
  }

  opened(ino: number): void {
    this.opens.opened(ino);
  }

  closed(ino: number): void {
    this.opens.closed(ino);
  }

  countOpens(inos: Iterable<number>): void {
    this.opens.countOpens(inos);
  }

  settleLostFids(): void {
    this.opens.settleLostFids();
  }

  async runDue(): Promise<void> {
    await this.publisher.runDue();
  }

  nextWakeup(): number | null {
    return this.publisher.nextWakeup();
  }

  async publishAll(): Promise<void> {
    await this.publisher.publishAll();
  }

  /** Grows whenever the publisher may need the alarm earlier (worker/alarms.ts compares it). */
  get publishEpoch(): number {
    return this.publisher.epoch;
  }

  /** The earliest time the publisher's moves since the last call need the alarm by (Publisher.takeWakeBy). */
  takeWakeBy(): number {
    return this.publisher.takeWakeBy();
  }

  /** The storage side of the share object's stats (worker/stats.ts). */
  storageStats(): { journalBytes: number; publish: PublishStats; cache: CacheStats; readahead: ReadaheadStats } {
    const { journal, publisher, cache, readahead } = this;
    return { journalBytes: journal.bytes, publish: { ...publisher.stats }, cache: cache.stats(), readahead: readahead.stats() };
  }

  /** The namespace's consistency (fsck.ts). */
  check(): CheckReport {
    return checkNamespace(this.sql, (this.ns.meta("journal_bytes") as number | null) ?? 0);
  }
}
