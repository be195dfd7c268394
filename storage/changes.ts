// Namespace changes: create, mkdir, symlink, mknod, link, rename, unlink.
// Each is atomic in SQLite: it awaits only the listings it needs (refresh),
// then re-checks and changes everything with no await between. The objects
// follow through the publisher; a name that goes goes through removal.ts.

import { type DevNumbers, ERRNO, P9Error, S_IF, S_IFMT, encodeDev, validDev } from "../protocol/index.ts";
import { type FsContext, SYMLINK_MAX } from "./fs-context.ts";
import { checkNewName, checkNotReserved } from "./keys.ts";
import { ROOT_INO } from "./schema.ts";
import { type Inode, type Timespec, isDir } from "./types.ts";

export class Changes {
  constructor(private readonly c: FsContext) {}

  /**
   * A directory ready for a new entry `name`: fresh from R2, name unused
   * and not the reserved one. Any path length goes: an object whose key
   * would pass R2's 1,024 bytes gets a derived key (keys.ts).
   */
  private async prepareNew(dirIno: number, name: Uint8Array): Promise<Inode> {
    checkNewName(name);
    checkNotReserved(dirIno === ROOT_INO, name);
    const dir0 = this.c.get(dirIno);
    if (!isDir(dir0)) throw new P9Error(ERRNO.ENOTDIR);
    await this.c.refresh(dir0);
    const dir = this.c.get(dirIno);
    const path = this.c.ns.pathOf(dir.ino);
    if (path === null) throw new P9Error(ERRNO.ENOENT, "the directory was removed");
    this.checkDepth(path);
    if (this.c.ns.lookup(dir.ino, name) !== null) throw new P9Error(ERRNO.EEXIST);
    return dir;
  }

  private dirChanged(dir: Inode, t: Timespec): void {
    this.c.ns.update(dir.ino, { mtime: t, ctime: t });
  }

  private makeNode(dir: Inode, name: Uint8Array, mode: number, uid: number, gid: number, rdev = 0, publishAfter?: number): Inode {
    const t = this.c.tick();
    const node = this.c.ns.create({
      publishAfter,
      mode,
      uid,
      gid,
      rdev,
      mtime: t,
      key: null,
      parent: dir.ino,
      fromR2: false,
      dirty: true,
    });
    this.c.ns.link(dir.ino, name, node.ino);
    this.dirChanged(dir, t);
    this.c.publisher.changed(node.ino);
    return node;
  }

  /** Tlcreate: a new regular file (mode's type bits are ignored). */
  async create(dirIno: number, name: Uint8Array, mode: number, uid: number, gid: number): Promise<Inode> {
    const dir = await this.prepareNew(dirIno, name);
    // Scheduled now, in the create's own row, rather than at its close:
    // the close of a file written soon after (create, write, close, as an
    // untar does) then finds it scheduled and writes nothing, so its Rclunk
    // does not wait on a write. Still open when due, it waits for the close.
    const node = this.makeNode(dir, name, S_IF.REG | (mode & 0o7777), uid, gid, 0, this.c.publisher.scheduleNew(this.c.opts.publishDelayMs));
    this.c.journal.noteEmpty(node.ino);
    this.c.scheduledByCreate.add(node.ino);
    return node;
  }

  async mkdir(dirIno: number, name: Uint8Array, mode: number, uid: number, gid: number): Promise<Inode> {
    const dir = await this.prepareNew(dirIno, name);
    const node = this.makeNode(dir, name, S_IF.DIR | (mode & 0o7777), uid, gid);
    // Nothing in R2 to list yet: its listing is its own.
    this.c.ns.setListedAt(node.ino, Date.now());
    this.c.publisher.schedule(node.ino, this.c.opts.publishDelayMs);
    return node;
  }

