// Device numbers of block and character devices, in the two forms 9P
// carries them.
//
// 9P2000.L: Tmknod sends major and minor apart (Linux p9_client_mknod_dotl
// sends MAJOR(rdev) and MINOR(rdev)); Rgetattr's rdev is one number, which
// the client unpacks with new_decode_dev (fs/9p/vfs_inode_dotl.c,
// v9fs_stat2inode_dotl). new_encode_dev (include/linux/kdev_t.h) packs a
// minor's low 8 bits, 12 bits of major, then the minor's upper 12 bits into
// 32 bits: a kernel dev_t holds majors below 4096 and minors below 2^20
// (MINORBITS). For such numbers glibc's makedev gives the same value, so
// this is also the st_rdev a Linux program prints.
//
// 9P2000.u: Tcreate with DMDEVICE and the extension "b MAJOR MINOR" or
// "c MAJOR MINOR" (v9fs_vfs_mknod, fs/9p/vfs_inode.c); Rstat gives the
// same form back, which p9mode2unixmode reads with "%c %i %i".

import { S_IF } from "./constants.ts";

export const DEV_MAJOR_MAX = 0xfff;
export const DEV_MINOR_MAX = 0xfffff;

export interface DevNumbers {
  major: number;
  minor: number;
}

/** Whether Linux's dev_t can hold the numbers. */
export function validDev(major: number, minor: number): boolean {
  return Number.isInteger(major) && Number.isInteger(minor) && major >= 0 && minor >= 0 && major <= DEV_MAJOR_MAX && minor <= DEV_MINOR_MAX;
}

/** new_encode_dev: the u32 of Rgetattr's rdev (numbers within validDev). */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** new_decode_dev: the numbers of a u32 rdev. */
export function decodeDev(rdev: number): DevNumbers {
  return { major: (rdev >>> 8) & DEV_MAJOR_MAX, minor: (rdev & 0xff) | ((rdev >>> 12) & ~0xff) };
}

/** The 9P2000.u extension of a device node ("b 8 0", "c 1 3"). */
export function deviceExtension(type: number, rdev: number): string {
  const { major, minor } = decodeDev(rdev);
  return `${type === S_IF.BLK ? "b" : "c"} ${major} ${minor}`;
}

/**
 * A 9P2000.u device extension: the S_IF type and the numbers, or null when
 * it names no device Linux could have (another letter, missing or extra
 * fields, numbers past dev_t's).
 */
export function parseDeviceExtension(ext: string): ({ type: number } & DevNumbers) | null {
  const m = /^([bc]) ([0-9]{1,7}) ([0-9]{1,7})$/.exec(ext);
  if (!m) return null;
  const major = Number(m[2]);
  const minor = Number(m[3]);
  if (!validDev(major, minor)) return null;
  return { type: m[1] === "b" ? S_IF.BLK : S_IF.CHR, major, minor };
}
