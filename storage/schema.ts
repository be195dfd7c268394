// SQLite tables of a share's Durable Object that hold the namespace, the
// write journal, extended attributes, locks and the publisher's work.
// Applied on every construction: statements are idempotent, and columns
// added since a table was first created are added by `migrate`. (The meta
// table is meta.ts's.) This file runs the DDL and the one-off migrations of
// the tables it creates; every other statement on them lives in the table's
// owner (test/node/sql-owners.test.ts).

import { Meta } from "./meta.ts";

/** The root directory's inode number. */
export const ROOT_INO = 1;

export const NAMESPACE_SCHEMA = [
  // ino is qid.path: AUTOINCREMENT never reuses a number, even after deletes
  // (Linux returns wrong file contents on colliding qids: docs/9p.md).
  `CREATE TABLE IF NOT EXISTS inode (
    ino INTEGER PRIMARY KEY AUTOINCREMENT,
    mode INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    nlink INTEGER NOT NULL DEFAULT 1,
    atime_sec INTEGER NOT NULL DEFAULT 0, atime_nsec INTEGER NOT NULL DEFAULT 0,
    mtime_sec INTEGER NOT NULL DEFAULT 0, mtime_nsec INTEGER NOT NULL DEFAULT 0,
    ctime_sec INTEGER NOT NULL DEFAULT 0, ctime_nsec INTEGER NOT NULL DEFAULT 0,
    btime_sec INTEGER NOT NULL DEFAULT 0, btime_nsec INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1,
    key TEXT,
    etag TEXT,
    target BLOB,
    parent INTEGER NOT NULL DEFAULT 1,
    listed_at INTEGER,
    from_r2 INTEGER NOT NULL DEFAULT 0
  )`,
  // id orders a directory's entries and makes its readdir cookies: it only
  // grows, so "continue after entry N" stays meaningful when entries come and go.
  `CREATE TABLE IF NOT EXISTS dirent (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent INTEGER NOT NULL,
    name BLOB NOT NULL,
    ino INTEGER NOT NULL,
    UNIQUE (parent, name)
  )`,
  `CREATE INDEX IF NOT EXISTS dirent_order ON dirent (parent, id)`,
  `CREATE INDEX IF NOT EXISTS dirent_ino ON dirent (ino)`,
  // The write journal: disjoint byte ranges of a file written since it was
  // last published, each row well under SQLite's 2 MB limit.
  // `len` is length(data), kept so that range queries never load the blobs.
  `CREATE TABLE IF NOT EXISTS extent (
    ino INTEGER NOT NULL,
    off INTEGER NOT NULL,
    len INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (ino, off)
  ) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS xattr (
    ino INTEGER NOT NULL,
    name BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (ino, name)
  ) WITHOUT ROWID`,
  // R2 work that must survive a crash: objects to delete (with the etag they
  // had, when known), and uploads in flight (kind 'upload', with their inode),
  // so that a crash mid-upload cannot leave an object nobody owns.
  `CREATE TABLE IF NOT EXISTS job (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    etag TEXT,
    ino INTEGER,
    not_before INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0
  )`,
  `CREATE TABLE IF NOT EXISTS upload (
    ino INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    upload_id TEXT NOT NULL,
    part_size INTEGER NOT NULL,
    size INTEGER NOT NULL,
    version INTEGER NOT NULL,
    parts TEXT NOT NULL DEFAULT '[]'
  )`,
  // One row per lock entry, keyed by id so that a Tlock writes only the
  // entries it changes; by ino to load a file's locks, by sid to drop a session's.
  `CREATE TABLE IF NOT EXISTS lock (
    id INTEGER PRIMARY KEY,
    ino INTEGER NOT NULL,
    sid TEXT NOT NULL,
    proc_id INTEGER NOT NULL,
    client_id BLOB NOT NULL,
    type INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL
  )`,
  `CREATE INDEX IF NOT EXISTS lock_ino ON lock (ino)`,
];

/** The lock table of the first release had no key: rebuilt with one, keeping every lock. */
function migrateLocks(sql: SqlStorage): void {
  if (!columns(sql, "lock").has("id")) {
    sql.exec(`ALTER TABLE lock RENAME TO lock_unkeyed`);
    sql.exec(`DROP INDEX IF EXISTS lock_ino`);
    sql.exec(NAMESPACE_SCHEMA.find((s) => s.includes("TABLE IF NOT EXISTS lock ("))!);
    sql.exec(
      `INSERT INTO lock (ino, sid, proc_id, client_id, type, start, end)
       SELECT ino, sid, proc_id, client_id, type, start, end FROM lock_unkeyed`,
    );
    sql.exec(`DROP TABLE lock_unkeyed`);
    sql.exec(`CREATE INDEX IF NOT EXISTS lock_ino ON lock (ino)`);
  }
  sql.exec(`CREATE INDEX IF NOT EXISTS lock_sid ON lock (sid)`);
}

