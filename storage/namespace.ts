// The namespace in the Durable Object's SQLite: inodes and directory
// entries. Every method is synchronous (SQLite in a Durable Object is local),
// so none of them interleaves with another request.

import { S_IF } from "../protocol/index.ts";
import { Meta } from "./meta.ts";
import { ROOT_INO, migrate } from "./schema.ts";
import { type Inode, type ShareOptions, type Timespec, isDir } from "./types.ts";

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

export function blob(b: Uint8Array): ArrayBuffer {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength
    ? (b.buffer as ArrayBuffer)
    : (b.slice().buffer as ArrayBuffer);
}

/** An inode from its row; `opens` is counted in memory (Namespace.openCount), not read from the row. */
function toInode(r: Row, opens: number): Inode {
  const t = (p: string): Timespec => ({ sec: r[`${p}_sec`] as number, nsec: r[`${p}_nsec`] as number });
  const mode = r.mode as number;
  return {
    ino: r.ino as number,
    mode,
    uid: r.uid as number,
    gid: r.gid as number,
    size: r.size as number,
    // A directory never listed from R2 may have subdirectories there that
    // are not counted yet: 1 is what Linux file systems that keep no count
    // report (btrfs), and what find and fts take as "count them yourself".
    // (A removed directory has 0 either way.)
    nlink: isDir({ mode }) && r.listed_at === null && r.nlink !== 0 ? 1 : (r.nlink as number),
    rdev: r.rdev as number,
    atime: t("atime"),
    mtime: t("mtime"),
    ctime: t("ctime"),
    btime: t("btime"),
    version: r.version as number,
    key: r.key as string | null,
    etag: r.etag as string | null,
    parent: r.parent as number,
    baseLen: r.base_len as number,
    dirty: (r.dirty as number) !== 0,
    opens,
    fromR2: (r.from_r2 as number) !== 0,
    replaced: r.replaced as number,
    publishAfter: r.publish_after as number | null,
  };
}

/**
 * A cached inode after an update that keeps what the row decode derives
 * from other columns (nlink, from listed_at): the fields change as the
 * row's columns do, so the entry stays what a fresh read would give.
 */
function patched(i: Inode, u: InodeUpdate): Inode {
  const o: { -readonly [K in keyof Inode]: Inode[K] } = { ...i };
  if (u.mode !== undefined) o.mode = u.mode;
  if (u.uid !== undefined) o.uid = u.uid;
  if (u.gid !== undefined) o.gid = u.gid;
  if (u.size !== undefined) o.size = u.size;
  if (u.version !== undefined) o.version = u.version;
  if (u.key !== undefined) o.key = u.key;
  if (u.etag !== undefined) o.etag = u.etag;
  if (u.parent !== undefined) o.parent = u.parent;
  if (u.base_len !== undefined) o.baseLen = u.base_len;
  if (u.dirty !== undefined) o.dirty = u.dirty !== 0;
  if (u.publish_after !== undefined) o.publishAfter = u.publish_after;
  if (u.from_r2 !== undefined) o.fromR2 = u.from_r2 !== 0;
  if (u.replaced !== undefined) o.replaced = u.replaced;
  if (u.rdev !== undefined) o.rdev = u.rdev;
  if (u.atime !== undefined) o.atime = u.atime;
  if (u.mtime !== undefined) o.mtime = u.mtime;
  if (u.ctime !== undefined) o.ctime = u.ctime;
  return o;
}

/** A map key for (directory, name): names are bytes, compared exactly as SQLite compares the blobs. */
function entryKey(parent: number, name: Uint8Array): string {
  let s = `${parent}/`;
  for (let i = 0; i < name.byteLength; i++) s += String.fromCharCode(name[i]!);
  return s;
}

