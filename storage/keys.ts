// How R2 keys become names, and which names a client may use.
//
// Key rules (README "Keys that make no valid name"): the share's files are
// the objects under `<prefix>/`; each '/'-separated segment of the rest is a
// name. A segment that is empty ("a//b"), "." or "..", longer than 255 bytes,
// or holds a NUL makes no valid name: that key (or the prefix holding it) is
// left out of the share and logged. A key that is both an object and a
// prefix ("a" and "a/b") shows as the directory; the object "a" is hidden. An
// object whose key ends in '/' ("a/") is a directory marker.

import { ERRNO, P9Error, nameText } from "../protocol/index.ts";

/** Longest name (Linux NAME_MAX; Rstatfs namelen). */
export const NAME_MAX = 255;
/** Longest R2 key, in bytes. */
export const KEY_MAX = 1024;

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
