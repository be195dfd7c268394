// How R2 keys become names, and which names a client may use.
//
// Key rules (docs/design.md, "How R2 objects become files"): the share's files are
// the objects under `<prefix>/`; each '/'-separated segment of the rest is a
// name. A segment that is empty ("a//b"), "." or "..", longer than 255 bytes,
// or holds a NUL makes no valid name: that key (or the prefix holding it) is
// left out of the share and logged. A key that is both an object and a
// prefix ("a" and "a/b") shows as the directory; the object "a" is hidden. An
// object whose key ends in '/' ("a/") is a directory marker.
//
// Long paths: R2 keys hold 1,024 bytes, Linux paths 4,095 (PATH_MAX less its
// NUL) and more when reached step by step. An inode whose key would pass
// 1,024 bytes gets a derived key instead, under the share's reserved name
// `.edge9p` at its root: `<prefix>/.edge9p/long/<h>/<name>` (a directory's
// with a trailing '/'), where <h> is the SHA-256, in hex, of the path of the
// directory holding it (names joined by '/', relative to the share's root,
// so the objects keep their meaning under another prefix). That key is at
// most 512 + 1 + 12 + 1 + 64 + 1 + 255 + 1 = 847 bytes for any depth. Each
// path has one key: its own when that fits, the derived one only when it
// does not, so a listing takes an object under `.edge9p/long/` for a name
// only where that name's own key could not exist (no alias of a name with a
// key of its own), and only in the directory whose path hashes to <h>.
// Nothing at the share's root may be named `.edge9p`.

import { ERRNO, P9Error, nameText } from "../protocol/index.ts";
import { sha256Hex } from "./sha256.ts";

/** Longest name (Linux NAME_MAX; Rstatfs namelen). */
export const NAME_MAX = 255;
/**
 * Linux's PATH_MAX: a path given whole (a syscall's, the files route's) has
 * fewer bytes, its NUL being the 4,096th. 9P never carries one: Twalk takes
 * names, and a path is as long as its names and max_depth make it.
 */
export const PATH_MAX = 4096;
/** Longest R2 key, in bytes. */
export const KEY_MAX = 1024;
/** The name at a share's root that holds derived keys: nobody's name. */
export const RESERVED_NAME = ".edge9p";
/** Under the share's root: where objects whose own key would pass KEY_MAX live. */
export const LONG_DIR = `${RESERVED_NAME}/long`;

const encoder = new TextEncoder();

/** The name a key segment gives, or null when it makes no valid name. */
export function segmentName(segment: string): Uint8Array | null {
  if (segment === "" || segment === "." || segment === "..") return null;
  if (segment.includes("\0") || segment.includes("/")) return null;
  const bytes = encoder.encode(segment);
  return bytes.byteLength > NAME_MAX ? null : bytes;
}

/**
 * Checks a name a client walks to. '/' and NUL can never be part of a name
 * (EINVAL); a name over 255 bytes is ENAMETOOLONG.
 */
export function checkLookupName(name: Uint8Array): void {
  if (name.byteLength > NAME_MAX) throw new P9Error(ERRNO.ENAMETOOLONG);
  if (name.byteLength === 0) throw new P9Error(ERRNO.EINVAL, "empty name");
  if (name.includes(0x2f)) throw new P9Error(ERRNO.EINVAL, "name contains '/'");
  if (name.includes(0)) throw new P9Error(ERRNO.EINVAL, "name contains NUL");
}

/**
 * Checks a name a client creates: also not "." or "..", and valid UTF-8
 * (EILSEQ), since it becomes part of an R2 key.
 */
