// Open fids, counted per inode in memory (Namespace.openCount), and what
// their last close does: an inode removed while open goes then, and a
// changed file is scheduled for publishing.

import type { FsContext } from "./fs-context.ts";

export class Opens {
  constructor(private readonly c: FsContext) {}

  /** A fid was opened on the inode (counted in memory: Namespace.openCount). */
  opened(ino: number): void {
    if (this.c.ns.get(ino)) this.c.ns.setOpenCount(ino, this.c.ns.openCount(ino) + 1);
  }

  /** A fid open on the inode was clunked (or its session ended). */
  closed(ino: number): void {
    const node = this.c.ns.get(ino);
    if (!node) return;
    const opens = Math.max(0, this.c.ns.openCount(ino) - 1);
    this.c.ns.setOpenCount(ino, opens);
    if (opens > 0) return;
    // Removed while open (a directory too: rmdir while a process had it open): it goes now.
    if (node.nlink === 0 && this.c.ns.pathOf(ino) === null) {
      this.c.removal.forget(node, "here");
      return;
    }
    if (!node.dirty) return;
    if (this.c.scheduledByCreate.delete(ino)) this.c.publisher.scheduleAfterClose(ino, this.c.opts.publishDelayMs);
    else this.c.publisher.schedule(ino, this.c.opts.publishDelayMs);
  }

  /**
   * The share's object starts: `inos` are the inodes of the open fids that
   * have rows (worker/session-store.ts), one entry per fid.
   */
  countOpens(inos: Iterable<number>): void {
    for (const ino of inos) this.c.ns.setOpenCount(ino, this.c.ns.openCount(ino) + 1);
  }

  /**
   * After a restart ended sessions: fids that had no row yet (a plain
   * session writes its fids in batches, worker/session.ts) are gone with
   * them, and so is what they held. An inode they kept after its last name
   * went is forgotten, and a changed file that waited for their close is
   * scheduled for publishing, as their clunks would have done.
   */
  settleLostFids(): void {
    for (const ino of this.c.ns.heldByFids()) {
      if (this.c.ns.openCount(ino) > 0) continue;
      const node = this.c.ns.get(ino);
      if (!node) continue;
      if (node.nlink === 0 && this.c.ns.pathOf(ino) === null) this.c.removal.forget(node, "here");
      else if (node.dirty) this.c.publisher.schedule(ino, this.c.opts.publishDelayMs);
    }
  }
}