const INODE_COLS = [
  "ino",
  "mode",
  "uid",
  "gid",
  "size",
  "nlink",
  "rdev",
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
  "base_len",
  "dirty",
  "opens",
  "from_r2",
  "replaced",
  "listed_at",
  "publish_after",
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
  rdev?: number;
  mtime: Timespec;
  /** (Both mtime when absent: a new inode's times are its creation's.) */
  atime?: Timespec;
  ctime?: Timespec;
  btime?: Timespec;
  /** The R2 object holding the content, if it already exists there. */
  key: string | null;
  etag?: string | null;
  parent: number;
  fromR2: boolean;
  /** New files start dirty: they exist only in the namespace until published. */
  dirty?: boolean;
  /** When the publisher uploads it (Publisher.scheduleNew), or absent. */
  publishAfter?: number;
}

/** Inode columns a caller may change, by their SQL names. */
export interface InodeUpdate {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  nlink?: number;
  version?: number;
  key?: string | null;
  etag?: string | null;
  parent?: number;
  base_len?: number;
  dirty?: number;
  publish_after?: number | null;
  opens?: number;
  from_r2?: number;
  replaced?: number;
  rdev?: number;
  atime?: Timespec;
  mtime?: Timespec;
  ctime?: Timespec;
  /** Added to the journal counts (Journal.write's JournalChange); not part of Inode. */
  jbytes_add?: number;
  hbytes_add?: number;
}

/**
 * Inodes kept decoded in memory. A getattr storm (`ls -l`, `git status`)
 * reads the same few inodes over and over; a SQLite query and a row decode
 * per read were 40% of the object's CPU at 4 clients (bench: getattr rate).
 * Every inode write goes through this class, which drops the entry, so the
 * cache cannot be stale; there are no SQL transactions that could roll back.
 */
const INODE_CACHE_MAX = 8192;

/**
 * The columns whose change a client sees: Rgetattr's attributes, the qid
 * (version), and a directory's ".." (parent). A change to any of them
 * recalls the inode's leases (docs/leases.md rule 1); the rest (key, etag,
 * base_len, dirty, publish_after, from_r2, replaced, opens, the journal's
 * counts) are the publisher's bookkeeping, so a publish recalls nothing.
 */
const SEEN: ReadonlySet<string> = new Set(["mode", "uid", "gid", "size", "nlink", "version", "parent", "rdev", "atime", "mtime", "ctime"]);

export class Namespace {
  /**
   * Called when an inode's object stops being its content: another tool
   * replaced it (replaceContent: the old key's bytes), or the inode went
   * (remove). The share's content cache and readahead drop what they hold.
   */
  onContentGone: ((ino: number, key: string | null) => void) | null = null;
  /**
   * Called, synchronously and inside the change, when what a client sees of
   * an inode changed: its attributes, or a directory's entries. The share's
   * object recalls the leases on it (worker/leases.ts); storage knows
   * nothing of them (storage/ does not import worker/).
   */
  onChange: ((ino: number) => void) | null = null;
  private readonly cache = new Map<number, Inode>();
  /**
   * Fids open on each inode, across sessions (only inodes with some). Kept
   * in memory, not in the inode row: an open and a clunk write nothing
   * (opening a file to read it needs no durable write). The share's object
   * counts them again from the fid rows when it starts (worker/session.ts
   * says which fids have rows). The row's `opens` column is written only
   * for an inode that lost its last name while open, so that fsck (and a
   * restart) can tell it from an unreachable one.
   */
  private readonly opens = new Map<number, number>();
  /** Directories' listed_at, read on every lookup to decide on revalidation. */
  private readonly listed = new Map<number, number | null>();
  /**
   * Names found in directories: (directory, name) -> ino. Every walk looks
   * its names up, and a create looks its directory's path up (pathOf, one
   * primary link per level): a query each was a third of a small-file
   * create's CPU (bench: create + write + close). Entries change only
   * through link, unlink and unlinkAll below, which keep both maps right.
   */
  private readonly names = new Map<string, number>();
  /** ino -> its first link (primaryLink), for pathOf and isWithin. */
  private readonly primaries = new Map<number, { parent: number; name: Uint8Array }>();
  private readonly metaTable: Meta;

