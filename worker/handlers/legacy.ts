// The 9P2000 and 9P2000.u forms: Topen, Tcreate, Tstat, Twstat, and
// directory reads that return stat entries.

import {
  DM,
  DOTL,
  ERRNO,
  NONUNAME,
  OMODE,
  P9Error,
  S_IF,
  encodeStatRead,
  fixedSizeOf,
  parseDeviceExtension,
  readCount,
} from "../../protocol/index.ts";
import { COOKIE_DOTDOT } from "../../storage/namespace.ts";
import type { SetAttr } from "../../storage/share-fs.ts";
import { isDir, isLink } from "../../storage/types.ts";
import { qidOf, statOf } from "../attrs.ts";
import type { FidState } from "../session-store.ts";
import type { HandlerTable, Session } from "../session.ts";
import { dirFid, nodeFid, openFid, writable } from "./common.ts";

/** open(5) mode -> Tlopen flags. */
function flagsOf(mode: number): number {
  const acc = mode & 3;
  let flags = acc === OMODE.WRITE ? DOTL.WRONLY : acc === OMODE.RDWR ? DOTL.RDWR : DOTL.RDONLY;
  if (mode & OMODE.TRUNC) flags |= DOTL.TRUNC;
  if (mode & OMODE.APPEND) flags |= DOTL.APPEND;
  return flags;
}

const ROOT_NAME = "/";
const U32_DONT_TOUCH = 0xffffffff;

function statOfIno(s: Session, ino: number) {
  const node = s.fs.get(ino);
  const name = s.fs.nameOf(ino) ?? ROOT_NAME;
  const target = isLink(node) && s.dialect === "9P2000.u" ? s.fs.knownTarget(ino) : null;
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

  /** create(5): the fid becomes the new file, opened with `mode`. */
  async Tcreate(s, m) {
    writable(s);
    const d = dirFid(s, m.fid);
    if (d.open) throw new P9Error(ERRNO.EBADF, "fid already open");
    const perm = m.perm >>> 0;
    const ext = m.extension ? new TextDecoder().decode(m.extension) : "";
    let node;
    if (perm & DM.DIR) {
      node = await s.fs.mkdir(d.ino, m.name, perm & 0o777, d.uid, d.uid);
    } else if (s.dialect === "9P2000.u" && perm & DM.SYMLINK) {
      node = await s.fs.symlink(d.ino, m.name, m.extension!, d.uid, d.uid);
    } else if (s.dialect === "9P2000.u" && perm & DM.LINK) {
      // Linux sends the existing file's fid number as the extension.
      const other = nodeFid(s, Number.parseInt(ext, 10));
      await s.fs.link(d.ino, m.name, other.ino);
      node = s.fs.get(other.ino);
    } else if (s.dialect === "9P2000.u" && perm & DM.DEVICE) {
      // The extension names the device: "b MAJOR MINOR" or "c MAJOR MINOR" (protocol/devices.ts).
      const dev = parseDeviceExtension(ext);
      if (!dev) throw new P9Error(ERRNO.EINVAL, 'a device is "b MAJOR MINOR" or "c MAJOR MINOR"');
      node = await s.fs.mknod(d.ino, m.name, dev.type | (perm & 0o777), d.uid, d.uid, dev);
    } else if (s.dialect === "9P2000.u" && perm & (DM.NAMEDPIPE | DM.SOCKET)) {
      const type = perm & DM.NAMEDPIPE ? S_IF.FIFO : S_IF.SOCK;
      node = await s.fs.mknod(d.ino, m.name, type | (perm & 0o777), d.uid, d.uid);
    } else {
      node = await s.fs.create(d.ino, m.name, perm & 0o777, d.uid, d.uid);
    }
    const cur = nodeFid(s, m.fid);
    const open = isLink(node) ? null : { flags: flagsOf(m.mode), replaced: node.replaced };
    s.putFid({ ...cur, ino: node.ino, open, dirOffset: 0, dirCookie: 0n });
    return { type: "Rcreate", tag: m.tag, qid: qidOf(node), iounit: s.iounit };
  },

  /**
   * wstat(5): fields of all ones and empty strings mean "don't touch"; a stat
   * that touches nothing is a request to sync (nothing to do here).
   */
  async Twstat(s, m) {
    const f = nodeFid(s, m.fid);
    const st = m.stat;
    const a: SetAttr = {};
    if (st.mode !== U32_DONT_TOUCH) {
      const node = s.fs.get(f.ino);
      if (((st.mode & DM.DIR) !== 0) !== isDir(node)) throw new P9Error(ERRNO.EINVAL, "wstat cannot change the file's type");
      a.mode = st.mode & 0o7777;
    }
    if (st.length !== 0xffffffffffffffffn) a.size = Number(st.length);
    if (st.mtime !== U32_DONT_TOUCH) a.mtime = { sec: st.mtime, nsec: 0 };
    if (st.atime !== U32_DONT_TOUCH) a.atime = { sec: st.atime, nsec: 0 };
    if (st.n_uid !== undefined && st.n_uid !== NONUNAME) a.uid = st.n_uid;
    if (st.n_gid !== undefined && st.n_gid !== NONUNAME) a.gid = st.n_gid;
    const rename = st.name.byteLength > 0;
    if (!rename && Object.keys(a).length === 0) return { type: "Rwstat", tag: m.tag };
    writable(s);
    // All or nothing (wstat(5)): a length that cannot be had refuses the rename too.
    if (a.size !== undefined) {
      const node = s.fs.get(f.ino);
      if (a.size !== node.size) s.fs.checkResize(node, a.size);
    }
    if (rename) {
      const l = s.fs.primaryLink(f.ino);
      if (!l) throw new P9Error(ERRNO.ENOENT);
      // wstat renames within the same directory only.
      await s.fs.rename(l.parent, l.name, l.parent, st.name);
    }
    if (Object.keys(a).length) s.fs.setattr(f.ino, a, f.uid);
    return { type: "Rwstat", tag: m.tag };
  },
};
