// What ShareFs's parts share: the share's stores and the few services of
// ShareFs itself (its clock, its inode lookup, its listings). changes.ts
// (create, rename, unlink) and writes.ts (setattr, write) each take one, so
// that neither reaches into ShareFs's fields.

import type { ContentCache } from "./content-cache.ts";
import type { Journal } from "./journal.ts";
import type { Namespace } from "./namespace.ts";
import type { Publisher } from "./publisher.ts";
import type { Readahead } from "./readahead.ts";
import type { Removal } from "./removal.ts";
import type { Inode, ShareOptions, Timespec } from "./types.ts";

/** PATH_MAX: the longest symlink target Linux reads. */
export const SYMLINK_MAX = 4096;

export interface FsContext {
  readonly ns: Namespace;
  readonly journal: Journal;
  readonly publisher: Publisher;
  readonly cache: ContentCache;
  readonly readahead: Readahead;
  readonly removal: Removal;
  readonly opts: ShareOptions;
  /**
   * New files whose publish time their create set (create): their close
   * moves it later only when less than half of publish_delay_ms is left, so
   * a file renamed just after its close (editors, git, tar) is still
   * published once, at its final name. In memory: after a restart a close
   * keeps what is set.
   */
  readonly scheduledByCreate: Set<number>;
  /** A time later than any this share handed out before (clock.ts ShareClock). */
  tick(): Timespec;
  /** The inode, or ESTALE when it no longer exists. */
  get(ino: number): Inode;
  /** Makes sure a directory reflects R2 as of at most the revalidation time ago. */
  refresh(dir: Inode): Promise<void>;
}
