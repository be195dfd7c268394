// Removing a name: the one rule for both ways a name goes, an unlink or a
// rename over it here (changes.ts), and an object gone from R2 that a
// listing no longer shows (importer.ts). A file keeps its inode while another
// name or an open fid uses it; with neither left, the inode goes with
// everything the share kept about it: its journal, its xattrs, its locks, its
// cache entry and readahead (Namespace.onContentGone), and, when the name
// went here, its object in R2 (the publisher's deletion job). When the
// object is already gone from R2 (another tool deleted it), no deletion is
// queued: it would only tombstone the key (Deletions.claimed) and hide a new
// object another tool puts there until the job ran.

import type { Journal } from "./journal.ts";
import type { LockTable } from "./locks.ts";
import type { Namespace } from "./namespace.ts";
import type { Publisher } from "./publisher.ts";
import { type Inode, isDir } from "./types.ts";
import type { Xattrs } from "./xattrs.ts";

export interface RemovalDeps {
  ns: Namespace;
  journal: Journal;
  locks: LockTable;
  xattrs: Xattrs;
  publisher: Publisher;
  /** The inode went: what the share keeps about it in memory goes too (ShareFs's publish-by-create mark). */
  forgotten: (ino: number) => void;
}

/** Where a name went: here (its object is to be deleted), or from R2 (its object is gone already). */
export type Gone = "here" | "from-r2";

export class Removal {
  constructor(private readonly d: RemovalDeps) {}

  /**
   * One name of `node` went (its entry is unlinked already). Returns the
   * links left: above 0, the inode stays; at 0 it stays while a fid has it
   * open (its open count is kept in its row then: fsck must not take it for
   * unreachable), and goes otherwise. A directory has no other name.
   */
  nameGone(node: Inode, gone: Gone, ctime?: Inode["ctime"]): number {
    const nlink = isDir(node) ? 0 : Math.max(0, node.nlink - 1);
    const opens = this.d.ns.openCount(node.ino);
    if (nlink > 0 || opens > 0 || ctime !== undefined) {
      this.d.ns.update(node.ino, { nlink, ctime, opens: nlink > 0 ? undefined : opens });
    }
    this.d.publisher.changed(node.ino);
    if (nlink === 0 && opens === 0) this.forget(node, gone);
    return nlink;
  }

  /** An inode with no name and no open fid: it goes, and all the share kept about it. */
  forget(node: Inode, gone: Gone): void {
    this.d.forgotten(node.ino);
    if (gone === "here" && node.key !== null) this.d.publisher.deleteKey(node.key, node.etag);
    this.d.journal.clear(node.ino);
    this.d.xattrs.dropInode(node.ino);
    this.d.locks.dropInode(node.ino);
    // (Its cache entry and readahead go with the row: onContentGone.)
    this.d.ns.remove(node.ino);
  }
}
