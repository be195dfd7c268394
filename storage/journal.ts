// The write journal: bytes written to a file since it was last published,
// kept as disjoint extents in SQLite. A Twrite's extents are committed
// before its Rwrite leaves (the object's output gate holds replies until
// storage writes are durable), so an acknowledged write survives any crash.
//
// Every query finds the extents of a range through the primary key (ino,
// off) and the stored length, never by reading blobs: a write or read costs
// O(log n + extents it touches), whatever the size of the file's journal.
//
// What the share holds unpublished, and what the journal cap bounds, is
// more than the extents: a file's hole (bytes past its R2 object that no
// extent covers, left by a truncate up or a write past the end) is
// uploaded as zeros when the file is published, so it counts as journal
// bytes would. Each inode keeps its extents' bytes (jbytes) and its hole
// (hbytes); the share's total of both is kept in meta. All three change
// together, in SQLite, so they survive a restart and fsck can check them.

import { blob } from "./namespace.ts";
import { holeBytes } from "./schema.ts";

/** The largest row: SQLite in a Durable Object takes 2 MB; stay well under. */
export const EXTENT_MAX = 512 * 1024;
/** Sequential small writes are merged into one row up to this size. */
const MERGE_MAX = 128 * 1024;

interface Extent {
  off: number;
  len: number;
}

/** A file as the journal must know it to count its hole: its size, and the bytes at its start its R2 object holds. */
export interface FileSpan {
  size: number;
  base: number;
}

/** What a write changes in its inode's journal counts (InodeUpdate's increments). */
export interface JournalChange {
  jbytes_add: number;
  hbytes_add: number;
}

/** Extent bytes a write or truncate takes away: all of them, and those at or past the file's base. */
interface Taken {
  removed: number;
  pastBase: number;
}

/** Files whose journal size is kept in memory (beyond, the map starts over). */
const PER_FILE_MAX = 8192;

export class Journal {
  /** Unpublished bytes across the share, extents and holes (kept in meta). */
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

  /** Unpublished bytes across the share: what the journal cap bounds. */
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

  /**
   * Changes a file's extent bytes by `dj` and its hole by `dh`, and the
   * share's total by both. With `row` false the caller writes the inode's
   * columns in its own update (JournalChange).
   */
  private account(ino: number, dj: number, dh: number, row = true): void {
    if (dj === 0 && dh === 0) return;
    if (row) this.sql.exec(`UPDATE inode SET jbytes = jbytes + ?, hbytes = hbytes + ? WHERE ino = ?`, dj, dh, ino);
    const known = this.perFile.get(ino);
    if (known !== undefined) this.perFile.set(ino, known + dj);
    this.total += dj + dh;
    this.setTotal(this.total);
  }

  /** What cutting [from, to) out of these extents takes away. */
  private static taken(extents: Extent[], from: number, to: number, base: number): Taken {
    let removed = 0;
    let pastBase = 0;
    for (const e of extents) {
      const hi = Math.min(e.off + e.len, to);
      removed += hi - Math.max(e.off, from);
      pastBase += Math.max(0, hi - Math.max(e.off, from, base));
    }
    return { removed, pastBase };
  }

  /**
   * How a write of `len` bytes at `off` changes a file's extent bytes (dj)
   * and its hole (dh), given what it overwrites. Of the hole, it fills what
   * it covers of [base, size) that no extent held; past the end, it leaves
   * a new hole from the old size to `off`. (Extents never reach past the
   * size, so every extent byte it overwrites lies below the size.)
   */
  private static change(off: number, len: number, f: FileSpan, t: Taken): { dj: number; dh: number } {
    const gap = Math.max(0, off - f.size);
    const filled = Math.max(0, Math.min(f.size, off + len) - Math.max(f.base, off)) - t.pastBase;
    return { dj: len - t.removed, dh: gap - filled };
  }

  /** Bytes a file's hole holds now. */
  private hole(ino: number): number {
    const rows = this.sql.exec(`SELECT hbytes FROM inode WHERE ino = ?`, ino).toArray();
    return rows.length ? (rows[0]!.hbytes as number) : 0;
  }

  /** How much a write of `len` bytes at `off` would add to `bytes` (negative: free). Changes nothing. */
  growth(ino: number, off: number, len: number, f: FileSpan): number {
    const end = off + len;
    const t = this.fileBytes(ino) === 0 ? { removed: 0, pastBase: 0 } : Journal.taken(this.overlapping(ino, off, end), off, end, f.base);
    const c = Journal.change(off, len, f, t);
    return c.dj + c.dh;
  }

  /** Cuts [from, to) out of the extents of a file, keeping what lies outside. */
  private cut(ino: number, from: number, to: number, base: number): Taken {
    const extents = this.overlapping(ino, from, to);
    for (const e of extents) {
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
    }
    return Journal.taken(extents, from, to, base);
  }

  /** A file just created: no extents, no hole (its first write then runs no query). */
  noteEmpty(ino: number): void {
    if (this.perFile.size >= PER_FILE_MAX) this.perFile.clear();
    this.perFile.set(ino, 0);
  }

  /**
   * Records a write to a file that stood at `f` before it. The inode's
   * jbytes and hbytes change by what it returns: the caller adds them in
   * the update it makes to the inode anyway (its size and times), one row
   * write rather than two.
   */
  write(ino: number, off: number, data: Uint8Array, f: FileSpan): JournalChange {
    const end = off + data.byteLength;
    // No extents yet (a new or published file): nothing to cut or merge with.
    const none = this.fileBytes(ino) === 0;
    const taken = none ? { removed: 0, pastBase: 0 } : this.cut(ino, off, end, f.base);
    let at = 0;
    // Append to the extent that ends where this write starts, while small.
    if (!none && data.byteLength < MERGE_MAX) {
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
    const c = Journal.change(off, data.byteLength, f, taken);
    this.account(ino, c.dj, c.dh, false);
    return { jbytes_add: c.dj, hbytes_add: c.dh };
  }

  /**
   * A truncate of a file that stood at `f` to `size`. Up: the new bytes
   * are hole. Down: extents at or past `size` go, and so does the hole
   * there; below the R2 object's end, the object's bytes past `size` stop
   * being content (base_len becomes `size`) and no hole is left.
   */
  truncate(ino: number, size: number, f: FileSpan): void {
    if (size >= f.size) return this.account(ino, 0, size - f.size);
    const t = this.cut(ino, size, Number.MAX_SAFE_INTEGER, f.base);
    const dh = size < f.base ? -this.hole(ino) : t.removed - (f.size - size);
    this.account(ino, -t.removed, dh);
  }

  /** Drops a file's whole journal and hole (published, or the file is gone). */
  clear(ino: number): void {
    const n = this.fileBytes(ino);
    const h = this.hole(ino);
    this.sql.exec(`DELETE FROM extent WHERE ino = ?`, ino);
    this.account(ino, -n, -h);
  }

  /**
   * Counts a file's hole again from its row and extents: after a publish
   * that moved its base (the object now holds a snapshot of the file) while
   * the journal kept what changed meanwhile.
   */
  recount(ino: number): void {
    // (What the row's hbytes must be: the journal's own column.)
    const rows = this.sql.exec(`SELECT ${holeBytes("inode")} AS hbytes FROM inode WHERE ino = ?`, ino).toArray();
    if (rows.length) this.account(ino, 0, (rows[0]!.hbytes as number) - this.hole(ino));
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
