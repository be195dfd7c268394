// SQLite tables of a share's Durable Object that hold the namespace.
// Applied on every construction; each statement is idempotent.

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
  `CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v)`,
];

/** The root directory's inode number. */
export const ROOT_INO = 1;
