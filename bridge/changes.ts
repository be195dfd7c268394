// Which cached inodes a request the bridge forwards may change, so that the
// cache drops them as it sends (cheap insurance: the gateway's recall to the
// changer's own socket comes before the reply anyway, docs/leases.md rule 1).
// What a request changes is the 9P2000.L semantics of each (Linux
// net/9p/client.c's requests, as the gateway's handlers apply them); an inode
// the bridge cannot name here (a renamed file's old parent) is left to the
// recall.

import { DOTL, type Message } from "../protocol/index.ts";

/**
 * The inodes `t` changes, as far as the bridge knows them: `ino` gives a
 * guest fid's inode, `child` the cached inode of a name in a fid's directory.
 */
export function changedBy(
  t: Message,
  ino: (fid: number) => string | null,
  child: (dirFid: number, name: Uint8Array) => string | null,
): string[] {
  const out: (string | null)[] = [];
  switch (t.type) {
    case "Twrite":
    case "Tsetattr":
    case "Tremove":
    case "Txattrcreate":
      out.push(ino(t.fid));
      break;
    case "Tlopen":
      // O_TRUNC changes size and times.
      if (t.flags & DOTL.TRUNC) out.push(ino(t.fid));
      break;
    case "Tlcreate":
    case "Tsymlink":
      out.push(ino(t.fid), child(t.fid, t.name));
      break;
    case "Tmkdir":
    case "Tmknod":
      out.push(ino(t.dfid), child(t.dfid, t.name));
      break;
    case "Tlink":
      out.push(ino(t.dfid), ino(t.fid), child(t.dfid, t.name));
      break;
    case "Trename":
      out.push(ino(t.fid), ino(t.dfid), child(t.dfid, t.name));
      break;
    case "Trenameat":
      out.push(ino(t.olddirfid), ino(t.newdirfid), child(t.olddirfid, t.oldname), child(t.newdirfid, t.newname));
      break;
    case "Tunlinkat":
      out.push(ino(t.dirfid), child(t.dirfid, t.name));
      break;
  }
  return out.filter((x): x is string => x !== null);
}

/**
 * The names `t` removes or moves (a directory's inode and a name in it) and
 * the inodes it moves or removes: a virtual fid walked through any of them
 * must be made real before `t` crosses, or its names would lead elsewhere.
 */
export function namesChangedBy(t: Message, ino: (fid: number) => string | null): { names: [string | null, string][]; inos: (string | null)[] } {
  const text = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");
  switch (t.type) {
    case "Tunlinkat":
      return { names: [[ino(t.dirfid), text(t.name)]], inos: [] };
    case "Trenameat":
      return { names: [[ino(t.olddirfid), text(t.oldname)], [ino(t.newdirfid), text(t.newname)]], inos: [] };
    case "Trename":
      return { names: [[ino(t.dfid), text(t.name)]], inos: [ino(t.fid)] };
    case "Tremove":
      return { names: [], inos: [ino(t.fid)] };
    default:
      return { names: [], inos: [] };
  }
}
