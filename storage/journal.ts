// The write journal: bytes written to a file since it was last published,
// kept as disjoint extents in SQLite. A Twrite's extents are committed
// before its Rwrite leaves (the object's output gate holds replies until
// storage writes are durable), so an acknowledged write survives any crash.
//
// Every query finds the extents of a range through the primary key (ino,
// off) and the stored length, never by reading blobs: a write or read costs
// O(log n + extents it touches), whatever the size of the file's journal.

import { blob } from "./namespace.ts";

/** The largest row: SQLite in a Durable Object takes 2 MB; stay well under. */
export const EXTENT_MAX = 512 * 1024;
/** Sequential small writes are merged into one row up to this size. */
const MERGE_MAX = 128 * 1024;

interface Extent {
  off: number;
  len: number;
}

/** Files whose journal size is kept in memory (beyond, the map starts over). */
const PER_FILE_MAX = 8192;

export class Journal {
  /** Journal bytes held across the share (kept in meta). */
  private total: number;
  /**
   * inode.jbytes of recently used files, so that a read of a file with no
   * journal (the common case: published, or imported from R2) skips the
   * extent queries, which were a tenth of the object's CPU per Tread.
   */
  private readonly perFile = new Map<number, number>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly setTotal: (n: number) => void,
    total: number,
  ) {
    this.total = total;
  }

  get bytes(): number {
    return this.total;
  }

  /** Extents that overlap [from, to), in order. */
  private overlapping(ino: number, from: number, to: number): Extent[] {
    // Extents are disjoint: only the last one starting at or before `from`
    // can reach into the range from the left.
    return this.sql
      .exec(
        `SELECT off, len FROM extent WHERE ino = ?1 AND off < ?3 AND off >= coalesce(
           (SELECT max(off) FROM extent WHERE ino = ?1 AND off <= ?2), ?2) ORDER BY off`,
        ino,
        from,
        to,
      )
      .toArray()
      .map((r) => ({ off: r.off as number, len: r.len as number }))
      .filter((e) => e.off + e.len > from);
  }

  private data(ino: number, off: number): Uint8Array {
    return new Uint8Array(this.sql.exec(`SELECT data FROM extent WHERE ino = ? AND off = ?`, ino, off).one().data as ArrayBuffer);
  }

  private put(ino: number, off: number, data: Uint8Array): void {
    this.sql.exec(`INSERT OR REPLACE INTO extent (ino, off, len, data) VALUES (?, ?, ?, ?)`, ino, off, data.byteLength, blob(data));
  }

  private drop(ino: number, off: number): void {
    this.sql.exec(`DELETE FROM extent WHERE ino = ? AND off = ?`, ino, off);
  }

  private account(ino: number, delta: number): void {
    if (delta === 0) return;
    this.sql.exec(`UPDATE inode SET jbytes = jbytes + ? WHERE ino = ?`, delta, ino);
    const known = this.perFile.get(ino);
    if (known !== undefined) this.perFile.set(ino, known + delta);
    this.total += delta;
    this.setTotal(this.total);
  }

  /** Cuts [from, to) out of the extents of a file, keeping what lies outside. */
  private cut(ino: number, from: number, to: number): number {
    let removed = 0;
    for (const e of this.overlapping(ino, from, to)) {
      const end = e.off + e.len;
      const keepLeft = e.off < from;
      const keepRight = end > to;
      if (keepLeft || keepRight) {
        const d = this.data(ino, e.off);
        if (keepRight) this.put(ino, to, d.subarray(to - e.off));
        if (keepLeft) this.put(ino, e.off, d.subarray(0, from - e.off));
        else this.drop(ino, e.off);
      } else {
        this.drop(ino, e.off);
      }
      removed += Math.min(end, to) - Math.max(e.off, from);
    }
    return removed;
  }

  /** Records a write. */
  write(ino: number, off: number, data: Uint8Array): void {
    const end = off + data.byteLength;
    const removed = this.cut(ino, off, end);
    let at = 0;
    // Append to the extent that ends where this write starts, while small.
    if (data.byteLength < MERGE_MAX) {
      const prev = this.sql
        .exec(`SELECT off, len FROM extent WHERE ino = ? AND off < ? ORDER BY off DESC LIMIT 1`, ino, off)
        .toArray()[0];
      if (prev && (prev.off as number) + (prev.len as number) === off && (prev.len as number) + data.byteLength <= MERGE_MAX) {
        const old = this.data(ino, prev.off as number);
        const merged = new Uint8Array(old.byteLength + data.byteLength);
        merged.set(old);
        merged.set(data, old.byteLength);
        this.put(ino, prev.off as number, merged);
        at = data.byteLength;
      }
    }
    for (; at < data.byteLength; at += EXTENT_MAX) {
      this.put(ino, off + at, data.subarray(at, Math.min(data.byteLength, at + EXTENT_MAX)));
    }
    this.account(ino, data.byteLength - removed);
  }

  /** Drops everything at or past `size` (a truncate). */
  truncate(ino: number, size: number): void {
    this.account(ino, -this.cut(ino, size, Number.MAX_SAFE_INTEGER));
  }

  /** Drops a file's whole journal (published, or the file is gone). */
  clear(ino: number): void {
    const n = this.fileBytes(ino);
    this.sql.exec(`DELETE FROM extent WHERE ino = ?`, ino);
    this.account(ino, -n);
  }

  /** Bytes journaled for one file. */
  fileBytes(ino: number): number {
    const known = this.perFile.get(ino);
    if (known !== undefined) return known;
    const rows = this.sql.exec(`SELECT jbytes FROM inode WHERE ino = ?`, ino).toArray();
    const n = rows.length ? (rows[0]!.jbytes as number) : 0;
    if (this.perFile.size >= PER_FILE_MAX) this.perFile.clear();
    this.perFile.set(ino, n);
    return n;
  }

  /**
   * Copies the journaled bytes of [off, off + into.length) into `into` and
   * returns the ranges (relative to `off`) they covered.
   */
  overlay(ino: number, off: number, into: Uint8Array): Extent[] {
    const end = off + into.byteLength;
    const covered: Extent[] = [];
    if (this.fileBytes(ino) === 0) return covered;
    for (const e of this.overlapping(ino, off, end)) {
      const d = this.data(ino, e.off);
      const from = Math.max(e.off, off);
      const to = Math.min(e.off + e.len, end);
      into.set(d.subarray(from - e.off, to - e.off), from - off);
      covered.push({ off: from - off, len: to - from });
    }
    return covered;
  }

  /** Whether the extents of [from, to) cover it completely. */
  covers(ino: number, from: number, to: number): boolean {
    if (this.fileBytes(ino) === 0) return from >= to;
    let at = from;
    for (const e of this.overlapping(ino, from, to)) {
      if (e.off > at) return false;
      at = Math.max(at, e.off + e.len);
      if (at >= to) return true;
    }
    return at >= to;
  }
}
