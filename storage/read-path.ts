// The read path: a file's bytes are the first baseLen bytes of its R2
// object (from the content cache, a stream's readahead, or R2 itself, all
// at one object version), zeros up to its size, and its write journal over
// both. ShareFs.read and the publisher (which uploads what a file reads as)
// come here; the cache's rows are written after the reply that needed them
// (writeCache), so no read's reply waits on a SQLite write.

import { ERRNO, P9Error } from "../protocol/index.ts";
import { ContentCache } from "./content-cache.ts";
import type { Journal } from "./journal.ts";
import type { Namespace } from "./namespace.ts";
import { Readahead } from "./readahead.ts";
import type { Inode, ShareOptions } from "./types.ts";

/** What the share object's stats call the content cache's deferred writes (worker/sql-meter.ts). */
export const CACHE_WRITES = "cache fill";

export interface ReadPathDeps {
  ns: Namespace;
  journal: Journal;
  /** The binding, counting its calls. */
  bucket: () => R2Bucket;
  /** Takes bytes of the share's budget for a while, if there is room; null if not. */
  hold: (n: number) => (() => void) | null;
  /** Runs `f` after the reply of the request now running has been sent (ShareFs's constructor says more). */
  afterReply: (what: string, f: () => void) => void;
  log: (msg: string) => void;
  /** The object changed in R2 under an open file: its directory is listed again. */
  changedInR2: (file: Inode) => Promise<void>;
}

export class ReadPath {
  /** Small files' R2 bytes in SQLite, by key and etag (content-cache.ts). */
  readonly cache: ContentCache;
  /** Sequential readers' next ranges, fetched ahead (readahead.ts). */
  readonly readahead: Readahead;
  /** Cache fills on their way, by key and etag: concurrent readers of one file share one R2 get. */
  private readonly filling = new Map<string, Promise<Uint8Array | "gone" | "changed" | null>>();
  /** Fills whose bytes came from R2 and whose rows wait for their replies to be sent (writeCache). */
  private readonly fills: { key: string; etag: string; bytes: Uint8Array; done: () => void }[] = [];
  private cacheWriteQueued = false;

  private readonly d: ReadPathDeps & { cache: ContentCache; readahead: Readahead };

  constructor(sql: SqlStorage, opts: ShareOptions, deps: ReadPathDeps) {
    this.cache = new ContentCache(sql, {
      maxBytes: opts.cacheBytes ?? 0,
      fileMaxBytes: opts.cacheFileBytes ?? 0,
      marked: () => this.queueCacheWrite(),
    });
    this.readahead = new Readahead({
      windowMax: opts.readaheadBytes ?? 0,
      fetch: async (key, etag, offset, length, signal) => {
        const r = await this.getRange(key, etag, offset, length, signal);
        return r instanceof Uint8Array ? r : null;
      },
      hold: deps.hold,
    });
    this.d = { ...deps, cache: this.cache, readahead: this.readahead };
  }

  /**
   * The file's bytes: its R2 object's (from the content cache, a stream's
   * readahead or R2 itself, all pinned to one object version), zeros past
   * base_len, and the journal over both.
   */
  async readContent(
    file: Inode,
    offset: number,
    into: Uint8Array,
    signal?: AbortSignal,
    pin: string | null = file.etag,
    stream?: string,
  ): Promise<number> {
    const length = Math.min(into.byteLength, Math.max(0, file.size - offset));
    if (length === 0) return 0;
    const view = length === into.byteLength ? into : into.subarray(0, length);
    const r2End = Math.min(offset + length, file.baseLen);
    // R2 throws on an empty range (or any range of an empty object): never ask.
    if (r2End > offset && file.key !== null && !this.d.journal.covers(file.ino, offset, r2End)) {
      const got = await this.objectBytes(file, file.key, pin, offset, view.subarray(0, r2End - offset), signal, stream);
      if (got !== "ok") {
        // Our own publish may have moved or rewritten the object meanwhile:
        // the content is the same, read it where it is now.
        const now = this.d.ns.get(file.ino);
        if (now && now.replaced === file.replaced && now.key !== null && (now.key !== file.key || now.etag !== file.etag)) {
          return this.readContent(now, offset, into, signal, now.etag, stream);
        }
        if (got === "gone") throw new P9Error(ERRNO.ESTALE, "the object is gone from R2");
        await this.d.changedInR2(file);
        throw new P9Error(ERRNO.ESTALE, "the object changed in R2 while open");
      }
      // The zero-initialised rest of `view` is the hole past baseLen.
    }
    // Re-read the journal after the await: it may have changed meanwhile.
    this.d.journal.overlay(file.ino, offset, view);
    return length;
  }

