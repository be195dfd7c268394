// Session state kept in the share object's SQLite, so that a session goes on
// after the object hibernates (its memory is dropped, its sockets stay): the
// negotiated version and msize, and every fid with its open state. When
// each is written (at once, or in a batch after a burst) is the session's
// choice (worker/session.ts); this file only reads and writes rows.

import type { Dialect } from "../protocol/index.ts";
import type { KeptReply } from "./session-types.ts";

export interface OpenState {
  /** Tlopen flags (9P2000.L), or Topen mode mapped to them. */
  flags: number;
  /**
   * The inode's `replaced` count when opened: reads fail with ESTALE once
   * another tool replaced the object (our own writes and publishes keep it).
   * Kept in the fid row's open_gen column.
   */
  replaced: number;
}

export interface FidState {
  fid: number;
  kind: "node" | "xattr";
  ino: number;
  /** The attach point: ".." never walks above it. */
  top: number;
  /** The user that attached (n_uname, or a numeric uname). */
  uid: number;
  open: OpenState | null;
  /** 9P2000/.u directory reads: the byte offset reached and the cookie there. */
  dirOffset: number;
  dirCookie: bigint;
  /** xattr fids: the value (or name list) to read, or the value being written. */
  data: Uint8Array | null;
  /** Txattrcreate fids: the name and flags the value is committed under at Tclunk. */
  xattr?: { name: Uint8Array; flags: number } | null;
}

