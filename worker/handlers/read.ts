// The 9P2000.L read path: Tlopen, Tread, Treaddir, Tgetattr, Treadlink,
// Tstatfs. (Txattrwalk is with the other xattr request: handlers/write.ts.)

import {
  DOTL,
  ERRNO,
  P9Error,
  V9FS_MAGIC,
  allocRread,
  direntSize,
  encodeReaddir,
  fixedSizeOf,
  readCount,
} from "../../protocol/index.ts";
import { isDir } from "../../storage/types.ts";
import { dtOf, getattrOf, qidOf } from "../attrs.ts";
import type { FidState } from "../session-store.ts";
import type { HandlerTable, RequestContext, Session } from "../session.ts";
import { canRead, nodeFid, openFid } from "./common.ts";
import { readDirStats } from "./legacy.ts";

const RREAD_FIXED = fixedSizeOf("Rread");
/** Most entries fetched from SQLite for one Treaddir (each takes >= 25 bytes). */
const READDIR_BATCH = 4096;

/** Tread of a file: R2 range read straight into an Rread allocated at its size. */
export async function readFile(s: Session, tag: number, f: FidState, offset: bigint, count: number, ctx: RequestContext) {
  const node = s.fs.get(f.ino);
  if (node.replaced !== f.open!.replaced) throw new P9Error(ERRNO.ESTALE, "another tool replaced the file in R2 since it was opened");
  const at = offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(offset);
  const want = Math.min(readCount(count, s.msize), Math.max(0, node.size - at));
  if (want === 0) return allocRread(tag, 0).finish(0);
  await ctx.reserve(RREAD_FIXED + want);
  const r = allocRread(tag, want);
  // The fid is the reader's stream: its sequential reads get readahead (storage/readahead.ts).
  const n = await s.fs.read(node, at, r.data, ctx.signal, undefined, streamOf(s.sid, f.fid));
  return r.finish(n);
}

/** The readahead stream of a session's fid. */
export function streamOf(sid: string, fid: number): string {
  return `${sid}/${fid}`;
}

export const read: HandlerTable = {
  async Tlopen(s, m) {
    const node = await openFid(s, m.fid, m.flags);
    return { type: "Rlopen", tag: m.tag, qid: qidOf(node), iounit: s.iounit };
  },

  async Tread(s, m, ctx) {
    const f = s.fid(m.fid);
    if (f.kind === "xattr") {
      const data = f.data ?? new Uint8Array(0);
      const at = Number(m.offset > BigInt(data.byteLength) ? BigInt(data.byteLength) : m.offset);
      const part = data.subarray(at, at + readCount(m.count, s.msize));
      const r = allocRread(m.tag, part.byteLength);
      r.data.set(part);
      return r.bytes;
    }
    if (!f.open || !canRead(f.open.flags)) throw new P9Error(ERRNO.EBADF, "fid not open for reading");
    if (isDir(s.fs.get(f.ino))) {
      if (s.dialect !== "9P2000.L") return readDirStats(s, m.tag, f, m.offset, m.count);
      throw new P9Error(ERRNO.EISDIR, "read directories with Treaddir");
    }
    return readFile(s, m.tag, f, m.offset, m.count, ctx);
  },

  Treaddir(s, m, ctx) {
    const f = nodeFid(s, m.fid);
    // Noted before the listing is read (docs/leases.md rule 2). Synchronous
    // to the reply and it changes nothing itself: its grant is struck only by
    // another request's change, and none can run in between.
    ctx.lease(f.ino);
    const dir = s.fs.get(f.ino);
    if (!isDir(dir)) throw new P9Error(ERRNO.ENOTDIR);
    if (!f.open) throw new P9Error(ERRNO.EBADF, "directory not open");
    const count = readCount(m.count, s.msize);
    const limit = Math.min(READDIR_BATCH, Math.floor(count / 25) + 1);
    const entries = s.fs.readdir(dir, m.offset, limit, f.top).map((e) => ({
      qid: qidOf(e.inode),
      offset: e.cookie,
      type: dtOf(e.inode),
      name: e.name,
    }));
    const { bytes, taken } = encodeReaddir(m.tag, entries, count);
    // An entry that cannot fit the count would otherwise read as the end.
    if (taken === 0 && entries.length > 0) {
      throw new P9Error(ERRNO.EINVAL, `count ${m.count} is too small for the next entry (${direntSize(entries[0]!)} bytes)`);
    }
    return bytes;
  },

  Tgetattr(s, m, ctx) {
    const ino = nodeFid(s, m.fid).ino;
    // Noted before the attributes are read (docs/leases.md rule 2), which it
    // does at once and without changing anything itself.
    ctx.lease(ino);
    return getattrOf(m.tag, s.fs.get(ino), s.blksize);
  },

  async Treadlink(s, m) {
    const node = s.fs.get(nodeFid(s, m.fid).ino);
    return { type: "Rreadlink", tag: m.tag, target: await s.fs.readlink(node) };
  },

  Tstatfs(s, m) {
    nodeFid(s, m.fid);
    const st = s.fs.statfs();
    return {
      type: "Rstatfs",
      tag: m.tag,
      fs_type: V9FS_MAGIC,
      bsize: st.bsize,
      blocks: BigInt(st.blocks),
      bfree: BigInt(st.bfree),
      bavail: BigInt(st.bavail),
      files: BigInt(st.files),
      ffree: BigInt(st.ffree),
      fsid: st.fsid,
      namelen: st.namelen,
    };
  },
};