  async symlink(dirIno: number, name: Uint8Array, target: Uint8Array, uid: number, gid: number): Promise<Inode> {
    if (target.byteLength === 0 || target.byteLength > SYMLINK_MAX) throw new P9Error(ERRNO.ENAMETOOLONG);
    const dir = await this.prepareNew(dirIno, name);
    const node = this.makeNode(dir, name, S_IF.LNK | 0o777, uid, gid);
    this.c.ns.setTarget(node.ino, target);
    this.c.ns.update(node.ino, { size: target.byteLength });
    this.c.publisher.schedule(node.ino, this.c.opts.publishDelayMs);
    return this.c.get(node.ino);
  }

  /**
   * FIFOs, sockets and block and character devices are metadata: an empty
   * object whose mode (and, for a device, rdev) says what it is. Devices
   * only where the share allows them (EPERM otherwise: a device made here
   * opens that device in any guest that mounts the share without nodev),
   * and only with numbers Linux's dev_t holds (EINVAL).
   */
  async mknod(dirIno: number, name: Uint8Array, mode: number, uid: number, gid: number, dev?: DevNumbers): Promise<Inode> {
    const type = mode & S_IFMT;
    let rdev = 0;
    if (type === S_IF.CHR || type === S_IF.BLK) {
      if (!this.c.opts.deviceNodes) throw new P9Error(ERRNO.EPERM, "this share refuses device nodes (device_nodes = false)");
      if (!dev || !validDev(dev.major, dev.minor)) throw new P9Error(ERRNO.EINVAL, "device numbers past Linux's (major < 4096, minor < 2^20)");
      rdev = encodeDev(dev.major, dev.minor);
    } else if (type !== S_IF.FIFO && type !== S_IF.SOCK && type !== S_IF.REG && type !== 0) {
      throw new P9Error(ERRNO.EINVAL);
    }
    const dir = await this.prepareNew(dirIno, name);
    const node = this.makeNode(dir, name, (type || S_IF.REG) | (mode & 0o7777), uid, gid, rdev);
    this.c.publisher.schedule(node.ino, this.c.opts.publishDelayMs);
    return node;
  }

  /** Tlink: a hard link; the object stays at the path of the first link. */
  async link(dirIno: number, name: Uint8Array, ino: number): Promise<void> {
    const dir = await this.prepareNew(dirIno, name);
    const node = this.c.get(ino);
    if (isDir(node)) throw new P9Error(ERRNO.EPERM, "hard links to directories are not allowed");
    if (this.c.ns.pathOf(ino) === null) throw new P9Error(ERRNO.ENOENT, "the file was removed");
    const t = this.c.tick();
    this.c.ns.link(dir.ino, name, ino);
    this.c.ns.update(ino, { nlink: node.nlink + 1, ctime: t });
    this.dirChanged(dir, t);
    this.c.publisher.changed(ino);
  }

  /** Marks an inode (and, for a directory, everything below) as to be republished. */
  private moved(node: Inode): void {
    const all = isDir(node) ? [node.ino, ...this.c.ns.descendants(node.ino)] : [node.ino];
    for (const ino of all) {
      this.c.ns.update(ino, { dirty: 1, from_r2: 0 });
      this.c.publisher.changed(ino);
      this.c.publisher.schedule(ino, this.c.opts.publishDelayMs);
    }
  }

