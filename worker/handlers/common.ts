// Helpers shared by the request handlers.

import { DOTL, ERRNO, P9Error } from "../../protocol/index.ts";
import { isDir, isLink } from "../../storage/share-fs.ts";
import type { FidState } from "../session-store.ts";
import type { Session } from "../session.ts";

export function nodeFid(s: Session, n: number): FidState {
  const f = s.fid(n);
  if (f.kind !== "node") throw new P9Error(ERRNO.EBADF, "not a file fid");
  return f;
}

/** Open flags that would change the file (issue "Writes" turns these on). */
export function wantsWrite(flags: number): boolean {
  const acc = flags & DOTL.ACCMODE;
  return acc === DOTL.WRONLY || acc === DOTL.RDWR || (flags & DOTL.TRUNC) !== 0;
}

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
    throw new P9Error(ERRNO.EROFS);
  }
  const fresh = s.fs.get(f.ino);
  const cur = nodeFid(s, n);
  if (cur.open) throw new P9Error(ERRNO.EBADF, "fid already open");
  s.putFid({ ...cur, open: { flags, etag: fresh.etag }, dirOffset: 0, dirCookie: 0n });
  return fresh;
}

