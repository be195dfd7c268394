// Inode -> the attribute shapes of the three dialects: qid, Rgetattr,
// readdir type, 9P2000/.u stat.

import {
  DM,
  DT,
  type Dialect,
  NONUNAME,
  QT,
  type Qid,
  S_IF,
  S_IFMT,
  STATS,
  type StatInit,
  deviceExtension,
} from "../protocol/index.ts";
import { type Inode, isDir } from "../storage/types.ts";

export function qidOf(i: Inode): Qid {
  const t = i.mode & S_IFMT;
  return {
    type: t === S_IF.DIR ? QT.DIR : t === S_IF.LNK ? QT.SYMLINK : QT.FILE,
    version: i.version,
    path: BigInt(i.ino),
  };
}

/** Linux DT_* of an inode, for readdir entries. */
export function dtOf(i: Inode): number {
  switch (i.mode & S_IFMT) {
    case S_IF.DIR:
      return DT.DIR;
    case S_IF.LNK:
      return DT.LNK;
    case S_IF.FIFO:
      return DT.FIFO;
    case S_IF.SOCK:
      return DT.SOCK;
    case S_IF.CHR:
      return DT.CHR;
    case S_IF.BLK:
      return DT.BLK;
    default:
      return DT.REG;
  }
}

/** Everything Rgetattr can carry is filled in (its gen field, the inode generation number, stays 0). */
const VALID = STATS.ALL;

export function getattrOf(tag: number, i: Inode, blksize: number) {
  const size = isDir(i) ? 0 : i.size;
  return {
    type: "Rgetattr" as const,
    tag,
    valid: VALID,
    qid: qidOf(i),
    mode: i.mode,
    uid: i.uid,
    gid: i.gid,
    nlink: BigInt(i.nlink),
    rdev: BigInt(i.rdev),
    size: BigInt(size),
    blksize: BigInt(blksize),
    // st_blocks counts 512-byte units (docs/9p.md).
    blocks: BigInt(Math.ceil(size / 512)),
    atime_sec: BigInt(i.atime.sec),
    atime_nsec: BigInt(i.atime.nsec),
    mtime_sec: BigInt(i.mtime.sec),
    mtime_nsec: BigInt(i.mtime.nsec),
    ctime_sec: BigInt(i.ctime.sec),
    ctime_nsec: BigInt(i.ctime.nsec),
    btime_sec: BigInt(i.btime.sec),
    btime_nsec: BigInt(i.btime.nsec),
    gen: 0n,
    data_version: BigInt(i.version),
  };
}

/** A 9P2000 (or .u) stat of an inode; `name` is its name in its directory. */
export function statOf(i: Inode, name: Uint8Array | string, d: Dialect, target: Uint8Array | null): StatInit {
  const t = i.mode & S_IFMT;
  let mode = i.mode & 0o777;
  if (t === S_IF.DIR) mode |= DM.DIR;
  if (d === "9P2000.u") {
    if (t === S_IF.LNK) mode |= DM.SYMLINK;
    if (t === S_IF.FIFO) mode |= DM.NAMEDPIPE;
    if (t === S_IF.SOCK) mode |= DM.SOCKET;
    if (t === S_IF.CHR || t === S_IF.BLK) mode |= DM.DEVICE;
    if (i.mode & 0o4000) mode |= DM.SETUID;
    if (i.mode & 0o2000) mode |= DM.SETGID;
    if (i.mode & 0o1000) mode |= DM.SETVTX;
  }
  mode >>>= 0; // DM bits live in the top of a u32
  const st: StatInit = {
    type: 0,
    dev: 0,
    qid: qidOf(i),
    mode,
    atime: i.atime.sec >>> 0,
    mtime: i.mtime.sec >>> 0,
    length: t === S_IF.REG ? BigInt(i.size) : 0n,
    name,
    uid: String(i.uid),
    gid: String(i.gid),
    muid: "",
  };
  if (d === "9P2000.u") {
    st.extension = t === S_IF.LNK && target ? target : t === S_IF.CHR || t === S_IF.BLK ? deviceExtension(t, i.rdev) : "";
    st.n_uid = i.uid;
    st.n_gid = i.gid;
    st.n_muid = NONUNAME;
  }
  return st;
}
