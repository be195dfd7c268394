// Count rules and reply builders for the messages whose size depends on what
// the client allowed: Rread, Rreaddir, directory reads, error replies.

import { Reader } from "./buffer-reader.ts";
import { Writer } from "./buffer-writer.ts";
import { HEADER_SIZE, fixedSizeOf, writeHeader } from "./codec.ts";
import { ERRMAX, P9_IOHDRSZ } from "./constants.ts";
import type { Dialect } from "./dialect.ts";
import { errnoText } from "./errno.ts";
import type { Kind } from "./kinds.ts";
import { MESSAGES, type MessageInit } from "./messages.ts";
import { MessageError } from "./errors.ts";
import { type Dirent, type DirentInit, dirent, type StatInit, stat } from "./structs.ts";

const RREAD_FIXED = fixedSizeOf("Rread");
const RREADDIR_FIXED = fixedSizeOf("Rreaddir");

/**
 * The most bytes an Rread may carry: min(requested, msize - 11). Linux
 * allocates 11 + requested bytes for the reply and kills the mount on a
 * larger one ("bogus RREAD count", net/9p/client.c).
 */
export function readCount(requested: number, msize: number): number {
  return Math.max(0, Math.min(requested, msize - RREAD_FIXED));
}

/** An Rread allocated at its exact size, its data part to be filled in place. */
export interface RreadBuffer {
  /** The whole message. */
  readonly bytes: Uint8Array;
  /** The data part: a view into `bytes`, so file bytes are copied once. */
  readonly data: Uint8Array;
  /**
   * The message once `n` bytes of `data` were filled. Normally n equals the
   * count allocated; a shorter n (the object shrank meanwhile) rewrites the
   * size and count fields and returns a view of the shorter message.
   */
  finish(n: number): Uint8Array;
}

export function allocRread(tag: number, count: number): RreadBuffer {
  const bytes = new Uint8Array(RREAD_FIXED + count);
  const header = (n: number) => {
    const w = new Writer(bytes);
    writeHeader(w, RREAD_FIXED + n, MESSAGES.Rread.id, tag);
    w.u32(n);
  };
  header(count);
  return {
    bytes,
    data: bytes.subarray(RREAD_FIXED),
    finish(n) {
      if (n === count) return bytes;
      if (n > count || n < 0) throw new RangeError(`Rread filled ${n} of ${count} bytes`);
      header(n);
      return bytes.subarray(0, RREAD_FIXED + n);
    },
  };
}

/**
 * Packs whole entries, in order, into at most `count` bytes of payload and
 * encodes the reply around them at its exact size. Returns how many entries
 * fit; an entry that does not fit whole is left for the next request.
 */
function packEntries<In>(
  name: "Rread" | "Rreaddir",
  fixed: number,
  kind: Kind<unknown, In>,
  tag: number,
  entries: readonly In[],
  count: number,
  d: Dialect,
): { bytes: Uint8Array; taken: number } {
  let used = 0;
  let taken = 0;
  for (const e of entries) {
    const n = kind.size(e, d);
    if (used + n > count) break;
    used += n;
    taken++;
  }
  const bytes = new Uint8Array(fixed + used);
  const w = new Writer(bytes);
  writeHeader(w, fixed + used, MESSAGES[name].id, tag);
  w.u32(used);
  for (let i = 0; i < taken; i++) kind.write(w, entries[i]!, d);
  return { bytes, taken };
}

/**
 * Rreaddir: whole 9P2000.L dirents in at most `count` bytes (the client's
 * count, already bounded by msize - 11 by the caller), sized to what is there.
 * An empty `entries` gives count 0, the end of the directory.
 */
export function encodeReaddir(
  tag: number,
  entries: readonly DirentInit[],
  count: number,
): { bytes: Uint8Array; taken: number } {
  return packEntries("Rreaddir", RREADDIR_FIXED, dirent, tag, entries, count, "9P2000.L");
}

/** The entries of an Rreaddir's data: whole 9P2000.L dirents back to back. */
export function decodeDirents(data: Uint8Array): Dirent[] {
  const r = new Reader(data);
  const out: Dirent[] = [];
  while (r.remaining > 0) {
    const e = dirent.read(r, "9P2000.L");
    if (r.failure) throw new MessageError(`Rreaddir data: ${r.failure}`, null, null);
    out.push(e);
  }
  return out;
}

/** Size of one 9P2000.L directory entry with this name. */
export function direntSize(e: DirentInit): number {
  return dirent.size(e, "9P2000.L");
}

/** Rread of a directory in 9P2000/.u: whole stat entries back to back (read(5)). */
export function encodeStatRead(
  tag: number,
  entries: readonly StatInit[],
  count: number,
  d: Dialect,
): { bytes: Uint8Array; taken: number } {
  return packEntries("Rread", RREAD_FIXED, stat, tag, entries, count, d);
}

/**
 * An iounit for Rlopen/Rlcreate that is a multiple of `align` and fits
 * msize - 24, or 0 (= "use msize - 24") when msize is too small for one.
 * Linux uses iounit when 0 < iounit <= msize - P9_IOHDRSZ (net/9p/client.c,
 * fs/9p/vfs_file.c), so an aligned iounit avoids the 24-byte tail reads Linux
 * otherwise sends after every msize - 24 bytes.
 */
export function alignedIounit(msize: number, align = 4096): number {
  return Math.max(0, Math.floor((msize - P9_IOHDRSZ) / align) * align);
}

/**
 * The longest ename an Rerror may carry. Linux sizes the reply buffer of an
 * error as 7 + ERRMAX + 4 = 139 bytes, forgetting the string's own 2-byte
 * length (net/9p/client.c, p9_msg_buf_size); a 9P2000.u Rerror is 13 bytes +
 * ename, so ename must stay within 126 bytes or a short request's error
 * reply overflows its buffer and kills the mount.
 */
export const MAX_ENAME = HEADER_SIZE + ERRMAX + 4 - fixedSizeOf("Rerror", "9P2000.u");

/** Cuts a string to at most `max` UTF-8 bytes, never inside a character. */
export function clipUtf8(s: string, max: number): Uint8Array {
  const b = new TextEncoder().encode(s);
  if (b.byteLength <= max) return b;
  let end = max;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

/**
 * The error reply of a dialect: Rlerror(errno) in 9P2000.L, Rerror(ename,
 * errno) in .u, Rerror(ename) in 9P2000. ename defaults to strerror, which
 * Linux maps back to the errno (net/9p/error.c).
 */
export function errorReply(d: Dialect, tag: number, errno: number, ename?: string): MessageInit {
  if (d === "9P2000.L") return { type: "Rlerror", tag, ecode: errno };
  const text = clipUtf8(ename ?? errnoText(errno), MAX_ENAME);
  return d === "9P2000.u" ? { type: "Rerror", tag, ename: text, errno } : { type: "Rerror", tag, ename: text };
}