  /**
   * Bytes [offset, offset + part.length) of the object (key, pin) into
   * `part`: from the content cache; for a small file not in it, the whole
   * object from R2 into the cache; for a larger one, from what the reader's
   * stream fetched ahead; else one R2 range get.
   */
  private async objectBytes(
    file: Inode,
    key: string,
    pin: string | null,
    offset: number,
    part: Uint8Array,
    signal?: AbortSignal,
    stream?: string,
  ): Promise<"ok" | "gone" | "changed"> {
    if (pin !== null) {
      if (this.d.cache.read(key, pin, offset, part)) return "ok";
      // A dirty file will be published as a new object: its old one is not worth keeping.
      if (this.d.cache.takes(file.baseLen) && !file.dirty) {
        const whole = await this.fill(key, pin, file.baseLen);
        if (whole instanceof Uint8Array) {
          part.set(whole.subarray(offset, offset + part.byteLength));
          return "ok";
        }
        if (whole !== null) return whole;
        // No room in the budget to hold the whole file: read just the range.
      } else if (stream !== undefined) {
        const served = this.d.readahead.read(stream, { ino: file.ino, key, etag: pin, end: file.baseLen }, offset, part, signal);
        if (served !== null && (await served)) return "ok";
      }
    }
    const r = await this.getRange(key, pin, offset, part.byteLength, signal, part);
    return r instanceof Uint8Array ? "ok" : r;
  }

  /** The first `size` bytes of a small object, read once from R2 and kept in the cache. */
  private fill(key: string, etag: string, size: number): Promise<Uint8Array | "gone" | "changed" | null> {
    const id = `${etag}\n${key}`;
    let p = this.filling.get(id);
    if (!p) {
      const release = this.d.hold(size);
      if (!release) return Promise.resolve(null);
      // Not aborted with the request that started it: others may wait on it too (it is one small file).
      p = this.getRange(key, etag, 0, size).then(
        (r) => {
          if (r instanceof Uint8Array) {
            // Written after the reply (writeCache); until then readers of the file share these bytes.
            this.fills.push({
              key,
              etag,
              bytes: r,
              done: () => {
                this.filling.delete(id);
                release();
              },
            });
            this.queueCacheWrite();
          } else {
            this.filling.delete(id);
            release();
          }
          return r;
        },
        (e) => {
          this.filling.delete(id);
          release();
          throw e;
        },
      );
      this.filling.set(id, p);
    }
    return p;
  }

  /** Asks for the cache's pending rows (fills, LRU marks) to be written once the current reply is out. */
  queueCacheWrite(): void {
    if (this.cacheWriteQueued) return;
    this.cacheWriteQueued = true;
    this.d.afterReply(CACHE_WRITES, () => this.writeCache());
  }

  /**
   * The content cache's deferred rows: the LRU marks of hits, then the fills
   * (whose evictions take the least recently used, marks applied). An entry
   * written late is still right: it is one object version's bytes, by key
   * and etag, whatever the file became meanwhile.
   */
  private writeCache(): void {
    this.cacheWriteQueued = false;
    const fills = this.fills.splice(0);
    try {
      this.d.cache.writeMarks();
      for (const f of fills) this.d.cache.put(f.key, f.etag, f.bytes);
    } catch (e) {
      // The object is going away (a restart), or SQLite refused: the cache is only an optimisation.
      this.d.log(`content cache: ${(e as Error).message}`);
    } finally {
      for (const f of fills) f.done();
    }
  }

  /**
   * One R2 range get pinned to `pin`, into `into` (or a new buffer): the
   * bytes, or "gone" (no object) or "changed" (another etag there now).
   */
  async getRange(
    key: string,
    pin: string | null,
    offset: number,
    length: number,
    signal?: AbortSignal,
    into: Uint8Array = new Uint8Array(length),
  ): Promise<Uint8Array | "gone" | "changed"> {
    const obj = await this.d.bucket().get(key, { range: { offset, length }, onlyIf: pin ? { etagMatches: pin } : undefined });
    if (obj === null) return "gone";
    if (!("body" in obj)) return "changed";
    const n = await readInto((obj as R2ObjectBody).body, into, length, signal);
    if (n !== length) throw new P9Error(ERRNO.EIO, `R2 returned ${n} of ${length} bytes`);
    return into;
  }
}

/** Copies a body into `into` (one copy, from the runtime's chunks). */
async function readInto(body: ReadableStream<Uint8Array>, into: Uint8Array, length: number, signal?: AbortSignal): Promise<number> {
  const reader = body.getReader();
  let filled = 0;
  try {
    while (filled < length) {
      if (signal?.aborted) throw signal.reason;
      const { value, done } = await reader.read();
      if (done) break;
      const n = Math.min(value.byteLength, length - filled);
      into.set(n === value.byteLength ? value : value.subarray(0, n), filled);
      filled += n;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return filled;
}