  constructor(
    private readonly sql: SqlStorage,
    readonly options: ShareOptions,
  ) {
    migrate(sql);
    this.metaTable = new Meta(sql);
    if (this.get(ROOT_INO) === null) {
      const t = nowSpec();
      sql.exec(
        `INSERT INTO inode (ino, mode, uid, gid, parent, nlink, atime_sec, atime_nsec, mtime_sec, mtime_nsec,
           ctime_sec, ctime_nsec, btime_sec, btime_nsec)
         VALUES (?, ?, ?, ?, ?, 2, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ROOT_INO,
        S_IF.DIR | options.dirMode,
        options.uid,
        options.gid,
        ROOT_INO,
        ...[t.sec, t.nsec, t.sec, t.nsec, t.sec, t.nsec, t.sec, t.nsec],
      );
    }
  }

  get(ino: number): Inode | null {
    const hit = this.cache.get(ino);
    if (hit) return hit;
    const rows = this.sql.exec(`SELECT ${INODE_COLS} FROM inode WHERE ino = ?`, ino).toArray();
    return rows.length ? this.remember(this.decode(rows[0]!)) : null;
  }

  private decode(r: Row): Inode {
    return toInode(r, this.opens.get(r.ino as number) ?? 0);
  }

  /** Fids open on the inode. */
  openCount(ino: number): number {
    return this.opens.get(ino) ?? 0;
  }

  /** Sets the number of fids open on the inode (no SQLite write). */
  setOpenCount(ino: number, n: number): void {
    if (n > 0) this.opens.set(ino, n);
    else this.opens.delete(ino);
    const hit = this.cache.get(ino);
    if (hit && hit.opens !== n) this.cache.set(ino, Object.freeze({ ...hit, opens: n }));
  }

  /** Inodes with open fids. */
  openInodes(): number[] {
    return [...this.opens.keys()];
  }

  /** Caches a freshly read inode; the oldest entry goes when the cache is full. */
  private remember(i: Inode): Inode {
    // Frozen: a caller that changed a cached inode would change every later read.
    Object.freeze(i);
    if (this.cache.size >= INODE_CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(i.ino, i);
    return i;
  }

  lookup(parent: number, name: Uint8Array): Inode | null {
    const k = entryKey(parent, name);
    const known = this.names.get(k);
    if (known !== undefined) {
      const i = this.get(known);
      if (i) return i;
      this.names.delete(k);
    }
    const rows = this.sql
      .exec(
        `SELECT ${INODE_COLS} FROM dirent JOIN inode ON inode.ino = dirent.ino WHERE dirent.parent = ? AND dirent.name = ?`,
        parent,
        blob(name),
      )
      .toArray();
    if (!rows.length) return null;
    const i = this.remember(this.decode(rows[0]!));
    bounded(this.names, k, i.ino);
    return i;
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
      .map((r) => ({ id: r.id as number, name: new Uint8Array(r.name as ArrayBuffer), inode: this.decode(r) }));
  }

  hasEntries(dir: number): boolean {
    return this.sql.exec(`SELECT 1 FROM dirent WHERE parent = ? LIMIT 1`, dir).toArray().length > 0;
  }

  /** When the directory was last imported from R2 (ms), or null if never. */
  listedAt(ino: number): number | null {
    const hit = this.listed.get(ino);
    if (hit !== undefined) return hit;
    const rows = this.sql.exec(`SELECT listed_at FROM inode WHERE ino = ?`, ino).toArray();
    const at = rows.length ? (rows[0]!.listed_at as number | null) : null;
    if (rows.length) this.noteListed(ino, at);
    return at;
  }

  private noteListed(ino: number, ms: number | null): void {
    if (this.listed.size >= INODE_CACHE_MAX && !this.listed.has(ino)) this.listed.delete(this.listed.keys().next().value!);
    this.listed.set(ino, ms);
  }

  setListedAt(ino: number, ms: number | null): void {
    const before = this.listedAt(ino);
    this.noteListed(ino, ms);
    // A directory listed before is listed again every revalidation period
    // (on a walk, a pure read): only the first time, which makes its nlink
    // known, needs a row write. A later time lost to a restart makes the next
    // lookup list it again sooner: an R2 call, never a wrong answer.
    if (before !== null && ms !== null) return;
    // A first listing makes a directory's nlink known: Rgetattr changes.
    this.onChange?.(ino);
    this.cache.delete(ino); // its nlink is known from now on (toInode)
    this.sql.exec(`UPDATE inode SET listed_at = ? WHERE ino = ?`, ms, ino);
  }

  create(n: NewInode): Inode {
    const a = n.atime ?? n.mtime;
    const c = n.ctime ?? n.mtime;
    const b = n.btime ?? n.mtime;
    const row = this.sql
      .exec(
        `INSERT INTO inode (mode, uid, gid, size, nlink, rdev, key, etag, parent, from_r2, base_len, dirty, atime_sec, atime_nsec,
           mtime_sec, mtime_nsec, ctime_sec, ctime_nsec, btime_sec, btime_nsec, publish_after)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ino`,
        n.mode,
        n.uid,
        n.gid,
        n.size ?? 0,
        // A directory: its entry and its "."; each subdirectory's ".." adds one (link).
        isDir(n) ? 2 : 1,
        n.rdev ?? 0,
        n.key,
        n.etag ?? null,
        n.parent,
        n.fromR2 ? 1 : 0,
        n.key !== null ? (n.size ?? 0) : 0,
        n.dirty ? 1 : 0,
        ...[a.sec, a.nsec, n.mtime.sec, n.mtime.nsec, c.sec, c.nsec, b.sec, b.nsec],
        n.publishAfter ?? null,
      )
      .one();
    return this.get(row.ino as number)!;
  }

  update(ino: number, u: InodeUpdate): void {
    const sets: string[] = [];
    const args: SqlStorageValue[] = [];
    for (const [k, v] of Object.entries(u)) {
      if (v === undefined) continue;
      if (k === "jbytes_add" || k === "hbytes_add") {
        if (v === 0) continue;
        const col = k.slice(0, 6);
        sets.push(`${col} = ${col} + ?`);
        args.push(v as number);
      } else if (k === "atime" || k === "mtime" || k === "ctime") {
        const t = v as Timespec;
        sets.push(`${k}_sec = ?`, `${k}_nsec = ?`);
        args.push(t.sec, t.nsec);
      } else {
        sets.push(`${k} = ?`);
        args.push(v as SqlStorageValue);
      }
    }
    if (!sets.length) return;
    if (this.onChange && Object.entries(u).some(([k, v]) => v !== undefined && SEEN.has(k))) this.onChange(ino);
    const hit = this.cache.get(ino);
    this.cache.delete(ino);
    this.sql.exec(`UPDATE inode SET ${sets.join(", ")} WHERE ino = ?`, ...args, ino);
    // Kept up to date rather than read again (the next request on a file
    // just written reads it: a clunk, a getattr). An nlink change goes back
    // to the row: what a directory reports depends on more than the column.
    if (hit && u.nlink === undefined) this.cache.set(ino, Object.freeze(patched(hit, u)));
  }

  /**
   * Forgets an inode that no entry and no open fid refers to any more: its
   * row. Its journal, xattrs and locks are their owners' to drop first
   * (removal.ts).
   */
  remove(ino: number): void {
    if (this.onContentGone) {
      const gone = this.get(ino);
      if (gone) this.onContentGone(ino, gone.key);
    }
    this.onChange?.(ino);
    this.cache.delete(ino);
    this.listed.delete(ino);
    this.primaries.delete(ino);
    this.sql.exec(`DELETE FROM inode WHERE ino = ?`, ino);
  }

  /**
   * A new entry. A directory's nlink is 2 + its subdirectories, as on
   * Linux's local file systems (each subdirectory's ".." links to it), so
   * an entry that is a directory adds one to its parent, and takes it back
   * when it goes (unlink): every mkdir, rmdir, rename and listing passes here.
   */
  link(parent: number, name: Uint8Array, ino: number): void {
    this.onChange?.(parent);
    this.sql.exec(`INSERT INTO dirent (parent, name, ino) VALUES (?, ?, ?)`, parent, blob(name), ino);
    bounded(this.names, entryKey(parent, name), ino);
    // A later link is never the first: a cached primary link stays right.
    if (this.isDirIno(ino)) this.addLinks(parent, 1);
  }

  unlink(parent: number, name: Uint8Array): void {
    this.onChange?.(parent);
    this.names.delete(entryKey(parent, name));
    const gone = this.sql.exec(`DELETE FROM dirent WHERE parent = ? AND name = ? RETURNING ino`, parent, blob(name)).toArray();
    for (const r of gone) {
      this.primaries.delete(r.ino as number);
      if (this.isDirIno(r.ino as number)) this.addLinks(parent, -1);
    }
  }

  /** Drops every entry of a directory that is going (the importer, for a prefix gone from R2). */
  unlinkAll(parent: number): void {
    this.onChange?.(parent);
    const prefix = `${parent}/`;
    for (const k of this.names.keys()) if (k.startsWith(prefix)) this.names.delete(k);
    for (const [ino, l] of this.primaries) if (l.parent === parent) this.primaries.delete(ino);
    this.sql.exec(`DELETE FROM dirent WHERE parent = ?`, parent);
  }

  private isDirIno(ino: number): boolean {
    const i = this.get(ino);
    return i !== null && isDir(i);
  }

  private addLinks(dir: number, delta: number): void {
    this.onChange?.(dir);
    this.cache.delete(dir);
    this.sql.exec(`UPDATE inode SET nlink = nlink + ? WHERE ino = ?`, delta, dir);
  }

  /** An object's content changed under the same key (another tool replaced it). */
  replaceContent(
    ino: number,
    c: { size: number; etag: string; mtime: Timespec; atime?: Timespec; ctime?: Timespec; mode?: number; uid?: number; gid?: number; rdev?: number },
  ): void {
    const cur = this.get(ino);
    if (!cur) return;
    this.onContentGone?.(ino, cur.key);
    this.update(ino, {
      size: c.size,
      base_len: c.size,
      etag: c.etag,
      version: nextVersion(cur.version),
      replaced: cur.replaced + 1,
      mtime: c.mtime,
      atime: c.atime,
      ctime: c.ctime ?? c.mtime,
      mode: c.mode,
      uid: c.uid,
      gid: c.gid,
      rdev: c.rdev,
    });
  }

  /** Entries of a directory that mirror an R2 listing: name -> ino. */
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

  /** The first name the inode has, and its directory (null for the root or an unlinked inode). */
  primaryLink(ino: number): { parent: number; name: Uint8Array } | null {
    const hit = this.primaries.get(ino);
    if (hit) return hit;
    const rows = this.sql.exec(`SELECT parent, name FROM dirent WHERE ino = ? ORDER BY id LIMIT 1`, ino).toArray();
    if (!rows.length) return null;
    const l = { parent: rows[0]!.parent as number, name: new Uint8Array(rows[0]!.name as ArrayBuffer) };
    bounded(this.primaries, ino, l);
    return l;
  }

  /** A name the inode has in some directory (null for the root or an unlinked inode). */
  nameOf(ino: number): Uint8Array | null {
    return this.primaryLink(ino)?.name ?? null;
  }

  /**
   * The inode's path from the root, by its first link at every level, or
   * null when it is no longer linked.
   */
  pathOf(ino: number): Uint8Array[] | null {
    const out: Uint8Array[] = [];
    let cur = ino;
    for (let depth = 0; cur !== ROOT_INO; depth++) {
      const l = this.primaryLink(cur);
      if (l === null || depth > 4096) return null;
      out.push(l.name);
      cur = l.parent;
    }
    return out.reverse();
  }

  /** Whether `ino` is `ancestor` or lies below it. */
  isWithin(ino: number, ancestor: number): boolean {
    let cur = ino;
    for (let depth = 0; depth <= 4096; depth++) {
      if (cur === ancestor) return true;
      if (cur === ROOT_INO) return false;
      const l = this.primaryLink(cur);
      if (!l) return false;
      cur = l.parent;
    }
    return false;
  }

  /**
   * Inodes that lost their last name, and changed files that wait for a
   * close to be published: what fids that a restart lost may have held.
   */
  heldByFids(): number[] {
    return this.sql
      .exec(`SELECT ino FROM inode WHERE ino != ? AND (nlink = 0 OR (dirty = 1 AND publish_after IS NULL))`, ROOT_INO)
      .toArray()
      .map((r) => r.ino as number);
  }

  setTarget(ino: number, target: Uint8Array): void {
    this.onChange?.(ino);
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

  /** The share's meta values (meta.ts). */
  meta(k: string): SqlStorageValue | null {
    return this.metaTable.get(k);
  }

  setMeta(k: string, v: SqlStorageValue): void {
    this.metaTable.set(k, v);
  }

  /** Whether some inode's content is the object at `key` (the importer must not take it for a new file). */
  keyInUse(key: string): boolean {
    return this.sql.exec(`SELECT 1 FROM inode WHERE key = ? LIMIT 1`, key).toArray().length > 0;
  }

  /** `keyInUse` for any key in [from, to). */
  keyInUseIn(from: string, to: string): boolean {
    return this.sql.exec(`SELECT 1 FROM inode WHERE key >= ? AND key < ? LIMIT 1`, from, to).toArray().length > 0;
  }

  /** The inodes whose content is the object at `key`, with the etag each knows it by. */
  ownersOf(key: string): { ino: number; etag: string | null }[] {
    return this.sql
      .exec(`SELECT ino, etag FROM inode WHERE key = ?`, key)
      .toArray()
      .map((r) => ({ ino: r.ino as number, etag: r.etag as string | null }));
  }

  /** Inodes whose publish time has come, earliest first. */
  duePublishes(now: number, limit: number): number[] {
    return this.sql
      .exec(`SELECT ino FROM inode WHERE publish_after IS NOT NULL AND publish_after <= ? ORDER BY publish_after LIMIT ?`, now, limit)
      .toArray()
      .map((r) => r.ino as number);
  }

  nextPublish(): number | null {
    const r = this.sql.exec(`SELECT min(publish_after) AS t FROM inode WHERE publish_after IS NOT NULL`).one();
    return (r.t as number | null) ?? null;
  }

  /** Inodes with content not yet in R2. */
  dirtyInodes(): number[] {
    return this.sql
      .exec(`SELECT ino FROM inode WHERE dirty = 1`)
      .toArray()
      .map((r) => r.ino as number);
  }

  /** Every inode below a directory (not the directory itself). */
  descendants(dir: number): number[] {
    const out: number[] = [];
    const stack = [dir];
    while (stack.length) {
      const d = stack.pop()!;
      for (const r of this.sql.exec(
        `SELECT dirent.ino AS ino, inode.mode AS mode FROM dirent JOIN inode ON inode.ino = dirent.ino WHERE dirent.parent = ?`,
        d,
      )) {
        out.push(r.ino as number);
        if (isDir({ mode: r.mode as number })) stack.push(r.ino as number);
      }
    }
    return out;
  }
}

/** Sets a cache entry; past INODE_CACHE_MAX entries the oldest goes. */
function bounded<K, V>(m: Map<K, V>, k: K, v: V): void {
  if (m.size >= INODE_CACHE_MAX && !m.has(k)) m.delete(m.keys().next().value!);
  m.set(k, v);
}

/** A map key for a byte-string name. */
export function hex(name: Uint8Array): string {
  let s = "";
  for (const b of name) s += b.toString(16).padStart(2, "0");
  return s;
}
