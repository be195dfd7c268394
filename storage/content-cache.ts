// The share's content cache: the bytes of small R2 objects, kept in the
// object's SQLite so that they outlive hibernations and restarts, shared by
// every session and the files route. A second read of a small file then
// costs no R2 round trip (tens of milliseconds in production: issue 15).
//
// Coherence: an entry is an R2 object's bytes by key AND etag, and an R2
// object with a given etag never changes, so an entry can be useless but
// never wrong. What the file is on top of its object (the write journal,
// zeros past a truncate) is merged by the reader as for R2's own bytes
// (read-path.ts readContent). Entries are dropped when the share learns the
// object changed (a listing saw a new etag), when the file is written or
// truncated (it will be published as a new object), when its inode goes,
// and when the publisher replaces it with the bytes it just uploaded.
//
// Bounded: at most maxBytes, counted as content plus key plus ROW_OVERHEAD
// a row, so that many tiny files cannot hold more than the bound says.
// Eviction is an approximate LRU in generations: each entry carries the
// generation of its last use; the generation moves on after every eighth of
// the bound filled; eviction takes the oldest generations first (insertion
// order within one). A hit writes nothing: when its generation is old it
// marks the entry in memory, and the owner has the marks written after the
// reply (writeMarks), as it has the fills (put). In production a reply that
// follows a storage write waits until the write is durable (the output gate),
// so no read's reply waits on the cache. A mark lost to a restart only makes
// the entry look older than it is.
//
// Rows hold at most CHUNK bytes (SQLite in a Durable Object takes 2 MB a
// row): an entry's first chunk lives in its own row, the rest in cache_chunk.

import { Meta } from "./meta.ts";
import { blob } from "./namespace.ts";

