// Helpers shared by the request handlers.

import { DOTL, ERRNO, P9Error } from "../../protocol/index.ts";
import { isDir, isLink } from "../../storage/types.ts";
import type { FidState } from "../session-store.ts";
import type { Session } from "../session.ts";

export function nodeFid(s: Session, n: number): FidState {
  const f = s.fid(n);
  if (f.kind !== "node") throw new P9Error(ERRNO.EBADF, "not a file fid");
  return f;
}

/** An unopened fid of a directory, as Tlcreate, Tmkdir and the *at requests want. */
export function dirFid(s: Session, n: number): FidState {
  const f = nodeFid(s, n);
  if (!isDir(s.fs.get(f.ino))) throw new P9Error(ERRNO.ENOTDIR);
  return f;
}

/** Refuses a change on a read-only share. */
export function writable(s: Session): void {
  if (s.host.limits.readOnly) throw new P9Error(ERRNO.EROFS);
}

/** Open flags that write (Linux truncates with Tsetattr after Tlopen; older clients pass TRUNC). */
export function wantsWrite(flags: number): boolean {
  const acc = flags & DOTL.ACCMODE;
  return acc === DOTL.WRONLY || acc === DOTL.RDWR || (flags & DOTL.TRUNC) !== 0;
}

export function canRead(flags: number): boolean {
  return (flags & DOTL.ACCMODE) !== DOTL.WRONLY;
}

export function canWrite(flags: number): boolean {
  const acc = flags & DOTL.ACCMODE;
  return acc === DOTL.WRONLY || acc === DOTL.RDWR;
}

/**
 * Opens a fid. Bits to ignore for an existing file (CREATE, NONBLOCK,
 * LARGEFILE, ...: docs/9p.md) are ignored; TRUNC truncates; APPEND is kept
 * for Twrite.
 */
export async function openFid(s: Session, n: number, flags: number) {
  const f = nodeFid(s, n);
  if (f.open) throw new P9Error(ERRNO.EBADF, "fid already open");
  const node = s.fs.get(f.ino);
  if (isDir(node)) {
    if (wantsWrite(flags)) throw new P9Error(ERRNO.EISDIR);
    // A listing starts from R2 as of at most the revalidation time ago.
    await s.fs.refresh(node);
  } else if (isLink(node)) {
    throw new P9Error(ERRNO.ELOOP, "symlinks are not opened: the client follows them");
  } else if (wantsWrite(flags)) {
    writable(s);
  }
  const cur = nodeFid(s, n);
  if (cur.open) throw new P9Error(ERRNO.EBADF, "fid already open");
  if (flags & DOTL.TRUNC && !isDir(node)) s.fs.setattr(node.ino, { size: 0 }, cur.uid);
  const fresh = s.fs.get(f.ino);
  s.putFid({ ...cur, open: { flags, replaced: fresh.replaced }, dirOffset: 0, dirCookie: 0n });
  return fresh;
}
