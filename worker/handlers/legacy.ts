// The 9P2000 and 9P2000.u forms: Topen, Tstat, directory reads that return
// stat entries, and Tcreate/Twstat (read-only until the write path lands).

import { DOTL, ERRNO, OMODE, P9Error, encodeStatRead, fixedSizeOf, readCount } from "../../protocol/index.ts";
import { COOKIE_DOTDOT } from "../../storage/namespace.ts";
import { isDir, isLink } from "../../storage/share-fs.ts";
import { qidOf, statOf } from "../attrs.ts";
import type { FidState } from "../session-store.ts";
import type { HandlerTable, Session } from "../session.ts";
import { nodeFid, openFid } from "./common.ts";

/** open(5) mode -> Tlopen flags. */
function flagsOf(mode: number): number {
  const acc = mode & 3;
  let flags = acc === OMODE.WRITE ? DOTL.WRONLY : acc === OMODE.RDWR ? DOTL.RDWR : DOTL.RDONLY;
  if (mode & OMODE.TRUNC) flags |= DOTL.TRUNC;
  if (mode & OMODE.APPEND) flags |= DOTL.APPEND;
  return flags;
}

const ROOT_NAME = "/";

function statOfIno(s: Session, ino: number) {
  const node = s.fs.get(ino);
  const name = s.fs.ns.nameOf(ino) ?? ROOT_NAME;
  const target = isLink(node) && s.dialect === "9P2000.u" ? s.fs.ns.target(ino) : null;
  return statOf(node, name, s.dialect!, target);
}

/**
 * A 9P2000 directory read: whole stat entries ("." and ".." are not listed,
 * as in Plan 9). read(5) allows only offset 0 or the offset where the last
 * read ended, so the fid keeps that offset and the cookie reached there.
 */
export function readDirStats(s: Session, tag: number, f: FidState, offset: bigint, count: number): Uint8Array {
  const dir = s.fs.get(f.ino);
  let cookie = f.dirCookie;
  if (offset === 0n) cookie = COOKIE_DOTDOT;
  else if (offset !== BigInt(f.dirOffset)) throw new P9Error(ERRNO.EINVAL, "directory reads continue where the last ended");
  const max = readCount(count, s.msize);
  const entries = s.fs.readdir(dir, cookie, Math.floor(max / 49) + 1, f.top);
  const stats = entries.map((e) => statOf(e.inode, e.name, s.dialect!, null));
  const { bytes, taken } = encodeStatRead(tag, stats, max, s.dialect!);
  if (taken === 0 && entries.length > 0) throw new P9Error(ERRNO.EINVAL, "count too small for the next entry");
  const used = bytes.byteLength - fixedSizeOf("Rread");
  s.putFid({ ...f, dirOffset: Number(offset) + used, dirCookie: taken > 0 ? entries[taken - 1]!.cookie : cookie });
  return bytes;
}

export const legacy: HandlerTable = {
  async Topen(s, m) {
    const node = await openFid(s, m.fid, flagsOf(m.mode));
    return { type: "Ropen", tag: m.tag, qid: qidOf(node), iounit: s.iounit };
  },

  Tstat(s, m) {
    return { type: "Rstat", tag: m.tag, stat: statOfIno(s, nodeFid(s, m.fid).ino) };
  },

  Tcreate(s, m) {
    const dir = s.fs.get(nodeFid(s, m.fid).ino);
    if (!isDir(dir)) throw new P9Error(ERRNO.ENOTDIR);
    throw new P9Error(ERRNO.EROFS);
  },

  Twstat(s, m) {
    nodeFid(s, m.fid);
    throw new P9Error(ERRNO.EROFS);
  },
};
