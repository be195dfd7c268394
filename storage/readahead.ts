// Readahead: a file read sequentially through one open fid (a stream) gets
// its next ranges fetched from R2 before the client asks for them. Linux's
// 9p client and diodcat read with one request in flight, so without it each
// Tread waits a whole R2 round trip (tens of milliseconds in production,
// issue 15) and a sequential read runs at read size / round trip.
//
// As Linux's own readahead does (mm/readahead.c, ondemand readahead): a
// stream starts at a read at offset 0 or at the second of two adjacent
// reads; its window starts at four reads' size and grows with every
// sequential read (nextWindow), up to windowMax; the window's bytes beyond the read are
// kept fetched or in flight, in chunks of a quarter window (at least one
// read), each one R2 range get pinned to the object's etag. A read that
// lands elsewhere (a seek) drops what the stream holds and starts no
// readahead until the reader is sequential again.
//
// What a stream holds is R2's bytes of one object version (key and etag),
// nothing else: the reader merges the journal and a truncate's zeros over
// them (read-path.ts readContent), as over any R2 bytes. So a write or a
// truncate by any session cannot make it serve wrong bytes; it still drops
// the file's streams (the file will be published as a new object), and so
// does an object replaced in R2, a clunk of the fid, and a change of etag
// seen at the next read.
//
// Memory: every chunk holds its bytes of the share's in-flight budget from
// before its fetch until it is consumed or dropped (`hold`, which refuses
// once the budget is half used, so replies always have the other half).
// A stream nobody reads for IDLE_MS gives its chunks up to others.

/** Enough of a file to read from R2: which object version, and how much of it is still the content. */
export interface ObjectPart {
  ino: number;
  key: string;
  etag: string;
  /** Bytes at the start of the object that are the file's (base_len): nothing past it is fetched. */
  end: number;
}

export interface ReadaheadDeps {
  /** The largest window (0: no readahead). */
  windowMax: number;
  /** Fetches [offset, offset + length) of the object version; null if it changed or failed. */
  fetch: (key: string, etag: string, offset: number, length: number, signal: AbortSignal) => Promise<Uint8Array | null>;
  /** Takes n bytes of the share's budget; null when there is no room. */
  hold: (n: number) => (() => void) | null;
  now?: () => number;
}

export interface ReadaheadStats {
  /** Reads served from what was fetched ahead. */
  hits: number;
  /** Reads of a sequential stream its window did not hold (they read R2 themselves). */
  misses: number;
  /** R2 gets made ahead of the reader, and their bytes. */
  fetches: number;
  fetchedBytes: number;
  /** Bytes fetched ahead and dropped unread (a seek, a close, a write). */
  unusedBytes: number;
  /** Streams dropped by a seek, a clunk, a write, a truncate or a new etag. */
  cancels: number;
  /** Fetches in flight now. */
  fetching: number;
  streams: number;
  /** Budget bytes the streams hold now. */
  heldBytes: number;
  /** The largest window of a stream now, and ever. */
  windowBytes: number;
  windowMax: number;
}

/** The figures of a share that has no readahead yet (no session has attached). */
export const noReadahead = (): ReadaheadStats => ({
  hits: 0,
  misses: 0,
  fetches: 0,
  fetchedBytes: 0,
  unusedBytes: 0,
  cancels: 0,
  fetching: 0,
  streams: 0,
  heldBytes: 0,
  windowBytes: 0,
  windowMax: 0,
});

interface Chunk {
  off: number;
  len: number;
  /** Resolves with the bytes, or null if the fetch failed. */
  ready: Promise<Uint8Array | null>;
  data: Uint8Array | null | undefined;
  ctl: AbortController;
  release: () => void;
  used: boolean;
}

interface Stream {
  part: ObjectPart;
  /** Where the next sequential read starts; -1 before the first read. */
  next: number;
  window: number;
  /** Fetched or in flight up to here (chunks are contiguous, in order). */
  end: number;
  chunks: Chunk[];
  lastUse: number;
}

