// Extended attributes, kept in SQLite beside the inode (not in R2).
// Limits are Linux's: names up to 255 bytes, values up to 64 KiB
// (XATTR_NAME_MAX, XATTR_SIZE_MAX in include/uapi/linux/limits.h).

import { ERRNO, P9Error, XATTR } from "../protocol/index.ts";
import { blob } from "./namespace.ts";

export const XATTR_NAME_MAX = 255;
export const XATTR_SIZE_MAX = 65536;

export class Xattrs {
  constructor(private readonly sql: SqlStorage) {}

  get(ino: number, name: Uint8Array): Uint8Array {
    const rows = this.sql.exec(`SELECT value FROM xattr WHERE ino = ? AND name = ?`, ino, blob(name)).toArray();
    if (!rows.length) throw new P9Error(ERRNO.ENODATA);
    return new Uint8Array(rows[0]!.value as ArrayBuffer);
  }

  /** The names, each followed by a NUL, as listxattr(2) returns them. */
  list(ino: number): Uint8Array {
    const names = this.sql
      .exec(`SELECT name FROM xattr WHERE ino = ? ORDER BY name`, ino)
      .toArray()
      .map((r) => new Uint8Array(r.name as ArrayBuffer));
    const out = new Uint8Array(names.reduce((n, x) => n + x.byteLength + 1, 0));
    let at = 0;
    for (const n of names) {
      out.set(n, at);
      at += n.byteLength + 1;
    }
    return out;
  }

  /**
   * Sets (or, for an empty value with flags 0 or REPLACE, removes) a name, as
   * Linux's Txattrcreate + Twrite + Tclunk do. CREATE fails with EEXIST when
   * the name exists, REPLACE with ENODATA when it does not.
   */
  set(ino: number, name: Uint8Array, value: Uint8Array, flags: number, remove: boolean): void {
    if (name.byteLength === 0 || name.byteLength > XATTR_NAME_MAX) throw new P9Error(ERRNO.ERANGE, "bad xattr name");
    if (value.byteLength > XATTR_SIZE_MAX) throw new P9Error(ERRNO.E2BIG);
    const exists = this.sql.exec(`SELECT 1 FROM xattr WHERE ino = ? AND name = ?`, ino, blob(name)).toArray().length > 0;
    if (flags & XATTR.CREATE && exists) throw new P9Error(ERRNO.EEXIST);
    if (flags & XATTR.REPLACE && !exists) throw new P9Error(ERRNO.ENODATA);
    if (remove) {
      if (!exists) throw new P9Error(ERRNO.ENODATA);
      this.sql.exec(`DELETE FROM xattr WHERE ino = ? AND name = ?`, ino, blob(name));
      return;
    }
    this.sql.exec(`INSERT OR REPLACE INTO xattr (ino, name, value) VALUES (?, ?, ?)`, ino, blob(name), blob(value));
  }

  /** Drops every xattr of an inode that is going (removal.ts). */
  dropInode(ino: number): void {
    this.sql.exec(`DELETE FROM xattr WHERE ino = ?`, ino);
  }
}
