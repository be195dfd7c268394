// The 9P2000.L requests that change a share: Tlcreate, Twrite, Tmkdir,
// Tsymlink, Tmknod, Tlink, Trenameat, Trename, Tunlinkat, Tremove,
// Tsetattr, Tfsync, Txattrcreate, Tlock; and beside them the queries of
// the same state, Txattrwalk (an xattr's value or the name list) and
// Tgetlock.

import {
  ATTR,
  AT_REMOVEDIR,
  DOTL,
  ERRNO,
  LOCK_FLAGS,
  LOCK_TYPE,
  P9Error,
} from "../../protocol/index.ts";
import { LOCK_CLIENT_ID_MAX, LOCK_EOF } from "../../storage/locks.ts";
import type { SetAttr } from "../../storage/share-fs.ts";
import { isDir } from "../../storage/types.ts";
import { XATTR_SIZE_MAX } from "../../storage/xattrs.ts";
import { qidOf } from "../attrs.ts";
import type { FidState, OpenState } from "../session-store.ts";
import type { HandlerTable, Session } from "../session.ts";
import { canRead, canWrite, dirFid, nodeFid, writable } from "./common.ts";

/** The directory and name a fid's file is linked at (Trename, Tremove). */
function linkOf(s: Session, ino: number) {
  const l = s.fs.primaryLink(ino);
  if (!l) throw new P9Error(ERRNO.ENOENT, "the file has no name any more");
  return l;
}

const time = (sec: bigint, nsec: bigint) => ({ sec: Number(sec), nsec: Number(nsec) });

/** An open fid of a file, as locks want: fcntl on an fd that is not open (O_PATH, in Linux) is EBADF. */
function openFid(s: Session, n: number): FidState & { open: OpenState } {
  const f = nodeFid(s, n);
  if (!f.open) throw new P9Error(ERRNO.EBADF, "fid not open");
  return f as FidState & { open: OpenState };
}

