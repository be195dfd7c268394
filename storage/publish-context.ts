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
 * Journal bytes past which the publisher publishes a file still open for
 * writing rather than wait for its close (publisher.ts): a sixteenth of the
 * cap, so that one long write cannot fill the journal.
 */
export function openPublishBytes(journalCap: number): number {
  // A division, not `>> 4`: shifts take 32-bit integers, and the default cap (4 GiB) is 2^32.
  return journalCap / 16;
}

/**
 * Journal bytes past which a write schedules its open file's publish at once
 * (writes.ts): 64 MiB, and never below the publisher's own threshold, which
 * would decline it (with the default 4 GiB cap every write between 64 and
 * 256 MiB scheduled a publish that did nothing).
 */
export function writePublishBytes(journalCap: number): number {
  return Math.max(64 * 1024 * 1024, openPublishBytes(journalCap));
}

/** The key an inode publishes at from its path: `dir/` for a directory; a derived key for a path too long (keys.ts). */
export function keyFor(prefix: string, node: Inode, path: Uint8Array[]): string {
  return objectKeyOf(prefix, path, (node.mode & S_IFMT) === S_IF.DIR);
}
