// Putting one inode's content into R2 (publisher.ts decides when and where).
//
// - Files up to the multipart threshold: one PUT, conditional on the etag
//   last seen there (or on absence for a new key). Larger ones: a multipart
//   upload with its part size fixed up front, progress kept in SQLite (the
//   `upload` table, jobs.ts) so a crash resumes it. The binding cannot make
//   multipart conditional, so a writer of the same key racing a large
//   publish can lose (docs/design.md, "When another tool changes the same file").
// - Memory: a PUT's body and each part are one buffer taken from the
//   object's in-flight budget, so no part is larger than that budget
//   (options.partMaxBytes).
// - Conflicts: when another tool changed the object under a file that has
//   unpublished changes here, the 9P content is published at the path and
//   the other tool's object is kept as `<key>.conflict-<etag>`.

import { S_IF, S_IFMT } from "../protocol/index.ts";
import { formatTime } from "./metadata.ts";
import type { PublishContext } from "./publish-context.ts";
import { partSizeFor } from "./r2-limits.ts";
import type { Inode } from "./types.ts";

/** Parts uploaded per run, so one alarm never runs too long. */
const PARTS_PER_RUN = 16;

/**
 * The s3fs form of the metadata: decimal st_mode, and times as seconds with
 * nine digits of nanoseconds when there are any, so that a share that lists
 * the object afresh (its SQLite gone, or another share of the same keys)
 * reads the times this one had, to the nanosecond; and a device's numbers as
 * `rdev` (decimal dev_t, as stormfs and geesefs write it: storage/metadata.ts).
 */
export function metadataOf(i: Inode, extra?: Record<string, string>): Record<string, string> {
  const meta: Record<string, string> = {
    mode: String(i.mode),
    uid: String(i.uid),
    gid: String(i.gid),
    mtime: formatTime(i.mtime),
    atime: formatTime(i.atime),
    ctime: formatTime(i.ctime),
  };
  const type = i.mode & S_IFMT;
  if (type === S_IF.CHR || type === S_IF.BLK) meta.rdev = String(i.rdev);
  return extra ? { ...meta, ...extra } : meta;
}

export class Uploads {
  constructor(private readonly c: PublishContext) {}

  private async content(node: Inode, type: number): Promise<Uint8Array> {
    if (type === S_IF.LNK) return this.c.d.ns.target(node.ino) ?? new Uint8Array(0);
    if (type !== S_IF.REG) return new Uint8Array(0);
    const buf = new Uint8Array(node.size);
    const n = await this.c.d.read(node, 0, buf);
    if (n !== node.size) throw new Error(`read ${n} of ${node.size} bytes to publish`);
    return buf;
  }

  /** One conditional PUT (on `landed`, the etag a cut upload of ours left there, if any). Returns the new etag. */
  async put(node: Inode, target: string, type: number, landed: string | null, customMetadata: Record<string, string>): Promise<string> {
    const size = type === S_IF.REG ? node.size : 0;
    const release = await this.c.d.reserve(size);
    try {
      const body = await this.content(node, type);
      const bucket = this.c.d.bucket();
      // Compare-and-swap against what we last saw at this key.
      const expect = landed ?? (node.key === target ? node.etag : null);
      const onlyIf: R2Conditional | Headers = expect ? { etagMatches: expect } : new Headers({ "If-None-Match": "*" });
      let res = await bucket.put(target, body, { onlyIf, customMetadata });
      if (res === null) {
        await this.keepConflict(target);
        res = await bucket.put(target, body, { customMetadata });
      }
      this.c.stats.puts++;
      if (type === S_IF.REG) this.c.d.published?.(node.key, target, res!.etag, body);
      return res!.etag;
    } finally {
      release();
    }
  }

  /** Another tool wrote `key`: keep its object beside ours. */
  private async keepConflict(key: string): Promise<void> {
    const bucket = this.c.d.bucket();
    const other = await bucket.get(key);
    if (other === null) return;
    const conflict = `${key}.conflict-${other.etag.slice(0, 8)}`;
    await bucket.put(conflict, await other.arrayBuffer(), { customMetadata: other.customMetadata });
    this.c.stats.conflicts++;
    this.c.d.log(`${key} changed in R2 while it had unpublished changes here; the other version is kept as ${conflict}`);
  }

  /**
   * A multipart upload, PARTS_PER_RUN parts per call. Returns the etag when
   * complete, null when parts remain (the inode is rescheduled at once).
   */
  async multipart(node: Inode, target: string, landed: string | null, customMetadata: Record<string, string>): Promise<string | null> {
    const jobs = this.c.d.jobs;
    const bucket = this.c.d.bucket();
    let row = jobs.upload(node.ino);
    if (row && (row.version !== node.version || row.key !== target || row.size !== node.size)) {
      await bucket.resumeMultipartUpload(row.key, row.uploadId).abort().catch(() => {});
      jobs.dropUpload(node.ino);
      row = null;
    }
    if (!row) {
      if (node.key !== target) {
        // A new key: keep what another tool may have put there.
        const head = await bucket.head(target);
        if (head !== null && head.etag !== landed) await this.keepConflict(target);
      }
      const up = await bucket.createMultipartUpload(target, { customMetadata });
      jobs.startUpload(node.ino, { key: target, uploadId: up.uploadId, partSize: partSizeFor(node.size), size: node.size, version: node.version });
      row = jobs.upload(node.ino)!;
    }
    const partSize = row.partSize;
    const parts = row.parts;
    const up = bucket.resumeMultipartUpload(target, row.uploadId);
    const count = Math.ceil(node.size / partSize);
    for (let n = parts.length; n < count && n < parts.length + PARTS_PER_RUN; ) {
      const off = n * partSize;
      const len = Math.min(partSize, node.size - off);
      const release = await this.c.d.reserve(len);
      try {
        const buf = new Uint8Array(len);
        const got = await this.c.d.read(node, off, buf);
        if (got !== len) throw new Error(`read ${got} of ${len} bytes of part ${n + 1}`);
        parts.push(await up.uploadPart(n + 1, buf));
      } finally {
        release();
      }
      n++;
      jobs.setParts(node.ino, parts);
    }
    if (parts.length < count) {
      this.c.d.ns.update(node.ino, { publish_after: this.c.now() });
      this.c.wake();
      return null;
    }
    const obj = await up.complete(parts);
    jobs.dropUpload(node.ino);
    this.c.stats.multiparts++;
    return obj.etag;
  }
}
