// Numeric constants of 9P2000, 9P2000.u and 9P2000.L.
// Sources: Plan 9 intro(5)/fcall.h, Linux include/net/9p/9p.h, diod protocol.md.

/** The tag of Tversion/Rversion (version(5)). */
export const NOTAG = 0xffff;
/** "No fid": Tattach/Tauth afid when there is no authentication. */
export const NOFID = 0xffffffff;
/** n_uname "none" (Linux P9_NONUNAME): the client names the user only by uname. */
export const NONUNAME = 0xffffffff;
/** Most names (Twalk) and qids (Rwalk) in one walk: walk(5), Linux P9_MAXWELEM. */
export const MAXWELEM = 16;
/** Linux P9_ERRMAX: error strings are at most this many bytes. */
export const ERRMAX = 128;

/**
 * The smallest msize a client may use. Linux rejects a mount option below 4096
 * (EINVAL) and an Rversion msize below 4096 (EREMOTEIO): net/9p/client.c.
 */
export const MIN_MSIZE = 4096;

/**
 * The largest message a Worker or Durable Object accepts over a WebSocket:
 * 32 MiB. One byte more closes the socket with 1009 "Message is too large"
 * (measured in workerd; Cloudflare raised the limit from 1 MiB in Oct 2025).
 * Twrite is the largest message a client sends, so this bounds msize.
 */
export const PLATFORM_MSIZE_CEILING = 33_554_432;
export const PLATFORM_MSIZE_CEILING_SOURCE =
  "Workers/Durable Objects reject WebSocket messages over 32 MiB (close 1009)";

/**
 * Linux P9_IOHDRSZ: the Twrite header (23 bytes) rounded up. Linux sizes
 * Tread/Twrite counts as msize - 24 when the server gives no iounit.
 */
export const P9_IOHDRSZ = 24;

/** qid.type bits (Linux 9p.h; see 9p-wire.md footnote 3 on QTSYMLINK/QTLINK). */
export const QT = {
  DIR: 0x80,
  APPEND: 0x40,
  EXCL: 0x20,
  MOUNT: 0x10,
  AUTH: 0x08,
  TMP: 0x04,
  SYMLINK: 0x02,
  LINK: 0x01,
  FILE: 0x00,
} as const;

/** stat mode / Tcreate perm bits (intro(5), .u additions from Linux 9p.h). */
export const DM = {
  DIR: 0x80000000,
  APPEND: 0x40000000,
  EXCL: 0x20000000,
  MOUNT: 0x10000000,
  AUTH: 0x08000000,
  TMP: 0x04000000,
  SYMLINK: 0x02000000,
  LINK: 0x01000000,
  DEVICE: 0x00800000,
  NAMEDPIPE: 0x00200000,
  SOCKET: 0x00100000,
  SETUID: 0x00080000,
  SETGID: 0x00040000,
  SETVTX: 0x00010000,
} as const;

/** Topen/Tcreate mode[1] (open(5); OREXEC and OAPPEND from Linux). */
export const OMODE = {
  READ: 0,
  WRITE: 1,
  RDWR: 2,
  EXEC: 3,
  TRUNC: 0x10,
  REXEC: 0x20,
  RCLOSE: 0x40,
  APPEND: 0x80,
} as const;

/** Tlopen/Tlcreate flags, P9_DOTL_* (Linux 9p.h, written there in octal). */
export const DOTL = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  NOACCESS: 3,
  ACCMODE: 3,
  CREATE: 0x40,
  EXCL: 0x80,
  NOCTTY: 0x100,
  TRUNC: 0x200,
  APPEND: 0x400,
  NONBLOCK: 0x800,
  DSYNC: 0x1000,
  FASYNC: 0x2000,
  DIRECT: 0x4000,
  LARGEFILE: 0x8000,
  DIRECTORY: 0x10000,
  NOFOLLOW: 0x20000,
  NOATIME: 0x40000,
  CLOEXEC: 0x80000,
  SYNC: 0x100000,
} as const;

/** Tgetattr request_mask / Rgetattr valid bits, P9_STATS_*. */
export const STATS = {
  MODE: 0x1n,
  NLINK: 0x2n,
  UID: 0x4n,
  GID: 0x8n,
  RDEV: 0x10n,
  ATIME: 0x20n,
  MTIME: 0x40n,
  CTIME: 0x80n,
  INO: 0x100n,
  SIZE: 0x200n,
  BLOCKS: 0x400n,
  BTIME: 0x800n,
  GEN: 0x1000n,
  DATA_VERSION: 0x2000n,
  BASIC: 0x7ffn,
  ALL: 0x3fffn,
} as const;

/** Tsetattr valid bits, P9_ATTR_*. A time bit without its _SET bit means "now". */
export const ATTR = {
  MODE: 0x1,
  UID: 0x2,
  GID: 0x4,
  SIZE: 0x8,
  ATIME: 0x10,
  MTIME: 0x20,
  CTIME: 0x40,
  ATIME_SET: 0x80,
  MTIME_SET: 0x100,
} as const;

/** Tlock/Tgetlock. */
export const LOCK_TYPE = { RDLCK: 0, WRLCK: 1, UNLCK: 2 } as const;
export const LOCK_FLAGS = { BLOCK: 1, RECLAIM: 2 } as const;
export const LOCK_STATUS = { SUCCESS: 0, BLOCKED: 1, ERROR: 2, GRACE: 3 } as const;

/** Txattrcreate flags (Linux XATTR_CREATE / XATTR_REPLACE). */
export const XATTR = { CREATE: 1, REPLACE: 2 } as const;

/** Tunlinkat flags: AT_REMOVEDIR (Linux fcntl.h). */
export const AT_REMOVEDIR = 0x200;

/** Linux DT_* values carried in the readdir entry's type byte (include/linux/fs.h). */
export const DT = {
  UNKNOWN: 0,
  FIFO: 1,
  CHR: 2,
  DIR: 4,
  BLK: 6,
  REG: 8,
  LNK: 10,
  SOCK: 12,
} as const;

/** Linux S_IF* file-type bits of st_mode. */
export const S_IFMT = 0o170000;
export const S_IF = {
  SOCK: 0o140000,
  LNK: 0o120000,
  REG: 0o100000,
  BLK: 0o060000,
  DIR: 0o040000,
  CHR: 0o020000,
  FIFO: 0o010000,
} as const;

/** Rstatfs type for 9P (Linux V9FS_MAGIC). */
export const V9FS_MAGIC = 0x01021997;