export const write: HandlerTable = {
  async Tlcreate(s, m) {
    writable(s);
    const f = dirFid(s, m.fid);
    if (f.open) throw new P9Error(ERRNO.EBADF, "fid already open");
    // New files belong to the user that attached (access=client); the mode
    // arrives with its type bits (0100644): only the permissions count.
    const node = await s.fs.create(f.ino, m.name, m.mode, f.uid, m.gid);
    const cur = nodeFid(s, m.fid);
    s.putFid({ ...cur, ino: node.ino, open: { flags: m.flags, replaced: node.replaced }, dirOffset: 0, dirCookie: 0n });
    return { type: "Rlcreate", tag: m.tag, qid: qidOf(node), iounit: s.iounit };
  },

  Twrite(s, m) {
    writable(s);
    const f = s.fid(m.fid);
    if (f.kind === "xattr") {
      if (!f.xattr) throw new P9Error(ERRNO.EBADF, "not an xattr being created");
      const end = Number(m.offset) + m.data.byteLength;
      if (end > (f.data?.byteLength ?? 0)) throw new P9Error(ERRNO.ERANGE, "write past the declared xattr size");
      const data = f.data!.slice();
      data.set(m.data, Number(m.offset));
      s.putFid({ ...f, data, dirOffset: Math.max(f.dirOffset, end) });
      return { type: "Rwrite", tag: m.tag, count: m.data.byteLength };
    }
    if (!f.open || !canWrite(f.open.flags)) throw new P9Error(ERRNO.EBADF, "fid not open for writing");
    if (m.offset > BigInt(Number.MAX_SAFE_INTEGER)) throw new P9Error(ERRNO.EFBIG);
    // Fewer than asked when the write crosses the largest file size (as Linux writes it).
    // The writer is the fid's user: set-ID bits go on a write by anyone but root.
    const count = s.fs.write(f.ino, Number(m.offset), m.data, (f.open.flags & DOTL.APPEND) !== 0, f.uid);
    return { type: "Rwrite", tag: m.tag, count };
  },

  async Tmkdir(s, m) {
    writable(s);
    const f = dirFid(s, m.dfid);
    const node = await s.fs.mkdir(f.ino, m.name, m.mode, f.uid, m.gid);
    return { type: "Rmkdir", tag: m.tag, qid: qidOf(node) };
  },

  async Tsymlink(s, m) {
    writable(s);
    const f = dirFid(s, m.fid);
    const node = await s.fs.symlink(f.ino, m.name, m.symtgt, f.uid, m.gid);
    return { type: "Rsymlink", tag: m.tag, qid: qidOf(node) };
  },

  async Tmknod(s, m) {
    writable(s);
    const f = dirFid(s, m.dfid);
    const node = await s.fs.mknod(f.ino, m.name, m.mode, f.uid, m.gid, { major: m.major, minor: m.minor });
    return { type: "Rmknod", tag: m.tag, qid: qidOf(node) };
  },

  async Tlink(s, m) {
    writable(s);
    const d = dirFid(s, m.dfid);
    const f = nodeFid(s, m.fid);
    await s.fs.link(d.ino, m.name, f.ino);
    return { type: "Rlink", tag: m.tag };
  },

  async Trenameat(s, m) {
    writable(s);
    const a = dirFid(s, m.olddirfid);
    const b = dirFid(s, m.newdirfid);
    await s.fs.rename(a.ino, m.oldname, b.ino, m.newname);
    return { type: "Rrenameat", tag: m.tag };
  },

  async Trename(s, m) {
    writable(s);
    const f = nodeFid(s, m.fid);
    const d = dirFid(s, m.dfid);
    const l = linkOf(s, f.ino);
    await s.fs.rename(l.parent, l.name, d.ino, m.name);
    return { type: "Rrename", tag: m.tag };
  },

  async Tunlinkat(s, m) {
    writable(s);
    const d = dirFid(s, m.dirfid);
    await s.fs.unlink(d.ino, m.name, (m.flags & AT_REMOVEDIR) !== 0);
    return { type: "Runlinkat", tag: m.tag };
  },

  // remove(5): the fid is clunked even when the remove fails.
  async Tremove(s, m) {
    const f = s.fid(m.fid);
    s.dropFid(m.fid);
    writable(s);
    if (f.kind !== "node") throw new P9Error(ERRNO.EBADF);
    const node = s.fs.get(f.ino);
    const l = linkOf(s, f.ino);
    await s.fs.unlink(l.parent, l.name, isDir(node));
    return { type: "Rremove", tag: m.tag };
  },

  Tsetattr(s, m) {
    writable(s);
    const f = nodeFid(s, m.fid);
    const a: SetAttr = {};
    if (m.valid & ATTR.MODE) a.mode = m.mode;
    if (m.valid & ATTR.UID) a.uid = m.uid;
    if (m.valid & ATTR.GID) a.gid = m.gid;
    if (m.valid & ATTR.SIZE) a.size = Number(m.size > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) + 1n : m.size);
    // A time bit without its _SET bit means "now" (touch sends 0x70).
    if (m.valid & ATTR.ATIME) a.atime = m.valid & ATTR.ATIME_SET ? time(m.atime_sec, m.atime_nsec) : "now";
    if (m.valid & ATTR.MTIME) a.mtime = m.valid & ATTR.MTIME_SET ? time(m.mtime_sec, m.mtime_nsec) : "now";
    // Tsetattr names no caller: the fid's attach user is the one asking.
    s.fs.setattr(f.ino, a, f.uid);
    return { type: "Rsetattr", tag: m.tag };
  },

  // Every write is committed before its Rwrite leaves: fsync is a barrier
  // with nothing left to wait for.
  Tfsync(s, m) {
    s.fid(m.fid);
    return { type: "Rfsync", tag: m.tag };
  },

  Txattrwalk(s, m) {
    const f = nodeFid(s, m.fid);
    if (m.newfid !== m.fid && s.hasFid(m.newfid)) throw new P9Error(ERRNO.EBADF, `newfid ${m.newfid} in use`);
    const data = s.fs.xattr(f.ino, m.name);
    s.putFid({ ...f, fid: m.newfid, kind: "xattr", open: null, data, xattr: null });
    return { type: "Rxattrwalk", tag: m.tag, size: BigInt(data.byteLength) };
  },

  // Txattrcreate + Twrite + Tclunk: the value is committed at the clunk.
  Txattrcreate(s, m) {
    writable(s);
    const f = nodeFid(s, m.fid);
    if (m.attr_size > BigInt(XATTR_SIZE_MAX)) throw new P9Error(ERRNO.E2BIG);
    s.putFid({
      ...f,
      kind: "xattr",
      open: null,
      data: new Uint8Array(Number(m.attr_size)),
      dirOffset: 0,
      xattr: { name: m.name.slice(), flags: m.flags },
    });
    return { type: "Rxattrcreate", tag: m.tag };
  },

  async Tlock(s, m, ctx) {
    const f = openFid(s, m.fid);
    if (m.lock_type !== LOCK_TYPE.RDLCK && m.lock_type !== LOCK_TYPE.WRLCK && m.lock_type !== LOCK_TYPE.UNLCK) {
      throw new P9Error(ERRNO.EINVAL, "lock type");
    }
    // fcntl(2) and POSIX: EBADF when the lock type does not fit the mode the
    // fd was opened in (Linux fs/locks.c check_fmode_for_setlk: F_RDLCK needs
    // FMODE_READ, F_WRLCK FMODE_WRITE; F_UNLCK any open file). A reader must
    // not hold others off writing; on a read-only share nothing opens for writing.
    if (m.lock_type === LOCK_TYPE.WRLCK && !canWrite(f.open.flags)) throw new P9Error(ERRNO.EBADF, "write lock on a fid not open for writing");
    if (m.lock_type === LOCK_TYPE.RDLCK && !canRead(f.open.flags)) throw new P9Error(ERRNO.EBADF, "read lock on a fid not open for reading");
    // Each lock entry keeps its client_id, in memory and in SQLite.
    if (m.client_id.byteLength > LOCK_CLIENT_ID_MAX) throw new P9Error(ERRNO.EINVAL, `client_id over ${LOCK_CLIENT_ID_MAX} bytes`);
    const status = await s.fs.lock(
      {
        ino: f.ino,
        sid: s.sid,
        procId: m.proc_id,
        clientId: m.client_id.slice(),
        type: m.lock_type,
        start: Number(m.start > BigInt(LOCK_EOF) ? BigInt(LOCK_EOF) : m.start),
        length: Number(m.length > BigInt(LOCK_EOF) ? BigInt(LOCK_EOF) : m.length),
      },
      (m.flags & LOCK_FLAGS.BLOCK) !== 0,
      ctx.signal,
    );
    return { type: "Rlock", tag: m.tag, status };
  },

  // F_GETLK only asks: any open fid may ask about either type (POSIX fcntl
  // lists no mode for it; Linux fcntl_getlk checks none).
  Tgetlock(s, m) {
    const f = openFid(s, m.fid);
    const c = s.fs.lockConflict({
      ino: f.ino,
      sid: s.sid,
      procId: m.proc_id,
      clientId: m.client_id,
      type: m.lock_type,
      start: Number(m.start > BigInt(LOCK_EOF) ? BigInt(LOCK_EOF) : m.start),
      length: Number(m.length > BigInt(LOCK_EOF) ? BigInt(LOCK_EOF) : m.length),
    });
    if (!c) {
      return {
        type: "Rgetlock",
        tag: m.tag,
        lock_type: LOCK_TYPE.UNLCK,
        start: m.start,
        length: m.length,
        proc_id: m.proc_id,
        client_id: m.client_id,
      };
    }
    return {
      type: "Rgetlock",
      tag: m.tag,
      lock_type: c.type,
      start: BigInt(c.start),
      length: c.end === LOCK_EOF ? 0n : BigInt(c.end - c.start),
      proc_id: c.procId,
      client_id: c.clientId,
    };
  },
};

