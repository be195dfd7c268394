// What the publisher's parts share (publisher.ts schedules and publishes,
// uploads.ts puts objects, deletions.ts runs the deletion jobs and answers
// which keys are the share's own): one object, so that each part keeps to
// its concern and none reaches into another's state.

import { S_IF, S_IFMT } from "../protocol/index.ts";
import type { Jobs } from "./jobs.ts";
import type { Journal } from "./journal.ts";
import { objectKeyOf } from "./keys.ts";
import type { Namespace } from "./namespace.ts";
import type { Inode } from "./types.ts";

export interface PublisherDeps {
  ns: Namespace;
  journal: Journal;
  /** The `job` and `upload` tables (jobs.ts). */
  jobs: Jobs;
  bucket: () => R2Bucket;
  /** Reads the file's current content into `into` at `offset`. */
  read: (file: Inode, offset: number, into: Uint8Array) => Promise<number>;
  /** Takes bytes of the object's in-flight budget; returns the release. */
  reserve: (n: number) => Promise<() => void>;
  log: (msg: string) => void;
  now?: () => number;
  /** A regular file's bytes were put as one object (the content cache keeps them: they were just in the journal). */
  published?: (oldKey: string | null, key: string, etag: string, body: Uint8Array) => void;
}

export interface PublishStats {
  puts: number;
  multiparts: number;
  deletes: number;
  conflicts: number;
  failures: number;
}

export interface PublishContext {
  readonly d: PublisherDeps;
  readonly stats: PublishStats;
  readonly now: () => number;
  /** Keys being uploaded by this instance right now. */
  readonly uploading: Set<string>;
  /** Something may need the alarm earlier (Publisher.epoch moves). */
  wake(): void;
}

/**
 * Journal bytes past which a file still open for writing is published
 * anyway (a long write does not wait for its close to reach R2, and the
 * journal cap is not filled by one file): a sixteenth of the cap, at most
 * 64 MiB. The write that passes it schedules the publish (writes.ts), and
 * the publisher waits for the close below it (publisher.ts): one number, so
 * that no write schedules a publish the publisher then declines.
 */
export function openPublishBytes(journalCap: number): number {
  // A division, not `>> 4`: shifts take 32-bit integers, and the default cap (4 GiB) is 2^32.
  return Math.min(64 * 1024 * 1024, journalCap / 16);
}

/** The key an inode publishes at from its path: `dir/` for a directory; a derived key for a path too long (keys.ts). */
export function keyFor(prefix: string, node: Inode, path: Uint8Array[]): string {
  return objectKeyOf(prefix, path, (node.mode & S_IFMT) === S_IF.DIR);
}
