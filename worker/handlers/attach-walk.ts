// Session-level requests: Tauth, Tattach, Twalk, Tclunk. (Tremove, which
// also clunks its fid, changes the share: handlers/write.ts.)

import { ERRNO, NOFID, NONUNAME, P9Error, shownName } from "../../protocol/index.ts";
import { checkLookupName } from "../../storage/keys.ts";
import { isDir } from "../../storage/types.ts";
import { qidOf } from "../attrs.ts";
import type { HandlerTable } from "../session.ts";

/** uid of "nobody" (Linux overflowuid), for attaches that name no user. */
const NOBODY = 65534;

export const attachWalk: HandlerTable = {
  // No authentication inside 9P: tokens are checked before the WebSocket
  // upgrade. diod's clients send Tauth and treat ENOENT as "no auth needed".
  Tauth: () => {
    throw new P9Error(ERRNO.ENOENT, "authentication not required");
  },

  async Tattach(s, m) {
    if (m.afid !== NOFID) throw new P9Error(ERRNO.EINVAL, "authentication not required: use afid NOFID");
    if (s.hasFid(m.fid)) throw new P9Error(ERRNO.EBADF, `fid ${m.fid} in use`);
    // aname "" or "/" is the share's root; a path selects a directory in it.
    const root = s.fs.root();
    let node = root;
    // Split as bytes, not as decoded text: a decoder would drop a leading
    // U+FEFF and walk another name (protocol/names.ts).
    for (const name of splitPath(m.aname)) {
      checkLookupName(name);
      node = await s.fs.lookup(node.ino, name, root.ino);
    }
    if (!isDir(node)) throw new P9Error(ERRNO.ENOTDIR, "aname is not a directory");
    if (s.hasFid(m.fid)) throw new P9Error(ERRNO.EBADF, `fid ${m.fid} in use`);
    const uname = shownName(m.uname);
    const uid =
      m.n_uname !== undefined && m.n_uname !== NONUNAME ? m.n_uname : /^\d{1,10}$/.test(uname) ? Number(uname) : NOBODY;
    s.putFid({ fid: m.fid, kind: "node", ino: node.ino, top: node.ino, uid, open: null, dirOffset: 0, dirCookie: 0n, data: null });
    return { type: "Rattach", tag: m.tag, qid: qidOf(node) };
  },

  async Twalk(s, m, ctx) {
    const from = s.fid(m.fid);
    if (from.kind !== "node") throw new P9Error(ERRNO.EBADF, "not a file fid");
    if (m.newfid !== m.fid && s.hasFid(m.newfid)) throw new P9Error(ERRNO.EBADF, `newfid ${m.newfid} in use`);
    for (const name of m.wnames) checkLookupName(name);
    let node = s.fs.get(from.ino);
    const qids = [];
    /** The directory the current name is being looked up in, once noted (null: the lookup was not reached). */
    let lookedIn: number | null = null;
    // Linux walks from opened fids too (docs/9p.md): allowed.
    for (let i = 0; i < m.wnames.length; i++) {
      try {
        if (!isDir(node)) throw new P9Error(ERRNO.ENOTDIR);
        // A lease on each directory a name is looked up in, noted before the
        // lookup reads it (docs/leases.md rule 2): it covers the name's answer.
        // The lookup's own change (a first listing imported from R2) does not
        // strike it (worker/leases.ts, changed): the qid replied is read
        // after that import, when the lookup returns.
        ctx.lease(node.ino);
        lookedIn = node.ino;
        node = await s.fs.lookup(node.ino, m.wnames[i]!, from.top);
      } catch (e) {
        // walk(5): an error on the first name is an error; later, a short Rwalk.
        if (i === 0) {
          // The lookup found the name absent: the Rlerror ENOENT is granted
          // the directory, whose lease covers that a name is absent
          // (docs/leases.md); an R2 failure, or any other error, is not.
          if (e instanceof P9Error && e.errno === ERRNO.ENOENT && node.ino === lookedIn) ctx.grantWithError();
          throw e;
        }
        // A short Rwalk reads as "absent": leased only when the name is (ENOENT), not for an R2 error.
        if (!(e instanceof P9Error && e.errno === ERRNO.ENOENT)) ctx.unlease(node.ino);
        return { type: "Rwalk", tag: m.tag, qids };
      }
      qids.push(qidOf(node));
    }
    // Re-check after the awaits: the fids may have changed meanwhile.
    const src = s.fid(m.fid);
    if (m.newfid !== m.fid && s.hasFid(m.newfid)) throw new P9Error(ERRNO.EBADF, `newfid ${m.newfid} in use`);
    s.putFid({ ...src, fid: m.newfid, ino: node.ino, open: null, dirOffset: 0, dirCookie: 0n, data: null });
    return { type: "Rwalk", tag: m.tag, qids };
  },

  // The clunk of a Txattrcreate fid commits the value (and its errors are
  // the clunk's); the fid is gone either way.
  Tclunk(s, m) {
    const f = s.fid(m.fid);
    s.dropFid(m.fid);
    if (f.kind === "xattr" && f.xattr) {
      const declared = f.data?.byteLength ?? 0;
      if (f.dirOffset !== declared) throw new P9Error(ERRNO.EIO, `xattr value of ${declared} bytes got ${f.dirOffset}`);
      // Linux removes an attribute with a zero-size Txattrcreate.
      s.fs.setXattr(f.ino, f.xattr.name, f.data ?? new Uint8Array(0), f.xattr.flags, declared === 0);
    }
    return { type: "Rclunk", tag: m.tag };
  },
};

/** The non-empty '/'-separated byte segments of a path. */
function splitPath(path: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= path.byteLength; i++) {
    if (i < path.byteLength && path[i] !== 0x2f) continue;
    if (i > start) out.push(path.subarray(start, i));
    start = i + 1;
  }
  return out;
}