/**
 * A stream's window after one more sequential read of `len` bytes: four
 * reads to start with, then four times larger while under a quarter of the
 * largest, then twice, up to `max`. The shape is Linux's (mm/readahead.c:
 * get_init_ra_size starts small requests at 4x, get_next_ra_size grows 4x
 * below max/16 and 2x below max/2), with larger factors because R2's round
 * trip is tens of milliseconds: a stream waits one round trip at each step
 * whose window the reader drains faster than R2 answers, so a window that
 * started at one read and only doubled waited about four round trips before
 * it covered one at 1 MiB reads (bench: at 30 ms, 0.68 of the 0 ms rate on a
 * 64 MiB file), and this one waits about one.
 */
export function nextWindow(window: number, len: number, max: number): number {
  if (window === 0) return Math.min(max, 4 * len);
  return Math.min(max, Math.max(len, window < max / 4 ? window * 4 : window * 2));
}

/** Streams kept at once; the least recently read goes first. */
const MAX_STREAMS = 1024;
/** A stream not read for this long yields its chunks when another needs the room. */
const IDLE_MS = 1000;

export class Readahead {
  private readonly streams = new Map<string, Stream>();
  private readonly counts = { hits: 0, misses: 0, fetches: 0, fetchedBytes: 0, unusedBytes: 0, cancels: 0, fetching: 0, heldBytes: 0, windowMax: 0 };
  private readonly now: () => number;

  constructor(private readonly d: ReadaheadDeps) {
    this.now = d.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.d.windowMax > 0;
  }

  /**
   * A read of [offset, offset + into.length) of `part` by stream `id`.
   * Moves the stream's window on and fetches ahead; returns a promise of
   * whether `into` was filled from what the stream fetched, or null when it
   * holds none of those bytes (the caller reads R2 itself).
   */
  read(id: string, part: ObjectPart, offset: number, into: Uint8Array, signal?: AbortSignal): Promise<boolean> | null {
    if (!this.enabled) return null;
    const len = into.byteLength;
    const end = offset + len;
    let s = this.streams.get(id);
    if (s && (s.part.ino !== part.ino || s.part.key !== part.key || s.part.etag !== part.etag)) {
      this.cancel(id);
      s = undefined;
    }
    const fresh = s === undefined;
    if (!s) {
      s = { part, next: -1, window: 0, end: offset, chunks: [], lastUse: 0 };
      if (this.streams.size >= MAX_STREAMS) this.cancel(this.streams.keys().next().value!);
    }
    // Most recently read last: Map order is the streams' LRU order.
    this.streams.delete(id);
    this.streams.set(id, s);
    s.lastUse = this.now();
    s.part = part;
    const covering = this.covering(s, offset, end);
    // Sequential: where the last read ended, inside what was fetched, or a
    // little behind (replies of several reads in flight may come out of order).
    const sequential =
      covering !== null || (s.next >= 0 && offset <= s.next && offset >= s.next - Math.max(s.window, len)) || (fresh && offset === 0);
    if (!sequential) {
      this.dropChunks(s);
      if (s.next >= 0) this.counts.cancels++;
      s.window = 0;
      s.next = end;
      s.end = end;
      return null;
    }
    s.window = nextWindow(s.window, len, this.d.windowMax);
    if (s.window > this.counts.windowMax) this.counts.windowMax = s.window;
    s.next = Math.max(s.next, end);
    if (s.end < s.next) s.end = s.next;
    // What lies a read behind the reader will not be asked for again.
    while (s.chunks.length && s.chunks[0]!.off + s.chunks[0]!.len <= s.next - len) this.dropChunk(s, s.chunks.shift()!);
    this.ahead(id, s, len);
    if (covering === null) {
      if (!fresh) this.counts.misses++;
      return null;
    }
    return this.copy(covering, offset, into, signal);
  }