/** Columns added to inode after its first release: name and definition. */
const INODE_COLUMNS: [string, string][] = [
  // Bytes at the start of the object at `key` that are still the file's
  // content: truncate-then-extend reads zeros, not old R2 bytes.
  ["base_len", "INTEGER NOT NULL DEFAULT 0"],
  // The content or its place in R2 differs from what R2 holds.
  ["dirty", "INTEGER NOT NULL DEFAULT 0"],
  // When the publisher may upload it (ms), or null.
  ["publish_after", "INTEGER"],
  // Fids open on it, across sessions.
  ["opens", "INTEGER NOT NULL DEFAULT 0"],
  ["rdev", "INTEGER NOT NULL DEFAULT 0"],
  // Times another tool replaced the object: open fids read ESTALE after it.
  ["replaced", "INTEGER NOT NULL DEFAULT 0"],
  // Bytes of this file in the journal.
  ["jbytes", "INTEGER NOT NULL DEFAULT 0"],
  // Bytes of this file that are neither in its R2 object nor in the journal:
  // the hole a truncate up or a write past the end left, which its publish
  // uploads as zeros (holeBytes).
  ["hbytes", "INTEGER NOT NULL DEFAULT 0"],
];

/**
 * SQL for the hole of the inode row `t` (a table name or alias): bytes of
 * [base_len, size) no extent covers. Extents never reach past the size
 * (a truncate cuts them), so that is the range's length less the extents'
 * bytes within it. 0 for anything but a regular file.
 */
export function holeBytes(t: string): string {
  return `CASE WHEN (${t}.mode & 61440) = 32768 THEN ${t}.size - ${t}.base_len - (SELECT coalesce(sum(max(0, min(e.off + e.len, ${t}.size) - max(e.off, ${t}.base_len))), 0) FROM extent e WHERE e.ino = ${t}.ino) ELSE 0 END`;
}

/**
 * SQL for the link count the directory row `t` must have: 2 (its entry and
 * its ".") plus one ".." per subdirectory, as Linux's local file systems
 * count; 0 once removed (no entry names it; the root has none and is never
 * removed).
 */
export function dirLinks(t: string): string {
  return `CASE WHEN ${t}.ino = ${ROOT_INO} OR EXISTS (SELECT 1 FROM dirent d WHERE d.ino = ${t}.ino)
    THEN 2 + (SELECT count(*) FROM dirent d JOIN inode c ON c.ino = d.ino WHERE d.parent = ${t}.ino AND (c.mode & 61440) = 16384)
    ELSE 0 END`;
}

const columns = (sql: SqlStorage, table: string) =>
  new Set(sql.exec(`PRAGMA table_info(${table})`).toArray().map((r) => r.name as string));

export function migrate(sql: SqlStorage): void {
  const meta = new Meta(sql);
  for (const stmt of NAMESPACE_SCHEMA) sql.exec(stmt);
  const have = columns(sql, "inode");
  for (const [name, def] of INODE_COLUMNS) {
    if (!have.has(name)) sql.exec(`ALTER TABLE inode ADD COLUMN ${name} ${def}`);
  }
  // Journals written before extents kept their length: add it, never drop data.
  if (!columns(sql, "extent").has("len")) {
    sql.exec(`ALTER TABLE extent ADD COLUMN len INTEGER NOT NULL DEFAULT 0`);
    sql.exec(`UPDATE extent SET len = length(data)`);
  }
  if (!have.has("jbytes")) {
    sql.exec(`UPDATE inode SET jbytes = (SELECT coalesce(sum(len), 0) FROM extent WHERE extent.ino = inode.ino)`);
  }
  if (!have.has("hbytes")) {
    // Holes left before they were counted: count them now, in the share's total too.
    sql.exec(`UPDATE inode SET hbytes = ${holeBytes("inode")}`);
    const holes = sql.exec(`SELECT coalesce(sum(hbytes), 0) AS n FROM inode`).one().n as number;
    if (holes > 0) meta.add("journal_bytes", holes);
  }
  // Directories had nlink 1 before their links were counted: count them
  // once; from then on every entry added or removed keeps them (namespace.ts).
  if (!meta.has("dir_nlink")) {
    sql.exec(`UPDATE inode SET nlink = ${dirLinks("inode")} WHERE (mode & 61440) = 16384`);
    meta.set("dir_nlink", 1);
  }
  const job = columns(sql, "job");
  if (!job.has("etag")) sql.exec(`ALTER TABLE job ADD COLUMN etag TEXT`);
  if (!job.has("ino")) sql.exec(`ALTER TABLE job ADD COLUMN ino INTEGER`);
  sql.exec(`CREATE INDEX IF NOT EXISTS inode_publish ON inode (publish_after) WHERE publish_after IS NOT NULL`);
  // Which inode's content lives at a key (the importer must not take it for a new file).
  sql.exec(`CREATE INDEX IF NOT EXISTS inode_key ON inode (key) WHERE key IS NOT NULL`);
  sql.exec(`CREATE INDEX IF NOT EXISTS job_key ON job (key)`);
  migrateLocks(sql);
}


