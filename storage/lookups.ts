// Reading the namespace: lookups, directory listings, symlink targets and
// statfs. A lookup lists its directory from R2 first when the listing is
// stale (importer.ts); nothing here changes the namespace otherwise.

import { ERRNO, P9Error } from "../protocol/index.ts";
import { type FsContext, SYMLINK_MAX } from "./fs-context.ts";
import { NAME_MAX } from "./keys.ts";
import { COOKIE_DOT, COOKIE_DOTDOT, afterIdOf, cookieOf } from "./namespace.ts";
import { ROOT_INO } from "./schema.ts";
import { type Entry, type Inode, type StatFs, isDir, isLink } from "./types.ts";

const STATFS_BSIZE = 4096;
/** Inodes a share may hold, as statfs reports it. */
const STATFS_FILES = 2 ** 32;
const DOT = new Uint8Array([0x2e]);
const DOTDOT = new Uint8Array([0x2e, 0x2e]);

export class Lookups {
  constructor(
    private readonly c: FsContext,
    /** The binding, counting its calls. */
    private readonly bucket: () => R2Bucket,
  ) {}

  /**
   * The child `name` of a directory. "." is the directory, ".." its parent,
   * never above `top` (the attach point).
   */
  async lookup(dirIno: number, name: Uint8Array, top: number): Promise<Inode> {
    const dir = this.c.get(dirIno);
    if (!isDir(dir)) throw new P9Error(ERRNO.ENOTDIR);
    if (name.byteLength > NAME_MAX) throw new P9Error(ERRNO.ENAMETOOLONG);
    if (name.byteLength === 1 && name[0] === 0x2e) return dir;
    if (name.byteLength === 2 && name[0] === 0x2e && name[1] === 0x2e) {
      return dir.ino === top || dir.ino === ROOT_INO ? dir : this.c.get(dir.parent);
    }
    await this.c.refresh(dir);
    const child = this.c.ns.lookup(dirIno, name);
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
      const parent = dir.ino === top || dir.ino === ROOT_INO ? dir : (this.c.ns.get(dir.parent) ?? dir);
      out.push({ name: DOTDOT, cookie: COOKIE_DOTDOT, inode: parent });
    }
    if (out.length < limit) {
      for (const e of this.c.ns.entries(dir.ino, afterIdOf(cookie), limit - out.length)) {
        out.push({ name: e.name, cookie: cookieOf(e.id), inode: e.inode });
      }
    }
    return out;
  }

  async readlink(link: Inode): Promise<Uint8Array> {
    if (!isLink(link)) throw new P9Error(ERRNO.EINVAL);
    const cached = this.c.ns.target(link.ino);
    if (cached) return cached;
    if (link.key === null || link.size > SYMLINK_MAX) throw new P9Error(ERRNO.EIO, "symlink without a target");
    // A symlink put by s3fs: the object's content is the target.
    const obj = await this.bucket().get(link.key);
    if (obj === null) throw new P9Error(ERRNO.ESTALE);
    const target = new Uint8Array(await obj.arrayBuffer());
    this.c.ns.setTarget(link.ino, target);
    return target;
  }

  statfs(): StatFs {
    const { bytes, inodes } = this.c.ns.usage();
    const blocks = Math.floor(this.c.opts.quotaBytes / STATFS_BSIZE);
    const used = Math.ceil(bytes / STATFS_BSIZE);
    // What the journal may still take bounds what a write can use now.
    const journalFree = Math.floor(Math.max(0, this.c.opts.journalCap - this.c.journal.bytes) / STATFS_BSIZE);
    const free = Math.max(0, blocks - used);
    return {
      bsize: STATFS_BSIZE,
      blocks,
      bfree: free,
      bavail: Math.min(free, journalFree),
      files: STATFS_FILES,
      ffree: Math.max(0, STATFS_FILES - inodes),
      fsid: this.c.opts.fsid,
      namelen: NAME_MAX,
    };
  }
}
