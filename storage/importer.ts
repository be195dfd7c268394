// Imports a directory from an R2 listing, so objects that other tools put
// into the bucket appear in the share (docs/design.md). A directory is
// listed the first time it is looked up and again once its listing is older
// than the revalidation time; a lookup of a missing name never costs a list
// of its own.
//
// A directory whose children may have keys too long for R2 (keys.ts) is
// listed twice: under its own prefix, and under its derived prefix
// `.edge9p/long/<hash of its path>/`, where an entry counts only if its own
// key could not exist (anything else there would alias a name with a key of
// its own, and is left out and logged). The metadata of such an object
// (`edge9p-dir`) places nothing: where it is listed does. `.edge9p` at the
// share's root is never an entry.

import { S_IF, S_IFMT } from "../protocol/index.ts";
import { KEY_MAX, dirPrefixOf, fitsKey, isReserved, longPrefixOf, mayHoldLong, objectKeyOf, segmentName } from "./keys.ts";
import { parseObjectAttrs } from "./metadata.ts";
import { type Namespace, hex, nowSpec } from "./namespace.ts";
import type { Removal } from "./removal.ts";
import { type Inode, type KeyClaims, type Timespec, isDir } from "./types.ts";

/** Objects per list call: R2's maximum. */
const PAGE = 1000;

/** File types an object's mode may give it besides a regular file (a directory is a prefix). */
const KEPT_TYPES = new Set<number>([S_IF.LNK, S_IF.FIFO, S_IF.SOCK, S_IF.CHR, S_IF.BLK]);


export interface ImportStats {
  lists: number;
  added: number;
  changed: number;
  removed: number;
  skipped: string[];
}

function timeOf(d: Date): Timespec {
  return nowSpec(d.getTime());
}

export class Importer {
  /** R2 list calls made, for the object's stats. */
  lists = 0;
  /** Imports in progress, so concurrent lookups share one listing. */
  private readonly running = new Map<number, Promise<ImportStats>>();

  constructor(
    private readonly ns: Namespace,
    private readonly bucket: () => R2Bucket,
    private readonly sharePrefix: string,
    private readonly log: (msg: string) => void = () => {},
    /** Which keys are the share's own (uploads, tombstones): the publisher. */
    private readonly claims: KeyClaims,
    /** Removes a name as an unlink does, but for an object already gone from R2 (removal.ts). */
    private readonly removal: Removal,
  ) {}

  /** Imports the directory if it was never listed or its listing is stale. */
  async ensureFresh(dir: Inode, revalidateMs: number, now = Date.now()): Promise<void> {
    const at = this.ns.listedAt(dir.ino);
    if (at !== null && now - at < revalidateMs) return;
    await this.importDir(dir);
  }

  importDir(dir: Inode): Promise<ImportStats> {
    let p = this.running.get(dir.ino);
    if (!p) {
      p = this.run(dir).finally(() => this.running.delete(dir.ino));
      this.running.set(dir.ino, p);
    }
    return p;
  }

