// Content and attribute changes: Tsetattr (truncate, chmod, chown, times)
// and Twrite, both journaled before the reply leaves (journal.ts), within
// the share's largest file and its journal's cap.

import { ERRNO, P9Error, S_IFMT } from "../protocol/index.ts";
import type { FsContext } from "./fs-context.ts";
import { writePublishBytes } from "./publish-context.ts";
import { type InodeUpdate, nextVersion } from "./namespace.ts";
import { modeAfterChown, modeAfterWrite } from "./setid.ts";
import { type Inode, type Timespec, isDir, isReg } from "./types.ts";

/** Metadata-only changes wait this long, coalescing, before they are re-uploaded. */
const METADATA_DELAY_MS = 30_000;
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

export class Writes {
  constructor(private readonly c: FsContext) {}

  /**
   * Tsetattr by the user `by`. Size changes go through the journal; mode
   * keeps its type bits. A truncate or a chown that does not set the mode
   * clears set-ID bits as Linux's would (setid.ts); one that sets it is
   * taken as sent (Linux's client computed it, and notify_change never gets
   * both a mode and ATTR_KILL_S*ID).
   */
  setattr(ino: number, a: SetAttr, by: number): Inode {
    const node = this.c.get(ino);
    const t = this.c.tick();
    let content = false;
    if (a.size !== undefined && a.size !== node.size) {
      if (!isReg(node)) throw new P9Error(isDir(node) ? ERRNO.EISDIR : ERRNO.EINVAL);
      this.checkResize(node, a.size);
      this.truncate(node, a.size);
      content = true;
    } else if (a.size !== undefined) {
      // truncate(2) to the same size still updates mtime and ctime.
      this.c.ns.update(ino, { mtime: t });
    }
    const u: InodeUpdate = { ctime: t };
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
    this.c.ns.update(ino, u);
    this.c.publisher.changed(ino);
    const cur = this.c.get(ino);
    if (!content) this.c.publisher.schedule(ino, METADATA_DELAY_MS);
    else if (cur.opens === 0) this.c.publisher.schedule(ino, this.c.opts.publishDelayMs);
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
    if (size > this.c.opts.maxFileBytes) throw new P9Error(ERRNO.EFBIG, TOO_LARGE);
    if (this.c.journal.bytes + (size - node.size) > this.c.opts.journalCap) throw new P9Error(ERRNO.ENOSPC, JOURNAL_FULL);
  }

  private truncate(node: Inode, size: number): void {
    this.contentChanging(node);
    const t = this.c.tick();
    this.c.journal.truncate(node.ino, size, { size: node.size, base: node.baseLen });
    this.c.publisher.truncated(node.ino, size);
    this.c.ns.update(node.ino, {
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
    const node = this.c.get(ino);
    if (!isReg(node)) throw new P9Error(isDir(node) ? ERRNO.EISDIR : ERRNO.EINVAL);
    if (data.byteLength === 0) return 0;
    const at = append ? node.size : offset;
    const max = this.c.opts.maxFileBytes;
    if (at >= max) throw new P9Error(ERRNO.EFBIG, TOO_LARGE);
    const bytes = at + data.byteLength > max ? data.subarray(0, max - at) : data;
    // The cap counts what the write adds: its new bytes and any hole it
    // leaves past the end, less what it overwrites or fills.
    const span = { size: node.size, base: node.baseLen };
    if (this.c.journal.bytes + this.c.journal.growth(ino, at, bytes.byteLength, span) > this.c.opts.journalCap) {
      throw new P9Error(ERRNO.ENOSPC, JOURNAL_FULL);
    }
    this.contentChanging(node);
    const counts = this.c.journal.write(ino, at, bytes, span);
    const t = this.c.tick();
    const mode = modeAfterWrite(node.mode, by);
    this.c.ns.update(ino, {
      ...counts,
      size: Math.max(node.size, at + bytes.byteLength),
      mode: mode !== node.mode ? mode : undefined,
      version: nextVersion(node.version),
      mtime: t,
      ctime: t,
      dirty: 1,
      from_r2: 0,
    });
    this.c.publisher.changed(ino);
    if (this.c.journal.fileBytes(ino) > writePublishBytes(this.c.ns.options.journalCap)) {
      this.c.publisher.schedule(ino, 0);
      this.c.scheduledByCreate.delete(ino);
    }
    return bytes.byteLength;
  }

  /**
   * A write or truncate: the file will be published as a new object, so its
   * old one's cache entry is not worth its room (dropped at the first change
   * after a publish; later ones find it gone), and its streams' readahead goes.
   */
  private contentChanging(node: Inode): void {
    if (!node.dirty && node.key !== null) this.c.cache.drop(node.key);
    this.c.readahead.cancelIno(node.ino);
  }
}
