// The namespace in the Durable Object's SQLite: inodes and directory
// entries. Every method is synchronous (SQLite in a Durable Object is local),
// so none of them interleaves with another request.

import { S_IF } from "../protocol/index.ts";
import { NAMESPACE_SCHEMA, ROOT_INO } from "./schema.ts";
import type { Inode, ShareOptions, Timespec } from "./types.ts";

type Row = Record<string, SqlStorageValue>;

/** Readdir cookies 1 and 2 are "." and ".."; entry id N has cookie N + 2. */
export const COOKIE_DOT = 1n;
export const COOKIE_DOTDOT = 2n;
const COOKIE_BASE = 2n;

export function cookieOf(entryId: number): bigint {
  return BigInt(entryId) + COOKIE_BASE;
}

/** The entry id after which a cookie resumes (0 = from the first entry). */
export function afterIdOf(cookie: bigint): number {
  return cookie <= COOKIE_BASE ? 0 : Number(cookie - COOKIE_BASE);
}

function blob(b: Uint8Array): ArrayBuffer {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength
    ? (b.buffer as ArrayBuffer)
    : (b.slice().buffer as ArrayBuffer);
}

function toInode(r: Row): Inode {
  const t = (p: string): Timespec => ({ sec: r[`${p}_sec`] as number, nsec: r[`${p}_nsec`] as number });
  return {
    ino: r.ino as number,
    mode: r.mode as number,
    uid: r.uid as number,
    gid: r.gid as number,
    size: r.size as number,
    nlink: r.nlink as number,
    atime: t("atime"),
    mtime: t("mtime"),
    ctime: t("ctime"),
    btime: t("btime"),
    version: r.version as number,
    key: r.key as string | null,
    etag: r.etag as string | null,
    parent: r.parent as number,
  };
}

const INODE_COLS = [
  "ino",
  "mode",
  "uid",
  "gid",
  "size",
  "nlink",
  "atime_sec",
  "atime_nsec",
  "mtime_sec",
  "mtime_nsec",
  "ctime_sec",
  "ctime_nsec",
  "btime_sec",
  "btime_nsec",
  "version",
  "key",
  "etag",
  "parent",
]
  .map((c) => `inode.${c} AS ${c}`)
  .join(", ");