/** Bytes per row, well under the platform's 2 MB. */
export const CACHE_CHUNK = 512 * 1024;
/** What an entry's row costs besides its key and content (ids, etag, size, generation, SQLite's own). */
export const ROW_OVERHEAD = 96;
/** How much of the bound an eviction frees beyond what a fill needs, so that evictions come in batches. */
const SLACK_FRACTION = 1 / 16;
const SLACK_MAX = 16 * 1024 * 1024;

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS cache_entry (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    etag TEXT NOT NULL,
    size INTEGER NOT NULL,
    gen INTEGER NOT NULL,
    data BLOB NOT NULL
  )`,
  `CREATE INDEX IF NOT EXISTS cache_lru ON cache_entry (gen, id)`,
  `CREATE TABLE IF NOT EXISTS cache_chunk (
    id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (id, n)
  ) WITHOUT ROWID`,
];

export interface CacheOptions {
  /** Bytes the cache may hold (0: no cache). */
  maxBytes: number;
  /** The largest object it keeps. */
  fileMaxBytes: number;
  /** A hit marked an entry as used: call writeMarks() once the reply is out (absent: written at once). */
  marked?: () => void;
}

/** The figures of a share that has no cache yet (no session has attached). */
export const noCache = (): CacheStats => ({ hits: 0, misses: 0, fills: 0, fillsFromPublish: 0, evictions: 0, drops: 0, bytes: 0, entries: 0, limitBytes: 0, fileLimitBytes: 0 });

export interface CacheStats {
  hits: number;
  misses: number;
  /** Entries added: from reads (each one R2 get) and from publishes. */
  fills: number;
  fillsFromPublish: number;
  evictions: number;
  /** Entries dropped because their object changed or their file was written. */
  drops: number;
  bytes: number;
  entries: number;
  limitBytes: number;
  fileLimitBytes: number;
}

const enc = new TextEncoder();

export class ContentCache {
  private total: number;
  /** Rows in cache_entry: counted once at construction, then kept with every put and drop (stats). */
  private entries: number;
  private readonly metaTable: Meta;
  private gen: number;
  /** Bytes filled since the generation moved on. */
  private genFilled = 0;
  private readonly counts = { hits: 0, misses: 0, fills: 0, fillsFromPublish: 0, evictions: 0, drops: 0 };
  /** Entries hit since their generation moved on, to be moved to the current one (writeMarks). */
  private readonly marks = new Set<number>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly opts: CacheOptions,
  ) {
    for (const s of SCHEMA) sql.exec(s);
    this.metaTable = new Meta(sql);
    this.entries = sql.exec(`SELECT count(*) AS n FROM cache_entry`).one().n as number;
    this.total = (this.meta("cache_bytes") as number | null) ?? 0;
    this.gen = (this.meta("cache_gen") as number | null) ?? 0;
    // A smaller bound than the last start's (or none): shrink to it now.
    if (this.total > opts.maxBytes) this.evict(opts.maxBytes);
  }

  /** Whether an object of `size` bytes is one the cache keeps. */
  takes(size: number): boolean {
    return size > 0 && size <= this.opts.fileMaxBytes && this.cost("", size) <= this.opts.maxBytes;
  }

  /**
   * Copies bytes [offset, offset + into.length) of the object (key, etag)
   * into `into` if the cache holds them; returns whether it did.
   */
  read(key: string, etag: string, offset: number, into: Uint8Array): boolean {
    if (this.opts.maxBytes === 0) return false;
    const len = into.byteLength;
    const first = offset < CACHE_CHUNK ? Math.min(len, CACHE_CHUNK - offset) : 0;
    const row = this.sql
      .exec(`SELECT id, etag, size, gen, substr(data, ?, ?) AS part FROM cache_entry WHERE key = ?`, offset + 1, Math.max(first, 1), key)
      .toArray()[0];
    if (!row || row.etag !== etag || offset + len > (row.size as number)) {
      if (this.takes(offset + len)) this.counts.misses++;
      return false;
    }
    const id = row.id as number;
    if (first > 0) into.set(new Uint8Array(row.part as ArrayBuffer, 0, first));
    for (let at = first; at < len; ) {
      const pos = offset + at;
      const n = Math.floor(pos / CACHE_CHUNK);
      const within = pos - n * CACHE_CHUNK;
      const take = Math.min(len - at, CACHE_CHUNK - within);
      const part = this.sql.exec(`SELECT substr(data, ?, ?) AS part FROM cache_chunk WHERE id = ? AND n = ?`, within + 1, take, id, n).toArray()[0];
      if (!part) {
        // A chunk missing cannot happen (rows of one entry are written together); treat it as a miss.
        this.dropId(id);
        return false;
      }
      into.set(new Uint8Array(part.part as ArrayBuffer, 0, take), at);
      at += take;
    }
    if ((row.gen as number) < this.gen && !this.marks.has(id)) {
      this.marks.add(id);
      if (this.opts.marked) this.opts.marked();
      else this.writeMarks();
    }
    this.counts.hits++;
    return true;
  }

  /** Moves the entries hit since their generation moved on to the current one. */
  writeMarks(): void {
    for (const id of this.marks) this.sql.exec(`UPDATE cache_entry SET gen = ? WHERE id = ? AND gen < ?`, this.gen, id, this.gen);
    this.marks.clear();
  }

  /** Keeps the bytes of the object (key, etag), replacing whatever the key had. */
  put(key: string, etag: string, bytes: Uint8Array, fromPublish = false): void {
    if (!this.takes(bytes.byteLength)) {
      this.drop(key);
      return;
    }
    const cost = this.cost(key, bytes.byteLength);
    this.drop(key, false);
    if (this.total + cost > this.opts.maxBytes) {
      this.evict(this.opts.maxBytes - cost - Math.min(SLACK_MAX, Math.floor(this.opts.maxBytes * SLACK_FRACTION)));
    }
    const id = this.sql
      .exec(
        `INSERT INTO cache_entry (key, etag, size, gen, data) VALUES (?, ?, ?, ?, ?) RETURNING id`,
        key,
        etag,
        bytes.byteLength,
        this.gen,
        blob(bytes.subarray(0, CACHE_CHUNK)),
      )
      .one().id as number;
    for (let n = 1; n * CACHE_CHUNK < bytes.byteLength; n++) {
      this.sql.exec(`INSERT INTO cache_chunk (id, n, data) VALUES (?, ?, ?)`, id, n, blob(bytes.subarray(n * CACHE_CHUNK, (n + 1) * CACHE_CHUNK)));
    }
    this.entries++;
    this.setTotal(this.total + cost);
    this.counts.fills++;
    if (fromPublish) this.counts.fillsFromPublish++;
    // The generation moves on after every eighth of the bound: entries used since are younger.
    this.genFilled += cost;
    if (this.genFilled >= this.opts.maxBytes / 8) {
      this.genFilled = 0;
      this.gen++;
      this.setMeta("cache_gen", this.gen);
    }
  }

  /** Forgets the key's entry, whatever its etag (its object changed, or its file was written). */
  drop(key: string, counted = true): void {
    if (this.total === 0) return;
    const row = this.sql.exec(`SELECT id FROM cache_entry WHERE key = ?`, key).toArray()[0];
    if (!row) return;
    this.dropId(row.id as number);
    if (counted) this.counts.drops++;
  }

  private dropId(id: number): void {
    const gone = this.sql.exec(`DELETE FROM cache_entry WHERE id = ? RETURNING key, size`, id).toArray()[0];
    this.sql.exec(`DELETE FROM cache_chunk WHERE id = ?`, id);
    if (!gone) return;
    this.entries = Math.max(0, this.entries - 1);
    this.setTotal(this.total - this.cost(gone.key as string, gone.size as number));
  }

  /** Evicts the least recently used entries until at most `target` bytes are held. */
  private evict(target: number): void {
    // What was used recently must count as such before anything goes.
    this.writeMarks();
    while (this.total > Math.max(0, target)) {
      const rows = this.sql.exec(`SELECT id FROM cache_entry ORDER BY gen, id LIMIT 64`).toArray();
      if (rows.length === 0) {
        // Nothing left to evict: the count was off (it is only ever a sum of rows).
        this.entries = 0;
        this.setTotal(0);
        return;
      }
      for (const r of rows) {
        if (this.total <= Math.max(0, target)) break;
        this.dropId(r.id as number);
        this.counts.evictions++;
      }
    }
  }

  private cost(key: string, size: number): number {
    return size + enc.encode(key).byteLength + ROW_OVERHEAD;
  }

  private setTotal(n: number): void {
    this.total = Math.max(0, n);
    this.setMeta("cache_bytes", this.total);
  }

  private meta(k: string): SqlStorageValue | null {
    return this.metaTable.get(k);
  }

  private setMeta(k: string, v: SqlStorageValue): void {
    this.metaTable.set(k, v);
  }

  stats(): CacheStats {
    return { ...this.counts, bytes: this.total, entries: this.entries, limitBytes: this.opts.maxBytes, fileLimitBytes: this.opts.fileMaxBytes };
  }
}