  /**
   * Trenameat: atomic in SQLite. An existing target is replaced (a directory
   * only by an empty directory, never by a file; a file never by a directory).
   * The objects follow through the publisher.
   */
  async rename(oldDirIno: number, oldName: Uint8Array, newDirIno: number, newName: Uint8Array): Promise<void> {
    checkNewName(newName);
    checkNewName(oldName);
    checkNotReserved(newDirIno === ROOT_INO, newName);
    for (const ino of [oldDirIno, newDirIno]) {
      const d = this.c.get(ino);
      if (!isDir(d)) throw new P9Error(ERRNO.ENOTDIR);
      await this.c.refresh(d);
    }
    const oldDir = this.c.get(oldDirIno);
    const newDir = this.c.get(newDirIno);
    const src = this.c.ns.lookup(oldDir.ino, oldName);
    if (src === null) throw new P9Error(ERRNO.ENOENT);
    const dst = this.c.ns.lookup(newDir.ino, newName);
    if (dst?.ino === src.ino) return;
    if (isDir(src) && this.c.ns.isWithin(newDir.ino, src.ino)) throw new P9Error(ERRNO.EINVAL, "cannot move a directory into itself");
    const newPath = this.c.ns.pathOf(newDir.ino);
    if (newPath === null) throw new P9Error(ERRNO.ENOENT);
    this.checkDepth(newPath);
    if (dst) {
      if (isDir(src) && !isDir(dst)) throw new P9Error(ERRNO.ENOTDIR);
      if (!isDir(src) && isDir(dst)) throw new P9Error(ERRNO.EISDIR);
      if (isDir(dst)) {
        await this.c.refresh(dst);
        if (this.c.ns.hasEntries(dst.ino)) throw new P9Error(ERRNO.ENOTEMPTY);
      }
    }
    // Re-check after the awaits, then change everything at once.
    if (this.c.ns.lookup(oldDir.ino, oldName)?.ino !== src.ino) throw new P9Error(ERRNO.ENOENT);
    const t = this.c.tick();
    const cur = this.c.ns.lookup(newDir.ino, newName);
    if (cur) this.dropLink(newDir.ino, newName, cur);
    this.c.ns.unlink(oldDir.ino, oldName);
    this.c.ns.link(newDir.ino, newName, src.ino);
    if (isDir(src)) this.c.ns.update(src.ino, { parent: newDir.ino });
    this.c.ns.update(src.ino, { ctime: t });
    this.dirChanged(oldDir, t);
    if (newDir.ino !== oldDir.ino) this.dirChanged(newDir, t);
    this.moved(this.c.get(src.ino));
  }

  /** Removes one name of an inode here; the inode goes when no name and no fid is left (removal.ts). */
  private dropLink(dirIno: number, name: Uint8Array, node: Inode): void {
    const wasPrimary = this.c.ns.primaryLink(node.ino);
    this.c.ns.unlink(dirIno, name);
    const nlink = this.c.removal.nameGone(node, "here", this.c.tick());
    // Still linked elsewhere: if this was the path its object lives at, move it.
    if (nlink > 0 && wasPrimary && wasPrimary.parent === dirIno) this.moved(this.c.get(node.ino));
  }

  /** A new name in the directory at `dirPath` stays within EDGE9P.max_depth. */
  private checkDepth(dirPath: readonly unknown[]): void {
    if (dirPath.length + 1 > this.c.opts.maxDepth) throw new P9Error(ERRNO.ENAMETOOLONG, "too many directory levels (EDGE9P.max_depth)");
  }

  /** Tunlinkat: a file (or, with rmdir, an empty directory). */
  async unlink(dirIno: number, name: Uint8Array, rmdir: boolean): Promise<void> {
    checkNewName(name);
    const dir0 = this.c.get(dirIno);
    if (!isDir(dir0)) throw new P9Error(ERRNO.ENOTDIR);
    await this.c.refresh(dir0);
    const node0 = this.c.ns.lookup(dirIno, name);
    if (node0 === null) throw new P9Error(ERRNO.ENOENT);
    if (rmdir && !isDir(node0)) throw new P9Error(ERRNO.ENOTDIR);
    if (!rmdir && isDir(node0)) throw new P9Error(ERRNO.EISDIR);
    // An empty directory in the namespace may still hold objects in R2.
    if (rmdir) await this.c.refresh(node0);
    const node = this.c.ns.lookup(dirIno, name);
    if (node === null || node.ino !== node0.ino) throw new P9Error(ERRNO.ENOENT);
    if (rmdir && this.c.ns.hasEntries(node.ino)) throw new P9Error(ERRNO.ENOTEMPTY);
    this.dropLink(dirIno, name, node);
    this.dirChanged(this.c.get(dirIno), this.c.tick());
  }
}