export function nowSpec(ms = Date.now()): Timespec {
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

/** The next qid.version: nonzero, within u32. */
export function nextVersion(v: number): number {
  return v >= 0xffffffff ? 1 : v + 1;
}

export interface NewInode {
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  mtime: Timespec;
  btime?: Timespec;
  key: string | null;
  etag?: string | null;
  parent: number;
  fromR2: boolean;
}

export class Namespace {
  constructor(
    private readonly sql: SqlStorage,
    private readonly opts: ShareOptions,
  ) {
    for (const stmt of NAMESPACE_SCHEMA) sql.exec(stmt);
    if (this.get(ROOT_INO) === null) {
      const t = nowSpec();
      sql.exec(
        `INSERT INTO inode (ino, mode, uid, gid, key, parent, nlink, atime_sec, atime_nsec, mtime_sec, mtime_nsec,
           ctime_sec, ctime_nsec, btime_sec, btime_nsec)
         VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ROOT_INO,
        S_IF.DIR | opts.dirMode,
        opts.uid,
        opts.gid,
        opts.prefix === "" ? "" : `${opts.prefix}/`,
        ROOT_INO,
        ...[t.sec, t.nsec, t.sec, t.nsec, t.sec, t.nsec, t.sec, t.nsec],
      );
    }
  }

  get(ino: number): Inode | null {
    const rows = this.sql.exec(`SELECT ${INODE_COLS} FROM inode WHERE ino = ?`, ino).toArray();
    return rows.length ? toInode(rows[0]!) : null;
  }

  lookup(parent: number, name: Uint8Array): Inode | null {
    const rows = this.sql
      .exec(
        `SELECT ${INODE_COLS} FROM dirent JOIN inode ON inode.ino = dirent.ino WHERE dirent.parent = ? AND dirent.name = ?`,
        parent,
        blob(name),
      )
      .toArray();
    return rows.length ? toInode(rows[0]!) : null;
  }

  /** Up to `limit` entries of a directory after entry id `afterId`, in id order. */
  entries(parent: number, afterId: number, limit: number): { id: number; name: Uint8Array; inode: Inode }[] {
    return this.sql
      .exec(
        `SELECT dirent.id AS id, dirent.name AS name, ${INODE_COLS}
         FROM dirent JOIN inode ON inode.ino = dirent.ino
         WHERE dirent.parent = ? AND dirent.id > ? ORDER BY dirent.id LIMIT ?`,
        parent,
        afterId,
        limit,
      )
      .toArray()
      .map((r) => ({ id: r.id as number, name: new Uint8Array(r.name as ArrayBuffer), inode: toInode(r) }));
  }

  /** When the directory was last imported from R2 (ms), or null if never. */
  listedAt(ino: number): number | null {
    const rows = this.sql.exec(`SELECT listed_at FROM inode WHERE ino = ?`, ino).toArray();
    return rows.length ? (rows[0]!.listed_at as number | null) : null;
  }

  setListedAt(ino: number, ms: number): void {
    this.sql.exec(`UPDATE inode SET listed_at = ? WHERE ino = ?`, ms, ino);
  }

  create(n: NewInode): Inode {
    const b = n.btime ?? n.mtime;
    const row = this.sql
      .exec(
        `INSERT INTO inode (mode, uid, gid, size, key, etag, parent, from_r2, atime_sec, atime_nsec, mtime_sec,
           mtime_nsec, ctime_sec, ctime_nsec, btime_sec, btime_nsec)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ino`,
        n.mode,
        n.uid,
        n.gid,
        n.size ?? 0,
        n.key,
        n.etag ?? null,
        n.parent,
        n.fromR2 ? 1 : 0,
        ...[n.mtime.sec, n.mtime.nsec, n.mtime.sec, n.mtime.nsec, n.mtime.sec, n.mtime.nsec, b.sec, b.nsec],
      )
      .one();
    return this.get(row.ino as number)!;
  }

  link(parent: number, name: Uint8Array, ino: number): void {
    this.sql.exec(`INSERT INTO dirent (parent, name, ino) VALUES (?, ?, ?)`, parent, blob(name), ino);
  }

  unlink(parent: number, name: Uint8Array): void {
    this.sql.exec(`DELETE FROM dirent WHERE parent = ? AND name = ?`, parent, blob(name));
  }

  /** An object's content changed under the same key (another tool replaced it). */
  replaceContent(ino: number, c: { size: number; etag: string; mtime: Timespec; mode?: number; uid?: number; gid?: number }): void {
    const cur = this.get(ino);
    if (!cur) return;
    this.sql.exec(
      `UPDATE inode SET size = ?, etag = ?, version = ?, mtime_sec = ?, mtime_nsec = ?, ctime_sec = ?, ctime_nsec = ?,
         mode = ?, uid = ?, gid = ? WHERE ino = ?`,
      c.size,
      c.etag,
      nextVersion(cur.version),
      c.mtime.sec,
      c.mtime.nsec,
      c.mtime.sec,
      c.mtime.nsec,
      c.mode ?? cur.mode,
      c.uid ?? cur.uid,
      c.gid ?? cur.gid,
      ino,
    );
  }

  /** Entries of a directory that came from an R2 listing: name -> ino. */
  importedEntries(parent: number): Map<string, { name: Uint8Array; ino: number }> {
    const out = new Map<string, { name: Uint8Array; ino: number }>();
    for (const r of this.sql.exec(
      `SELECT dirent.name AS name, dirent.ino AS ino FROM dirent JOIN inode ON inode.ino = dirent.ino
       WHERE dirent.parent = ? AND inode.from_r2 = 1`,
      parent,
    )) {
      const name = new Uint8Array(r.name as ArrayBuffer);
      out.set(hex(name), { name, ino: r.ino as number });
    }
    return out;
  }

  /** A name the inode has in some directory (null for the root or an unlinked inode). */
  nameOf(ino: number): Uint8Array | null {
    const rows = this.sql.exec(`SELECT name FROM dirent WHERE ino = ? LIMIT 1`, ino).toArray();
    return rows.length ? new Uint8Array(rows[0]!.name as ArrayBuffer) : null;
  }

  setTarget(ino: number, target: Uint8Array): void {
    this.sql.exec(`UPDATE inode SET target = ? WHERE ino = ?`, blob(target), ino);
  }

  target(ino: number): Uint8Array | null {
    const rows = this.sql.exec(`SELECT target FROM inode WHERE ino = ?`, ino).toArray();
    const t = rows[0]?.target;
    return t instanceof ArrayBuffer ? new Uint8Array(t) : null;
  }

  /** Bytes held by regular files, and the number of inodes. */
  usage(): { bytes: number; inodes: number } {
    const r = this.sql
      .exec(`SELECT coalesce(sum(CASE WHEN (mode & 61440) = 32768 THEN size ELSE 0 END), 0) AS bytes, count(*) AS n FROM inode`)
      .one();
    return { bytes: r.bytes as number, inodes: r.n as number };
  }

  get options(): ShareOptions {
    return this.opts;
  }
}

/** A map key for a byte-string name. */
export function hex(name: Uint8Array): string {
  let s = "";
  for (const b of name) s += b.toString(16).padStart(2, "0");
  return s;
}