export function checkNewName(name: Uint8Array): string {
  checkLookupName(name);
  if ((name.byteLength === 1 && name[0] === 0x2e) || (name.byteLength === 2 && name[0] === 0x2e && name[1] === 0x2e)) {
    throw new P9Error(ERRNO.EINVAL, "'.' and '..' cannot be created");
  }
  // Checked as bytes above: UTF-8 never puts 0x2f or 0x00 inside a
  // multi-byte character, and nameText keeps a leading U+FEFF, so the text
  // is "." or ".." or holds '/' exactly when the bytes do.
  try {
    return nameText(name);
  } catch {
    throw new P9Error(ERRNO.EILSEQ, "names must be UTF-8 to become R2 keys");
  }
}

const RESERVED = encoder.encode(RESERVED_NAME);

/**
 * Checks a new name of an entry of a directory (`atRoot`: the share's
 * root): `.edge9p` at the root is refused (EPERM), since it holds the
 * derived keys of other files; a client that made it would alias them.
 */
export function checkNotReserved(atRoot: boolean, name: Uint8Array): void {
  if (atRoot && sameName(name, RESERVED)) {
    throw new P9Error(ERRNO.EPERM, `${RESERVED_NAME} at a share's root is reserved for objects whose paths are too long for R2 keys`);
  }
}

/** Whether a name at the share's root (or a key segment there) is the reserved one. */
export function isReserved(name: Uint8Array): boolean {
  return sameName(name, RESERVED);
}

/** Whether two byte strings are equal. */
export function sameName(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const DOT = encoder.encode(".");
export const DOTDOT = encoder.encode("..");

/**
 * The R2 key of a path under a share's prefix ("" = the bucket's root).
 * One-to-one: different paths of valid names never share a key (nameText
 * keeps a BOM and refuses bad UTF-8, which no stored name has).
 */
export function keyOf(prefix: string, path: Uint8Array[]): string {
  const rel = path.map(nameText).join("/");
  return prefix === "" ? rel : rel === "" ? prefix : `${prefix}/${rel}`;
}

/** The listing prefix of a directory: its key and a '/' ("" or "prefix/" for the root). */
export function dirPrefixOf(prefix: string, path: Uint8Array[]): string {
  const k = keyOf(prefix, path);
  return k === "" ? "" : `${k}/`;
}

const byteLength = (s: string) => encoder.encode(s).byteLength;

/** The start of every key of a share: "" or "prefix/". */
export function rootOf(prefix: string): string {
  return prefix === "" ? "" : `${prefix}/`;
}

/**
 * The listing prefix of the derived keys of a directory's children:
 * `<prefix>/.edge9p/long/<sha256 of the directory's path>/`.
 */
export function longPrefixOf(prefix: string, dirPath: Uint8Array[]): string {
  return `${rootOf(prefix)}${LONG_DIR}/${sha256Hex(encoder.encode(dirPath.map(nameText).join("/")))}/`;
}

/** Whether the child `name` (text) of the directory listed as `dirPrefix` has a key of its own, within KEY_MAX. */
export function fitsKey(dirPrefix: string, name: string, isDir: boolean): boolean {
  return byteLength(dirPrefix) + byteLength(name) + (isDir ? 1 : 0) <= KEY_MAX;
}

/** Whether a directory listed as `dirPrefix` may have children whose own keys would pass KEY_MAX. */
export function mayHoldLong(dirPrefix: string): boolean {
  return !fitsKey(dirPrefix, "x".repeat(NAME_MAX), true);
}

/**
 * The key of the object of the inode at `path` (a directory's marker ends in
 * '/'): `<prefix>/<path>` when that fits KEY_MAX, else its derived key.
 */
export function objectKeyOf(prefix: string, path: Uint8Array[], isDir: boolean): string {
  if (path.length === 0) return isDir ? dirPrefixOf(prefix, path) : keyOf(prefix, path);
  const parent = path.slice(0, -1);
  const name = nameText(path[path.length - 1]!);
  const dirPrefix = dirPrefixOf(prefix, parent);
  const tail = isDir ? `${name}/` : name;
  return fitsKey(dirPrefix, name, isDir) ? dirPrefix + tail : longPrefixOf(prefix, parent) + tail;
}