export interface SessionRecord {
  sid: string;
  dialect: Dialect | null;
  msize: number;
  resumable: boolean;
  /** The last numbered request's number, as of the last kept reply. */
  seq: number;
  /** When its socket went (ms), for a resumable session waiting for its client. */
  detachedAt: number | null;
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS session (
    sid TEXT PRIMARY KEY,
    dialect TEXT,
    msize INTEGER NOT NULL DEFAULT 0,
    started INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    secret TEXT,
    seq INTEGER NOT NULL DEFAULT 0,
    gen INTEGER NOT NULL DEFAULT 0,
    detached_at INTEGER
  )`,
  `CREATE TABLE IF NOT EXISTS reply (
    sid TEXT NOT NULL,
    tag INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (sid, tag)
  )`,
  `CREATE TABLE IF NOT EXISTS fid (
    sid TEXT NOT NULL,
    fid INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ino INTEGER NOT NULL,
    top INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    open_flags INTEGER,
    open_gen INTEGER,
    dir_offset INTEGER NOT NULL DEFAULT 0,
    dir_cookie TEXT NOT NULL DEFAULT '0',
    data BLOB,
    xattr_name BLOB,
    xattr_flags INTEGER,
    PRIMARY KEY (sid, fid)
  )`,
];

/** Columns of the fid table this release expects. */
const FID_COLUMNS = ["sid", "fid", "kind", "ino", "top", "uid", "open_flags", "open_gen", "dir_offset", "dir_cookie", "data", "xattr_name", "xattr_flags"];
const SESSION_COLUMNS = ["sid", "dialect", "msize", "started", "active", "secret", "seq", "gen", "detached_at"];

export class SessionStore {
  /**
   * Fids held by every session of the share (EDGE9P.max_share_fids bounds
   * it): a session in memory counts its fids as it takes and drops them
   * (worker/session.ts), one not in memory (not yet restored after a
   * hibernation, or waiting for its client) by its rows.
   */
  fidTotal = 0;

  constructor(private readonly sql: SqlStorage) {
    // Session tables from an older release are dropped, not migrated: a
    // release is deployed with a restart, which ends every session anyway.
    const have = sql.exec(`PRAGMA table_info(fid)`).toArray().map((r) => r.name as string);
    const sess = sql.exec(`PRAGMA table_info(session)`).toArray().map((r) => r.name as string);
    if ((have.length && FID_COLUMNS.some((c) => !have.includes(c))) || (sess.length && SESSION_COLUMNS.some((c) => !sess.includes(c)))) {
      sql.exec(`DROP TABLE IF EXISTS fid`);
      sql.exec(`DROP TABLE IF EXISTS session`);
      sql.exec(`DROP TABLE IF EXISTS reply`);
    }
    for (const s of SCHEMA) sql.exec(s);
    this.fidTotal = sql.exec(`SELECT count(*) AS n FROM fid`).one().n as number;
  }

  /** A new session; with the SHA-256 of a resume secret, a resumable one. */
  create(sid: string, secretHash: string | null = null): void {
    const now = Date.now();
    this.sql.exec(`INSERT INTO session (sid, started, active, secret) VALUES (?, ?, ?, ?)`, sid, now, now, secretHash);
  }

  /**
   * A resumable session's secret hash and socket generation (the row's gen
   * column: how often it was resumed), or null when there is no such session.
   */
  resumeOf(sid: string): { secretHash: string; socketGen: number } | null {
    const r = this.sql.exec(`SELECT secret, gen FROM session WHERE sid = ? AND secret IS NOT NULL`, sid).toArray()[0];
    return r ? { secretHash: r.secret as string, socketGen: r.gen as number } : null;
  }

  /** A resumed session's new socket generation (older sockets are stale). */
  reattach(sid: string): number {
    return this.sql.exec(`UPDATE session SET gen = gen + 1, detached_at = NULL WHERE sid = ? RETURNING gen`, sid).one().gen as number;
  }

  setDetached(sid: string, at: number): void {
    this.sql.exec(`UPDATE session SET detached_at = ? WHERE sid = ? AND detached_at IS NULL`, at, sid);
  }

  /** Resumable sessions whose socket went before `before` (ms). */
  detachedBefore(before: number): string[] {
    return this.sql
      .exec(`SELECT sid FROM session WHERE detached_at IS NOT NULL AND detached_at < ?`, before)
      .toArray()
      .map((r) => r.sid as string);
  }

  /** The resumable sessions waiting for their clients. */
  detachedSids(): string[] {
    return this.sql
      .exec(`SELECT sid FROM session WHERE detached_at IS NOT NULL`)
      .toArray()
      .map((r) => r.sid as string);
  }

  /** Resumable sessions waiting for their clients. */
  countDetached(): number {
    return this.sql.exec(`SELECT count(*) AS n FROM session WHERE detached_at IS NOT NULL`).one().n as number;
  }

  /** The `n` sessions that have waited longest for their clients, oldest first. */
  longestDetached(n: number): string[] {
    return this.sql
      .exec(`SELECT sid FROM session WHERE detached_at IS NOT NULL ORDER BY detached_at, sid LIMIT ?`, n)
      .toArray()
      .map((r) => r.sid as string);
  }

  /** When the longest-detached session's socket went, or null. */
  oldestDetached(): number | null {
    return (this.sql.exec(`SELECT min(detached_at) AS t FROM session`).one().t as number | null) ?? null;
  }

  /** A numbered request's reply, kept by tag (it replaces the tag's last one). */
  keepReply(sid: string, tag: number, seq: number, bytes: Uint8Array): void {
    this.sql.exec(`INSERT OR REPLACE INTO reply (sid, tag, seq, bytes) VALUES (?, ?, ?, ?)`, sid, tag, seq, bytes.slice().buffer as ArrayBuffer);
  }

  /** Numbers up to `seq` are used (for a session restored after hibernation). */
  noteSeq(sid: string, seq: number): void {
    this.sql.exec(`UPDATE session SET seq = max(seq, ?) WHERE sid = ?`, seq, sid);
  }

  /** Kept replies the client has seen (it used their tags again). */
  dropReplies(sid: string, tags: Iterable<number>): void {
    for (const tag of tags) this.sql.exec(`DELETE FROM reply WHERE sid = ? AND tag = ?`, sid, tag);
  }

  keptReplies(sid: string): Map<number, KeptReply> {
    const out = new Map<number, KeptReply>();
    for (const r of this.sql.exec(`SELECT tag, seq, bytes FROM reply WHERE sid = ?`, sid)) {
      out.set(r.tag as number, { seq: r.seq as number, bytes: new Uint8Array(r.bytes as ArrayBuffer) });
    }
    return out;
  }

  /** Records that the session did something (for the idle timeout). */
  touch(sid: string, now: number): void {
    this.sql.exec(`UPDATE session SET active = ? WHERE sid = ?`, now, sid);
  }

  /** Sessions with nothing since `before` (ms). */
  idleSince(before: number): string[] {
    return this.sql
      .exec(`SELECT sid FROM session WHERE active < ?`, before)
      .toArray()
      .map((r) => r.sid as string);
  }

  /** When the least recently active session was last active, or null. */
  oldestActive(): number | null {
    return (this.sql.exec(`SELECT min(active) AS t FROM session`).one().t as number | null) ?? null;
  }

  setVersion(sid: string, dialect: Dialect | null, msize: number): void {
    this.sql.exec(`UPDATE session SET dialect = ?, msize = ? WHERE sid = ?`, dialect, msize, sid);
  }

  load(sid: string): SessionRecord | null {
    const rows = this.sql
      .exec(
        `SELECT sid, dialect, msize, secret, max(seq, coalesce((SELECT max(seq) FROM reply WHERE reply.sid = session.sid), 0)) AS seq,
           detached_at FROM session WHERE sid = ?`,
        sid,
      )
      .toArray();
    if (!rows.length) return null;
    const r = rows[0]!;
    return {
      sid,
      dialect: r.dialect as Dialect | null,
      msize: r.msize as number,
      resumable: r.secret !== null,
      seq: r.seq as number,
      detachedAt: r.detached_at as number | null,
    };
  }

  fids(sid: string): FidState[] {
    return this.sql
      .exec(`SELECT * FROM fid WHERE sid = ?`, sid)
      .toArray()
      .map((r) => ({
        fid: r.fid as number,
        kind: r.kind as FidState["kind"],
        ino: r.ino as number,
        top: r.top as number,
        uid: r.uid as number,
        open: r.open_flags === null ? null : { flags: r.open_flags as number, replaced: r.open_gen as number },
        dirOffset: r.dir_offset as number,
        dirCookie: BigInt(r.dir_cookie as string),
        data: r.data instanceof ArrayBuffer ? new Uint8Array(r.data) : null,
        xattr:
          r.xattr_name instanceof ArrayBuffer
            ? { name: new Uint8Array(r.xattr_name), flags: r.xattr_flags as number }
            : null,
      }));
  }

  /** Writes a fid's row (adds or replaces it). */
  putFid(sid: string, f: FidState): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO fid (sid, fid, kind, ino, top, uid, open_flags, open_gen, dir_offset, dir_cookie, data,
         xattr_name, xattr_flags)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      sid,
      f.fid,
      f.kind,
      f.ino,
      f.top,
      f.uid,
      f.open?.flags ?? null,
      f.open?.replaced ?? null,
      f.dirOffset,
      f.dirCookie.toString(),
      f.data ? (f.data.slice().buffer as ArrayBuffer) : null,
      f.xattr ? (f.xattr.name.slice().buffer as ArrayBuffer) : null,
      f.xattr?.flags ?? null,
    );
  }

  deleteFid(sid: string, fid: number): void {
    this.sql.exec(`DELETE FROM fid WHERE sid = ? AND fid = ?`, sid, fid);
  }

  /** Inodes of the open node fids that have rows, one entry per fid (the share's open counts when its object starts). */
  openNodes(): number[] {
    return this.sql
      .exec(`SELECT ino FROM fid WHERE kind = 'node' AND open_flags IS NOT NULL`)
      .toArray()
      .map((r) => r.ino as number);
  }

  /**
   * Ends a session: its rows go. `inMemory` false: the session was not in
   * memory, so its fids were counted by their rows, and are uncounted now
   * (a session in memory uncounted them as it dropped them).
   */
  end(sid: string, inMemory: boolean): void {
    const gone = this.sql.exec(`DELETE FROM fid WHERE sid = ? RETURNING fid`, sid).toArray().length;
    if (!inMemory) this.fidTotal -= gone;
    this.sql.exec(`DELETE FROM reply WHERE sid = ?`, sid);
    this.sql.exec(`DELETE FROM session WHERE sid = ?`, sid);
  }

  /**
   * Ends every session whose socket is gone. A restart or deploy closes
   * sockets without webSocketClose ever running (platform facts), so the
   * sessions are matched against the sockets that still exist. A resumable
   * one is only marked detached: its client has the resume window to come
   * back (the alarm ends it after that).
   */
  sweep(live: Set<string>, release: (f: FidState) => void = () => {}, now = Date.now()): string[] {
    const rows = this.sql.exec(`SELECT sid, secret FROM session`).toArray();
    const gone: string[] = [];
    for (const r of rows) {
      const sid = r.sid as string;
      if (live.has(sid)) continue;
      if (r.secret !== null) this.setDetached(sid, now);
      else gone.push(sid);
    }
    for (const sid of gone) {
      for (const f of this.fids(sid)) release(f);
      this.end(sid, false);
    }
    return gone;
  }

  count(): number {
    return this.sql.exec(`SELECT count(*) AS n FROM session`).one().n as number;
  }
}
