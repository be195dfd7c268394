// Set-user-ID and set-group-ID bits after a change to a file, as Linux's
// own file systems leave them. Linux's 9p client leaves it to the server on
// a write: v9fs_file_write_iter (fs/9p/vfs_file.c, cache=none) sends Twrite
// and never calls file_remove_privs, so a file written by another user kept
// its bits here (pjdfstest chmod/12.t). For a truncate or a chown the client
// computes the new mode itself and sends it in the same Tsetattr; the rules
// below give the same answer to clients that do not (and to a client whose
// idea of the mode was stale).
//
// The acting user is the uid its fid was attached with: with access=client
// (and access=user) Linux attaches once per user with n_uname = fsuid.
// 9P carries no groups, so the one privilege known here is uid 0's.

import { isDir, isReg } from "./types.ts";

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o0010;

/**
 * The mode after a write or a truncate by `uid`: should_remove_suid
 * (fs/inode.c in Linux 6.1, which file_remove_privs and do_truncate ask).
 * S_ISUID goes, and S_ISGID when group-execute is set (without it S_ISGID
 * is a mandatory-locking mark, not a set-group-ID); only on regular files,
 * and not for a caller with CAP_FSETID (root). Since 6.2
 * (setattr_should_drop_suidgid, fs/attr.c) Linux also drops a S_ISGID
 * without group-execute when the writer is not in the file's group; with no
 * groups in 9P that cannot be told here, so the 6.1 rule, which keeps it,
 * is the one followed.
 */
export function modeAfterWrite(mode: number, uid: number): number {
  if (!isReg({ mode }) || uid === 0) return mode;
  return mode & ~killed(mode);
}

/**
 * The mode after a chown (any Tsetattr that sets uid or gid without the
 * mode): chown_common (fs/open.c) asks notify_change (fs/attr.c) for
 * ATTR_KILL_SUID | ATTR_KILL_SGID on anything but a directory, whoever
 * makes the call, root included; notify_change then clears S_ISUID, and
 * S_ISGID only with group-execute. Directories keep both (pjdfstest
 * chown/00.t notes this as Linux's behaviour).
 */
export function modeAfterChown(mode: number): number {
  if (isDir({ mode })) return mode;
  return mode & ~killed(mode);
}

function killed(mode: number): number {
  let kill = mode & S_ISUID;
  if ((mode & (S_ISGID | S_IXGRP)) === (S_ISGID | S_IXGRP)) kill |= S_ISGID;
  return kill;
}
