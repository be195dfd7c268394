// Requests that would change the share. Until the write path lands they all
// answer EROFS; the fid they name must still exist (EBADF otherwise).

import { ERRNO, type Msg, P9Error, type TName } from "../../protocol/index.ts";
import type { Handler, HandlerTable } from "../session.ts";

function refuse<N extends TName>(fidsOf: (m: Msg<N>) => number[]): Handler<N> {
  return (s, m) => {
    for (const n of fidsOf(m)) s.fid(n);
    throw new P9Error(ERRNO.EROFS);
  };
}

export const readonly: HandlerTable = {
  Twrite: refuse<"Twrite">((m) => [m.fid]),
  Tlcreate: refuse<"Tlcreate">((m) => [m.fid]),
  Tsymlink: refuse<"Tsymlink">((m) => [m.fid]),
  Tmknod: refuse<"Tmknod">((m) => [m.dfid]),
  Trename: refuse<"Trename">((m) => [m.fid, m.dfid]),
  Tsetattr: refuse<"Tsetattr">((m) => [m.fid]),
  Txattrcreate: refuse<"Txattrcreate">((m) => [m.fid]),
  Tlink: refuse<"Tlink">((m) => [m.dfid, m.fid]),
  Tmkdir: refuse<"Tmkdir">((m) => [m.dfid]),
  Trenameat: refuse<"Trenameat">((m) => [m.olddirfid, m.newdirfid]),
  Tunlinkat: refuse<"Tunlinkat">((m) => [m.dirfid]),
  // Nothing is ever written, so there is nothing to flush.
  Tfsync: (s, m) => {
    s.fid(m.fid);
    return { type: "Rfsync", tag: m.tag };
  },
  // Byte-range locks arrive with the write path.
  Tlock: (s, m) => {
    s.fid(m.fid);
    throw new P9Error(ERRNO.ENOLCK, "locks are not supported yet");
  },
  Tgetlock: (s, m) => {
    s.fid(m.fid);
    throw new P9Error(ERRNO.ENOLCK, "locks are not supported yet");
  },
};
