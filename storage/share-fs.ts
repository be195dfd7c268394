// The share filesystem: the namespace in SQLite, file content in R2.
//
// Concurrency: methods that return a Promise await R2 and may interleave
// with other requests at those awaits; they re-read what they need from
// SQLite after each await. Synchronous methods never interleave.

import { ERRNO, P9Error, S_IF, S_IFMT } from "../protocol/index.ts";
import { Importer } from "./importer.ts";
import { NAME_MAX } from "./keys.ts";
import { COOKIE_DOT, COOKIE_DOTDOT, Namespace, afterIdOf, cookieOf } from "./namespace.ts";
import { ROOT_INO } from "./schema.ts";
import type { Entry, Inode, ShareOptions, StatFs } from "./types.ts";

/** PATH_MAX: the longest symlink target Linux reads. */
const SYMLINK_MAX = 4096;
const STATFS_BSIZE = 4096;
/** Inodes a share may hold, as statfs reports it. */
const STATFS_FILES = 2 ** 32;

export const isDir = (i: Inode) => (i.mode & S_IFMT) === S_IF.DIR;
export const isReg = (i: Inode) => (i.mode & S_IFMT) === S_IF.REG;
export const isLink = (i: Inode) => (i.mode & S_IFMT) === S_IF.LNK;

export class ShareFs {
  readonly ns: Namespace;
  private readonly importer: Importer;

  constructor(
    sql: SqlStorage,
    private readonly bucket: R2Bucket,
    private readonly opts: ShareOptions,
    log: (msg: string) => void = () => {},
  ) {
    this.ns = new Namespace(sql, opts);
    this.importer = new Importer(this.ns, bucket, log);
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

  /** Makes sure a directory reflects R2 as of at most the revalidation time ago. */
  async refresh(dir: Inode): Promise<void> {
    await this.importer.ensureFresh(dir, this.opts.revalidateMs);
  }

  /** R2 list calls this filesystem made since the object started. */
  get listCalls(): number {
    return this.importer.lists;
  }

  /** Forces a new listing of a directory from R2. */
  async reimport(dir: Inode): Promise<void> {
    await this.importer.importDir(dir);
  }

  /**
   * The child `name` of a directory. `name` was checked by the caller
   * (checkLookupName). "." is the directory, ".." its parent, never above
   * `top` (the attach point).
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
   * Reads up to into.byteLength bytes at `offset` into `into` and returns how
   * many were read. The read is pinned to the content version the inode
   * records: if another writer replaced the object meanwhile, the inode is
   * refreshed and the read fails with ESTALE rather than mix two versions.
   */
  async read(file: Inode, offset: number, into: Uint8Array, signal?: AbortSignal): Promise<number> {
    const length = Math.min(into.byteLength, Math.max(0, file.size - offset));
    // R2 throws on an empty range (or any range of an empty object): never ask.
    if (length === 0 || file.key === null) return 0;
    const obj = await this.bucket.get(file.key, {
      range: { offset, length },
      onlyIf: file.etag ? { etagMatches: file.etag } : undefined,
    });
    if (obj === null) throw new P9Error(ERRNO.ESTALE, "the object is gone from R2");
    if (!("body" in obj)) {
      await this.noteChanged(file);
      throw new P9Error(ERRNO.ESTALE, "the object changed in R2 while open");
    }
    return readInto(obj.body, into, length, signal);
  }

  private async noteChanged(file: Inode): Promise<void> {
    const dir = this.ns.get(file.parent);
    if (dir) await this.importer.importDir(dir);
  }

  async readlink(link: Inode): Promise<Uint8Array> {
    if (!isLink(link)) throw new P9Error(ERRNO.EINVAL);
    const cached = this.ns.target(link.ino);
    if (cached) return cached;
    if (link.key === null || link.size > SYMLINK_MAX) throw new P9Error(ERRNO.EIO, "symlink without a target");
    // A symlink put by s3fs: the object's content is the target.
    const obj = await this.bucket.get(link.key);
    if (obj === null) throw new P9Error(ERRNO.ESTALE);
    const target = new Uint8Array(await obj.arrayBuffer());
    this.ns.setTarget(link.ino, target);
    return target;
  }

  statfs(): StatFs {
    const { bytes, inodes } = this.ns.usage();
    const blocks = Math.floor(this.opts.quotaBytes / STATFS_BSIZE);
    const used = Math.ceil(bytes / STATFS_BSIZE);
    return {
      bsize: STATFS_BSIZE,
      blocks,
      bfree: Math.max(0, blocks - used),
      files: STATFS_FILES,
      ffree: Math.max(0, STATFS_FILES - inodes),
      fsid: this.opts.fsid,
      namelen: NAME_MAX,
    };
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