  private async run(dir: Inode): Promise<ImportStats> {
    const path = this.ns.pathOf(dir.ino);
    const stats: ImportStats = { lists: 0, added: 0, changed: 0, removed: 0, skipped: [] };
    if (path === null) return stats; // removed meanwhile
    // The key prefix of the directory's current path: objects moved here by
    // a rename are under it once published, and until then the local entries
    // (not from R2) are left alone.
    const prefix = dirPrefixOf(this.sharePrefix, path);
    const before = this.ns.importedEntries(dir.ino);
    const seen = new Set<string>();
    const started = Date.now();
    const mark = this.claims.listingMark();
    const atRoot = path.length === 0;
    // Derived keys first: a directory there wins over an object of the same
    // name in the plain listing (a file key of exactly 1,024 bytes), as
    // everywhere a prefix wins over an object.
    const listings: { at: string; long: boolean }[] = [];
    if (mayHoldLong(prefix)) listings.push({ at: longPrefixOf(this.sharePrefix, path), long: true });
    if (new TextEncoder().encode(prefix).byteLength < KEY_MAX) listings.push({ at: prefix, long: false });
    for (const { at, long } of listings) {
      // A derived key's name is taken only where its own key could not be.
      const misplaced = (seg: string, isDir: boolean) => long && fitsKey(prefix, seg, isDir);
      let cursor: string | undefined;
      do {
        const page = await this.bucket().list({
          prefix: at,
          delimiter: "/",
          cursor,
          limit: PAGE,
          include: ["customMetadata", "httpMetadata"],
        } as R2ListOptions);
        stats.lists++;
        this.lists++;
        // The directory may have been removed while we listed.
        if (this.ns.get(dir.ino) === null) return stats;
        // Prefixes first: a name that is both a prefix and an object is a directory.
        for (const p of page.delimitedPrefixes) {
          const seg = p.slice(at.length, -1);
          const name = segmentName(seg);
          if (name !== null && atRoot && !long && isReserved(name)) continue; // the reserved prefix: nobody's
          if (name === null || misplaced(seg, true)) {
            stats.skipped.push(p);
            continue;
          }
          const id = hex(name);
          if (seen.has(id)) continue;
          seen.add(id);
          this.upsertDir(dir, name, p, mark, stats);
        }
        for (const obj of page.objects) {
          const rest = obj.key.slice(at.length);
          if (rest === "") continue; // this directory's own marker object
          const name = segmentName(rest);
          if (name !== null && atRoot && !long && isReserved(name)) continue;
          if (name === null || misplaced(rest, false)) {
            stats.skipped.push(obj.key);
            continue;
          }
          const id = hex(name);
          if (seen.has(id)) {
            stats.skipped.push(obj.key); // hidden by the directory of the same name
            continue;
          }
          seen.add(id);
          this.upsertFile(dir, name, obj, mark, stats);
        }
        cursor = page.truncated ? page.cursor : undefined;
      } while (cursor !== undefined);
    }
    for (const [id, e] of before) {
      if (seen.has(id)) continue;
      // Gone from R2. Re-check: a local change since the listing began wins.
      const cur = this.ns.lookup(dir.ino, e.name);
      if (!cur || !cur.fromR2 || cur.dirty || cur.opens > 0) continue;
      // A file's object lives at its first link only: another link's name is
      // never in a listing (hard links have no object of their own).
      if (!isDir(cur) && cur.key !== objectKeyOf(this.sharePrefix, [...path, e.name], false)) continue;
      if (isDir(cur) && this.hasLocal(cur.ino)) continue;
      this.detach(dir.ino, e.name, cur);
      stats.removed++;
    }
    this.ns.setListedAt(dir.ino, started);
    if (stats.skipped.length) {
      this.log(`keys that make no valid name, left out: ${stats.skipped.slice(0, 5).map((k) => JSON.stringify(k)).join(", ")}${stats.skipped.length > 5 ? ` and ${stats.skipped.length - 5} more` : ""}`);
    }
    return stats;
  }

  /**
   * Takes one name away: a file keeps its inode while another name or an
   * open fid uses it, by the same rule as an unlink (removal.ts); a
   * directory goes with everything in it. Its objects are gone from R2
   * already, so no deletion is queued.
   */
  private detach(parent: number, name: Uint8Array, node: Inode): void {
    this.ns.unlink(parent, name);
    if (!isDir(node)) return this.dropName(node.ino);
    // One name per entry below it (a file linked twice there loses two).
    const dirs = [node.ino];
    for (const ino of this.ns.descendants(node.ino)) {
      const n = this.ns.get(ino);
      if (n && isDir(n)) dirs.push(ino);
      else if (n) this.dropName(ino);
    }
    for (const d of dirs) {
      this.ns.unlinkAll(d);
      const n = this.ns.get(d);
      if (n) this.removal.forget(n, "from-r2");
    }
  }

