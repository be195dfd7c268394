// File attributes carried in R2 custom metadata by other tools.
//
// s3fs writes `mode` as decimal st_mode ("33188") and `mtime`, `atime` and
// `ctime` as seconds, followed by "." and nine digits of nanoseconds when
// there are any ("1700000000.000000005"; s3fs's str(struct timespec));
// rclone writes `mode` as octal ("0100664") and `mtime` as RFC 3339. Both
// write uid and gid as decimal. We read both; edge9p writes the s3fs form
// (issue "Writes that lose nothing" documents it).
//
// Device numbers: s3fs keeps only the mode of a device node (its mknod drops
// rdev). stormfs and geesefs write `rdev` as the decimal dev_t; edge9p reads
// and writes that key, holding the number as Linux's new_encode_dev packs
// it, which is glibc's dev_t for every number a kernel dev_t holds
// (protocol/devices.ts). A value past 32 bits names no Linux device: ignored.

import { S_IF, S_IFMT } from "../protocol/index.ts";

export interface ObjectAttrs {
  /** Permission bits and setuid/setgid/sticky (never the type bits). */
  perm?: number;
  /** S_IF* type bits, when the metadata names one. */
  type?: number;
  uid?: number;
  gid?: number;
  /** Seconds and nanoseconds since the epoch. */
  mtime?: { sec: number; nsec: number };
  /** A device's numbers (new_encode_dev), from `rdev`. */
  rdev?: number;
  atime?: { sec: number; nsec: number };
  ctime?: { sec: number; nsec: number };
}

/** A time in the s3fs form: "SEC", or "SEC.NNNNNNNNN" when it has nanoseconds. */
export function formatTime(t: { sec: number; nsec: number }): string {
  return t.nsec === 0 ? String(t.sec) : `${t.sec}.${String(t.nsec).padStart(9, "0")}`;
}

function parseMode(v: string): number | undefined {
  const s = v.trim();
  // rclone: octal with a leading 0 ("0100664", "0644"); s3fs: decimal.
  if (/^0[0-7]+$/.test(s)) return parseInt(s, 8);
  if (/^[1-9][0-9]*$/.test(s)) return parseInt(s, 10);
  return undefined;
}

function parseId(v: string | undefined, max = 0xfffffffe): number | undefined {
  if (v === undefined || !/^[0-9]{1,10}$/.test(v.trim())) return undefined;
  const n = Number(v.trim());
  return n <= max ? n : undefined;
}

function parseTime(v: string | undefined): { sec: number; nsec: number } | undefined {
  if (v === undefined) return undefined;
  const s = v.trim();
  const num = /^(\d{1,12})(?:\.(\d{1,9}))?$/.exec(s);
  if (num) return { sec: Number(num[1]), nsec: Number((num[2] ?? "").padEnd(9, "0")) };
  // RFC 3339, fractional seconds kept to the nanosecond.
  const rfc = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i.exec(s);
  if (!rfc) return undefined;
  const ms = Date.parse(`${rfc[1]}${rfc[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return { sec: Math.floor(ms / 1000), nsec: Number((rfc[2] ?? "").padEnd(9, "0")) };
}

export function parseObjectAttrs(meta: Record<string, string> | undefined): ObjectAttrs {
  if (!meta) return {};
  const out: ObjectAttrs = {};
  const mode = meta.mode !== undefined ? parseMode(meta.mode) : undefined;
  if (mode !== undefined && mode <= 0o177777) {
    out.perm = mode & 0o7777;
    const type = mode & S_IFMT;
    if (type !== 0 && Object.values(S_IF).includes(type as never)) out.type = type;
  }
  const uid = parseId(meta.uid);
  if (uid !== undefined) out.uid = uid;
  const gid = parseId(meta.gid);
  if (gid !== undefined) out.gid = gid;
  for (const k of ["mtime", "atime", "ctime"] as const) {
    const t = parseTime(meta[k]);
    if (t !== undefined) out[k] = t;
  }
  const rdev = parseId(meta.rdev, 0xffffffff);
  if (rdev !== undefined) out.rdev = rdev;
  return out;
}
