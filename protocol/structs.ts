// Structures carried inside messages: qid, stat (9P2000 and .u), the .L
// directory entry. Sources: intro(5), stat(5), Linux net/9p/protocol.c
// ("wwdQdddqssss?sugu" for stat, "Qqbs" for a dirent).

import { DOTU } from "./dialect.ts";
import { type Decoded, type Encodable, type Kind, str, u8, u16, u32, u64, walkList } from "./kinds.ts";
import { only, struct } from "./shape.ts";

/** qid[13]: type[1] version[4] path[8]. */
export const qid = struct("qid", { type: u8, version: u32, path: u64 });
export type Qid = Decoded<typeof qid>;

/** Rwalk's nwqid[2] nwqid*(qid[13]). */
export const qids = walkList(qid, "nwqid");
/** Twalk's nwname[2] nwname*(wname[s]). */
export const wnames = walkList(str, "nwname");

const statBody = struct("stat", {
  type: u16,
  dev: u32,
  qid,
  mode: u32,
  atime: u32,
  mtime: u32,
  length: u64,
  name: str,
  uid: str,
  gid: str,
  muid: str,
  // 9P2000.u additions.
  extension: only(DOTU, str),
  n_uid: only(DOTU, u32),
  n_gid: only(DOTU, u32),
  n_muid: only(DOTU, u32),
});
export type Stat = Decoded<typeof statBody>;
export type StatInit = Encodable<typeof statBody>;

/**
 * A stat structure: size[2] then the fields; size counts the bytes after
 * itself (stat(5)). Used bare in directory reads and behind n[2] in Rstat and
 * Twstat.
 */
export const stat: Kind<Stat, StatInit> = {
  label: "stat",
  fixed: (d) => 2 + statBody.fixed(d),
  size: (v, d) => 2 + statBody.size(v, d),
  read: (r, d) => {
    const declared = r.u16("stat size");
    const start = r.offset;
    const v = statBody.read(r, d);
    const used = r.offset - start;
    if (r.failure === null && used !== declared) {
      r.fail(`stat size says ${declared}, its fields take ${used}`);
    }
    return v;
  },
  write: (w, v, d) => {
    w.u16(statBody.size(v, d));
    statBody.write(w, v, d);
  },
  show: statBody.show,
};

/**
 * n[2] stat[n] in Rstat/Twstat: the "double size" of stat(5). Decoding parses
 * the stat by its own size[2] (QEMU sends n = 0 in Rstat; Linux discards n);
 * encoding writes n = the stat's whole length.
 */
export const nstat: Kind<Stat, StatInit> = {
  label: "nstat",
  fixed: (d) => 2 + stat.fixed(d),
  size: (v, d) => 2 + stat.size(v, d),
  read: (r, d) => {
    r.u16("stat n");
    return stat.read(r, d);
  },
  write: (w, v, d) => {
    w.u16(stat.size(v, d));
    stat.write(w, v, d);
  },
  show: stat.show,
};

/** A 9P2000.L directory entry: qid[13] offset[8] type[1] name[s]. */
export const dirent = struct("dirent", { qid, offset: u64, type: u8, name: str });
export type Dirent = Decoded<typeof dirent>;
export type DirentInit = Encodable<typeof dirent>;