  private dropName(ino: number): void {
    const n = this.ns.get(ino);
    if (n) this.removal.nameGone(n, "from-r2");
  }

  /** Whether anything below a directory exists only here (not yet in R2). */
  private hasLocal(dir: number): boolean {
    return this.ns.descendants(dir).some((ino) => {
      const n = this.ns.get(ino);
      return n !== null && (!n.fromR2 || n.dirty);
    });
  }

  private upsertDir(dir: Inode, name: Uint8Array, prefix: string, mark: number, stats: ImportStats): void {
    const cur = this.ns.lookup(dir.ino, name);
    if (cur && isDir(cur)) return;
    // Objects still on their way from a directory renamed or removed here.
    if (!cur && this.claims.claimedUnder(prefix, mark)) return;
    // A local file of that name wins until it is published.
    if (cur && (!cur.fromR2 || cur.dirty)) return;
    if (cur) this.detach(dir.ino, name, cur);
    const o = this.ns.options;
    const child = this.ns.create({
      mode: S_IF.DIR | o.dirMode,
      uid: o.uid,
      gid: o.gid,
      mtime: nowSpec(),
      // Its marker's key, which may hold an object (`dir/`, the only thing
      // a directory with a derived key has in R2): an rmdir or a rename
      // deletes it then, or the old directory came back with the next listing.
      key: prefix,
      parent: dir.ino,
      fromR2: true,
    });
    this.ns.link(dir.ino, name, child.ino);
    stats.added++;
  }

  private upsertFile(dir: Inode, name: Uint8Array, obj: R2Object, mark: number, stats: ImportStats): void {
    const o = this.ns.options;
    const a = parseObjectAttrs(obj.customMetadata);
    // Symlinks, FIFOs, sockets and devices keep their type (edge9p publishes
    // them as empty objects with the mode, devices with their rdev too);
    // anything else an object stands for is a file. R2 is trusted: a share
    // that refuses to make devices still shows one that R2 says is there.
    const type = a.type !== undefined && KEPT_TYPES.has(a.type) ? a.type : S_IF.REG;
    const mode = type | (a.perm ?? o.fileMode);
    const rdev = type === S_IF.CHR || type === S_IF.BLK ? (a.rdev ?? 0) : 0;
    const mtime = a.mtime ?? timeOf(obj.uploaded);
    const cur = this.ns.lookup(dir.ino, name);
    // Local changes win until published (the publisher keeps the other
    // version under a conflict name).
    if (cur && (!cur.fromR2 || cur.dirty)) return;
    // The content of a file that was renamed or deleted here: not a new file.
    if ((!cur || cur.key !== obj.key) && this.claims.claimed(obj.key, mark)) return;
    if (cur && (cur.mode & S_IFMT) === type && cur.key === obj.key) {
      if (cur.etag !== obj.etag) {
        this.ns.replaceContent(cur.ino, { size: obj.size, etag: obj.etag, mtime, atime: a.atime, ctime: a.ctime, mode, uid: a.uid, gid: a.gid, rdev });
        stats.changed++;
      }
      return;
    }
    if (cur && isDir(cur) && this.hasLocal(cur.ino)) return; // what is only here wins
    if (cur) this.detach(dir.ino, name, cur);
    const child = this.ns.create({
      mode,
      uid: a.uid ?? o.uid,
      gid: a.gid ?? o.gid,
      size: obj.size,
      rdev,
      // The times the metadata names, to the nanosecond (metadata.ts); else the upload's.
      mtime,
      atime: a.atime,
      ctime: a.ctime,
      btime: timeOf(obj.uploaded),
      key: obj.key,
      etag: obj.etag,
      parent: dir.ino,
      fromR2: true,
    });
    this.ns.link(dir.ino, name, child.ino);
    stats.added++;
  }
}
