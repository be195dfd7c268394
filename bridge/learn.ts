// What a reply from the gateway teaches a caching bridge (bridge/caching.ts):
// which guest fids now exist at the gateway and on which inode, and, for
// the inodes the reply's own grant names (docs/leases.md rules 2 and 6:
// never under another reply's lease), the attributes and names it shows.

import { ERRNO, type Message, decodeDirents } from "../protocol/index.ts";
import { type FidTable, inoOf } from "./fids.ts";
import type { LeaseCache } from "./lease-cache.ts";

export const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");

/** Plain names only: "." and ".." are the gateway's to resolve (walk(5)). */
export const plain = (n: string) => n !== "" && n !== "." && n !== "..";

/** A forwarded guest request, by tag: what its reply teaches. */
export interface Sent {
  req: Message;
  /** When it was sent (the bridge's clock): a lease it gets runs from here (rule 4). */
  at: number;
  /** Its place in the order of requests forwarded: a grant with its reply is weighed against the releases sent since (bridge/caching.ts). */
  seq: number;
  /** The inode of the fid it names, when known at the time it was sent. */
  ino: string | null;
}

/** What a reply says about fids, and (for inodes this reply's grant names: rule 2) about the share. */
export function learn(fids: FidTable, cache: LeaseCache, s: Sent, r: Message, granted: Set<string>, now: number): void {
  const t = s.req;
  switch (t.type) {
    case "Tattach":
      if (r.type === "Rattach") fids.setReal(t.fid, inoOf(r.qid));
      break;
    case "Twalk": {
      // An Rlerror ENOENT granted the directory looked in says the first
      // name is absent there (docs/leases.md: a directory's lease covers
      // that a name is absent); any other error says nothing of it.
      if (r.type === "Rlerror" && r.ecode === ERRNO.ENOENT && t.wnames.length > 0 && s.ino !== null && granted.has(s.ino)) {
        const n = latin1(t.wnames[0]!);
        if (plain(n)) cache.putName(s.ino, n, null, now);
      }
      if (r.type !== "Rwalk") break;
      const names = t.wnames.map(latin1);
      let dir = s.ino;
      for (let i = 0; i < names.length && dir !== null; i++) {
        const q = r.qids[i];
        if (plain(names[i]!) && granted.has(dir)) cache.putName(dir, names[i]!, q ?? null, now);
        if (!q) break; // a walk stops at the first name it cannot walk (walk(5))
        dir = inoOf(q);
      }
      if (r.qids.length === names.length) fids.setReal(t.newfid, names.length ? inoOf(r.qids.at(-1)!) : s.ino);
      break;
    }
    case "Txattrwalk":
      if (r.type === "Rxattrwalk") fids.setReal(t.newfid, null);
      break;
    case "Tlcreate":
      if (r.type === "Rlcreate") fids.setReal(t.fid, inoOf(r.qid));
      break;
    case "Txattrcreate":
      fids.setReal(t.fid, null);
      break;
    case "Tgetattr":
      if (r.type === "Rgetattr") {
        const ino = inoOf(r.qid);
        if (granted.has(ino)) cache.putAttrs(ino, r, t.request_mask, now);
      }
      break;
    case "Treaddir":
      // A listing under the directory's lease gives each name's qid, as a
      // walk of it would (the gateway builds both with qidOf): its walks can
      // be answered here (docs/leases.md: a directory's lease covers both).
      if (r.type === "Rreaddir" && s.ino !== null && granted.has(s.ino)) {
        cache.putListing(s.ino, t.offset, t.count, r.data, now);
        try {
          for (const e of decodeDirents(r.data)) {
            const n = latin1(e.name);
            if (plain(n)) cache.putName(s.ino, n, e.qid, now);
          }
        } catch {
          // A listing that does not parse teaches nothing.
        }
      }
      break;
    case "Tlopen":
      if (r.type === "Rlopen") fids.opened(t.fid);
      break;
    case "Tclunk":
    case "Tremove":
      // Gone whatever the answer (clunk(5), remove(5)).
      fids.clunk(t.fid);
      break;
  }
}