  /** The chunks that hold all of [from, to), or null. */
  private covering(s: Stream, from: number, to: number): Chunk[] | null {
    if (s.chunks.length === 0 || from < s.chunks[0]!.off || to > s.end) return null;
    const out: Chunk[] = [];
    let at = from;
    for (const c of s.chunks) {
      if (c.off + c.len <= at) continue;
      if (c.off > at) return null; // a gap: a read the window did not keep up with went to R2 itself
      out.push(c);
      at = c.off + c.len;
      if (at >= to) return out;
    }
    return null;
  }

  private async copy(chunks: Chunk[], offset: number, into: Uint8Array, signal?: AbortSignal): Promise<boolean> {
    const end = offset + into.byteLength;
    for (const c of chunks) {
      const data = c.data !== undefined ? c.data : await raced(c.ready, signal);
      if (data === null) {
        this.counts.misses++;
        return false;
      }
      const from = Math.max(offset, c.off);
      const to = Math.min(end, c.off + c.len);
      into.set(data.subarray(from - c.off, to - c.off), from - offset);
      c.used = true;
    }
    this.counts.hits++;
    return true;
  }

  /** Fetches up to the window past the reader, a chunk at a time, while the budget has room. */
  private ahead(id: string, s: Stream, readLen: number): void {
    const target = Math.min(s.part.end, s.next + s.window);
    const chunkLen = Math.max(readLen, Math.floor(s.window / 4));
    while (s.end < target) {
      const len = Math.min(chunkLen, s.part.end - s.end);
      const release = this.d.hold(len) ?? (this.yieldIdle(id) ? this.d.hold(len) : null);
      if (!release) return;
      this.fetch(s, s.end, len, release);
      s.end += len;
    }
  }

  private fetch(s: Stream, off: number, len: number, release: () => void): void {
    const ctl = new AbortController();
    const c: Chunk = { off, len, ready: Promise.resolve(null), data: undefined, ctl, release, used: false };
    this.counts.fetches++;
    this.counts.fetching++;
    this.counts.heldBytes += len;
    c.ready = this.d
      .fetch(s.part.key, s.part.etag, off, len, ctl.signal)
      .catch(() => null)
      .then((data) => {
        this.counts.fetching--;
        c.data = data && data.byteLength === len ? data : null;
        if (c.data) this.counts.fetchedBytes += len;
        return c.data;
      });
    s.chunks.push(c);
  }

  /** Drops the chunks of streams idle for IDLE_MS, least recently read first; whether any went. */
  private yieldIdle(except: string): boolean {
    const old = this.now() - IDLE_MS;
    let freed = false;
    for (const [id, s] of this.streams) {
      if (s.lastUse > old) break; // in LRU order: the rest are newer
      if (id === except || s.chunks.length === 0) continue;
      this.dropChunks(s);
      s.end = s.next;
      freed = true;
    }
    return freed;
  }

  private dropChunk(_s: Stream, c: Chunk): void {
    if (!c.used) this.counts.unusedBytes += c.len;
    if (c.data === undefined) c.ctl.abort();
    c.release();
    this.counts.heldBytes -= c.len;
  }

  private dropChunks(s: Stream): void {
    for (const c of s.chunks.splice(0)) this.dropChunk(s, c);
  }

  /** The stream is done with (its fid was clunked). */
  cancel(id: string): void {
    const s = this.streams.get(id);
    if (!s) return;
    this.streams.delete(id);
    if (s.chunks.length) this.counts.cancels++;
    this.dropChunks(s);
  }

  /** Drops every stream of a file: it was written, truncated or replaced. */
  cancelIno(ino: number): void {
    for (const [id, s] of this.streams) if (s.part.ino === ino) this.cancel(id);
  }

  stats(): ReadaheadStats {
    let windowBytes = 0;
    for (const s of this.streams.values()) windowBytes = Math.max(windowBytes, s.window);
    return { ...this.counts, streams: this.streams.size, windowBytes };
  }
}

/** The promise's value, or the signal's reason if it aborts first. */
function raced<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener("abort", onAbort), resolve(v)),
      (e) => (signal.removeEventListener("abort", onAbort), reject(e)),
    );
  });
}
