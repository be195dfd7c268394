// The share filesystem's vocabulary: inodes, entries, options. It knows
// inodes and byte ranges, never fids or tags (those belong to the session).

import { S_IF, S_IFMT } from "../protocol/index.ts";

/** One file, directory or symlink. `ino` is qid.path: unique, never reused. */
export interface Inode {
  readonly ino: number;
  /** st_mode with the S_IF* type bits. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  /** Names of a file; 2 + subdirectories of a directory (1 until first listed from R2); 0 once removed. */
  readonly nlink: number;
  /** A block or character device's numbers as Linux's new_encode_dev packs them (protocol/devices.ts); 0 for anything else. */
  readonly rdev: number;
  readonly atime: Timespec;
  readonly mtime: Timespec;
  readonly ctime: Timespec;
  readonly btime: Timespec;
  /** qid.version: nonzero, changes when the content changes. */
  readonly version: number;
  /** The R2 object that holds the published content (null: none yet). */
  readonly key: string | null;
  readonly etag: string | null;
  /** Directories: the parent ("..": the root is its own parent). */
  readonly parent: number;
  /** Bytes at the start of the object at `key` that are still the content. */
  readonly baseLen: number;
  /** Content or place in R2 not yet published. */
  readonly dirty: boolean;
  /** Fids open on it, across every session. */
  readonly opens: number;
  /** The entry mirrors an R2 object or prefix (an R2 listing may remove it). */
  readonly fromR2: boolean;
  /** Times another tool replaced the object under this file. */
  readonly replaced: number;
  /** When the publisher is due to upload it (ms since the epoch), or null when not scheduled. */
  readonly publishAfter: number | null;
}

/**
 * A file's type from its st_mode: anything with a mode (an inode, a row, a
 * mode of its own as `{ mode }`), so that the type test is spelled once.
 */
export const isDir = (i: { readonly mode: number }) => (i.mode & S_IFMT) === S_IF.DIR;
export const isReg = (i: { readonly mode: number }) => (i.mode & S_IFMT) === S_IF.REG;
export const isLink = (i: { readonly mode: number }) => (i.mode & S_IFMT) === S_IF.LNK;

export interface Timespec {
  readonly sec: number;
  readonly nsec: number;
}

/** A directory entry with the cookie that resumes a listing after it. */
export interface Entry {
  name: Uint8Array;
  cookie: bigint;
  inode: Inode;
}

export interface StatFs {
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  fsid: bigint;
  namelen: number;
}

/** What a share's configuration tells its filesystem. */
export interface ShareOptions {
  /** Key prefix without trailing slash; "" for the whole bucket. */
  prefix: string;
  uid: number;
  gid: number;
  fileMode: number;
  dirMode: number;
  revalidateMs: number;
  quotaBytes: number;
  /** Stable id of the share for Rstatfs fsid. */
  fsid: bigint;
  /** Journal bytes past which writes answer ENOSPC (a hole counts: its publish uploads zeros). */
  journalCap: number;
  /** The largest file: a truncate or write past it answers EFBIG. */
  maxFileBytes: number;
  /** The largest multipart part the publisher holds in memory (the object's in-flight budget). */
  partMaxBytes: number;
  /** How long after its last close a file is published. */
  publishDelayMs: number;
  /** Files larger than this are published with a multipart upload. */
  multipartThreshold: number;
  /** Directory levels a path may have below the root. */
  maxDepth: number;
  /** Lock entries one session may hold, over every file (then ENOLCK). */
  maxLocksPerSession: number;
  /** Lock entries one file may carry, over every session (then ENOLCK). */
  maxLocksPerInode: number;
  /** Lock entries the share holds in all (they live in the object's memory). */
  maxLocks: number;
  /** Whether mknod may make block and character devices (EPERM otherwise). */
  deviceNodes: boolean;
  /** The largest readahead window of a sequential reader (0 or absent: no readahead). */
  readaheadBytes?: number;
  /** Bytes the content cache may hold in SQLite (0 or absent: no cache). */
  cacheBytes?: number;
  /** The largest object the content cache keeps. */
  cacheFileBytes?: number;
}

/** Keys the share itself put or removed, which a listing must not take for new files. */
export interface KeyClaims {
  listingMark(): number;
  claimed(key: string, mark: number): boolean;
  claimedUnder(prefix: string, mark: number): boolean;
}
