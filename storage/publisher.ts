// The publisher: turns what the namespace and the journal hold into plain
// R2 objects at `<prefix>/<path>`, per inode, a short while after its last
// close. The key is resolved at publish time, so a file written under a
// temporary name and renamed is uploaded once, at its final name.
//
// - Files up to the multipart threshold: one PUT, conditional on the etag
//   last seen there (or on absence for a new key). Larger ones: a multipart
//   upload with its part size fixed up front, progress kept in SQLite so a
//   crash resumes it. The binding cannot make multipart conditional, so a
//   writer of the same key racing a large publish can lose (docs/design.md,
//   "When another tool changes the same file").
// - Memory: a PUT's body and each part are one buffer taken from the
//   object's in-flight budget, so no part is larger than that budget
//   (options.partMaxBytes). A file needing larger parts (more than 10,000
//   of them: only an object another tool put can be that large, since
//   max_file_bytes is configured within it) is left unpublished, logged,
//   never retried in a loop.
// - Conflicts: when another tool changed the object under a file that has
//   unpublished changes here, the 9P content is published at the path and
//   the other tool's object is kept as `<key>.conflict-<etag>`.
// - Never one key more than once a second (R2 answers 429): later changes
//   coalesce into the next publish. Failures back off and retry.
// - Directories publish as `dir/` marker objects; an object at a key that
//   no inode uses any more is deleted through the job table.
// - A path whose key would pass R2's 1,024 bytes publishes at its derived
//   key (keys.ts), with `edge9p-dir` in its metadata: the key of its
//   directory's marker, relative to the share's prefix, so another tool can
//   follow those up to a plain key and read the whole path back. (The path
//   itself does not fit: R2 takes 8 KiB of metadata, Miniflare 2 KiB, and a
//   path may be 4 KiB or, step by step, longer.)

import { S_IF, S_IFMT } from "../protocol/index.ts";
import type { Journal } from "./journal.ts";
import { KEY_MAX, LONG_DIR, objectKeyOf, rootOf } from "./keys.ts";
import { formatTime } from "./metadata.ts";
import type { Namespace } from "./namespace.ts";
import { MAX_PARTS, partSizeFor } from "./r2-limits.ts";
import { type Inode, isDir, isReg } from "./types.ts";

/** Parts uploaded per run, so one alarm never runs too long. */
const PARTS_PER_RUN = 16;
/** R2 takes about one write per second per key. */
const KEY_INTERVAL_MS = 1000;
const MAX_BACKOFF_MS = 60_000;
/** How long a deletion is remembered for listings that began before it. */
const DELETED_MEMORY_MS = 10 * 60_000;
/** An upload's claim is due only once its instance is gone (see the constructor). */
const NEVER = Number.MAX_SAFE_INTEGER;
/** How often an object left by a cut upload is looked at again while its file waits to be republished. */
const LANDED_RECHECK_MS = 60_000;

export interface PublisherDeps {
  ns: Namespace;
  journal: Journal;
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

/** The metadata key naming, on an object at a derived key, its directory's marker (relative to the prefix). */
export const DIR_META = "edge9p-dir";

export class Publisher {
  readonly stats: PublishStats = { puts: 0, multiparts: 0, deletes: 0, conflicts: 0, failures: 0 };
  private readonly lastPut = new Map<string, number>();
  private readonly attempts = new Map<number, number>();
  /** Lowest size a file was truncated to while its publish ran. */
  private readonly truncatedDuring = new Map<number, number>();
  private readonly running = new Set<number>();
  /** Changes per inode since the object started: a publish compares before and after. */
  private readonly generation = new Map<number, number>();
  private readonly now: () => number;
  /** Grows whenever something may need the alarm earlier (cheap to compare). */
  epoch = 0;
  /** Keys being uploaded by this instance right now. */
  private readonly uploading = new Set<string>();
  /** Objects deleted lately (key -> deletion number, time), for listings that began before. */
  private readonly deleted = new Map<string, { n: number; at: number }>();
  private deletions = 0;

  constructor(private readonly d: PublisherDeps) {
    this.now = d.now ?? Date.now;
    // Uploads recorded by an instance that is gone: settle them now.
    const stale = this.ns.sqlStorage.exec(`UPDATE job SET not_before = 0 WHERE kind = 'upload' RETURNING id`).toArray();
    if (stale.length) this.epoch++;
  }

  private get ns() {
    return this.d.ns;
  }

  /** Publishes the inode after `delayMs` (sooner if already scheduled sooner). */
  schedule(ino: number, delayMs: number): void {
    const at = this.now() + delayMs;
    const prev = this.ns.get(ino)?.publishAfter;
    if (prev === null || prev === undefined || at < prev) {
      this.ns.update(ino, { publish_after: at });
      this.epoch++;
    }
  }

  /**
   * The close of a file whose create scheduled it: published `delayMs`
   * after the close, unless at least half of that is left already (then
   * nothing is written: the close of a file written quickly waits on no
   * write).
   */
  scheduleAfterClose(ino: number, delayMs: number): void {
    const prev = this.ns.get(ino)?.publishAfter;
    if (prev !== null && prev !== undefined && prev >= this.now() + delayMs / 2) return;
    this.ns.update(ino, { publish_after: this.now() + delayMs });
    this.epoch++;
  }

  /**
   * The publish time of an inode about to be created with it (in its own
   * INSERT, NewInode.publishAfter): what schedule would set, without a
   * second write.
   */
  scheduleNew(delayMs: number): number {
    this.epoch++;
    return this.now() + delayMs;
  }

  /** Any change to an inode's content, metadata or place. */
  changed(ino: number): void {
    this.generation.set(ino, (this.generation.get(ino) ?? 0) + 1);
  }

  /** A truncate happened: a publish in progress must not trust bytes past it. */
  truncated(ino: number, size: number): void {
    if (!this.running.has(ino)) return;
    const prev = this.truncatedDuring.get(ino);
    this.truncatedDuring.set(ino, prev === undefined ? size : Math.min(prev, size));
  }

  /**
   * Queues the deletion of an object no inode uses any more. Until it runs,
   * the key is a tombstone: a listing does not bring the object back.
   * With its etag, an object another tool has put there since is left alone.
   */
  deleteKey(key: string, etag: string | null = null): void {
    this.ns.sqlStorage.exec(`INSERT INTO job (kind, key, etag) VALUES ('delete', ?, ?)`, key, etag);
    this.epoch++;
  }

  /** A mark to take before listing R2, for `claimed`. */
  listingMark(): number {
    return this.deletions;
  }

  /**
   * Whether an object at `key`, seen in a listing that began at `mark`, is
   * ours rather than a new file from another tool: the content of some inode
   * (renamed or hard-linked away, its object not moved yet), an upload in
   * flight, a tombstone (deleted here, its R2 delete queued), or deleted
   * since the listing began.
   */
  claimed(key: string, mark: number): boolean {
    const sql = this.ns.sqlStorage;
    return (
      this.uploading.has(key) ||
      (this.deleted.get(key)?.n ?? -1) >= mark ||
      sql.exec(`SELECT 1 FROM inode WHERE key = ? LIMIT 1`, key).toArray().length > 0 ||
      sql.exec(`SELECT 1 FROM job WHERE key = ? LIMIT 1`, key).toArray().length > 0
    );
  }

  /** `claimed` for any key under a prefix (a directory renamed or removed here). */
  claimedUnder(prefix: string, mark: number): boolean {
    const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    const sql = this.ns.sqlStorage;
    const under = (k: string) => k.startsWith(prefix);
    return (
      [...this.uploading].some(under) ||
      [...this.deleted].some(([k, d]) => d.n >= mark && under(k)) ||
      sql.exec(`SELECT 1 FROM inode WHERE key >= ? AND key < ? LIMIT 1`, prefix, end).toArray().length > 0 ||
      sql.exec(`SELECT 1 FROM job WHERE key >= ? AND key < ? LIMIT 1`, prefix, end).toArray().length > 0
    );
  }

  private noteDeleted(key: string): void {
    const now = this.now();
    this.deleted.delete(key);
    this.deleted.set(key, { n: ++this.deletions, at: now });
    // A listing takes seconds, not minutes: forget old deletions (oldest first).
    for (const [k, d] of this.deleted) {
      if (now - d.at < DELETED_MEMORY_MS) break;
      this.deleted.delete(k);
    }
  }

  /** The earliest time something is due (ms), or null. */
  nextWakeup(): number | null {
    const p = this.ns.nextPublish();
    const j = this.ns.sqlStorage.exec(`SELECT min(not_before) AS t FROM job WHERE not_before < ?`, NEVER).one().t as number | null;
    if (p === null) return j;
    if (j === null) return p;
    return Math.min(p, j);
  }

  /** Runs what is due. Idempotent: an alarm may fire more than once. */
  async runDue(limit = 32): Promise<void> {
    const now = this.now();
    for (const ino of this.ns.duePublishes(now, limit)) await this.publish(ino);
    await this.runJobs(now, limit);
  }

  /** Publishes every inode with unpublished changes now (tests, shutdown, `sync`). */
  async publishAll(): Promise<void> {
    for (let round = 0; round < 64; round++) {
      const dirty = this.ns.dirtyInodes();
      for (const ino of dirty) await this.publish(ino, true);
      await this.runJobs(Number.MAX_SAFE_INTEGER, 1000);
      const left = this.ns.dirtyInodes().length;
      const jobs = this.ns.sqlStorage.exec(`SELECT count(*) AS n FROM job`).one().n as number;
      if (left === 0 && jobs === 0) return;
      const wait = Math.max(0, ...[...this.lastPut.values()].map((t) => t + KEY_INTERVAL_MS - this.now()));
      if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, KEY_INTERVAL_MS)));
    }
  }

  private fail(ino: number, e: unknown): void {
    const n = (this.attempts.get(ino) ?? 0) + 1;
    this.attempts.set(ino, n);
    this.stats.failures++;
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (n - 1));
    this.d.log(`publish of inode ${ino} failed (attempt ${n}, retry in ${delay} ms): ${(e as Error).message ?? e}`);
    this.ns.update(ino, { publish_after: this.now() + delay });
    this.epoch++;
  }

  /** Publishes one inode if it has changes; `force` ignores its publish time. */
  async publish(ino: number, force = false): Promise<void> {
    if (this.running.has(ino)) return;
    const cut = this.ns.sqlStorage
      .exec(`SELECT id, key, etag, ino FROM job WHERE kind = 'upload' AND ino = ? AND not_before < ?`, ino, NEVER)
      .toArray();
    if (cut.length) {
      // Before uploading again: what a cut upload of this inode left in R2 is its own.
      this.running.add(ino);
      try {
        for (const j of cut) await this.settleCut(j.id as number, j.key as string, ino, j.etag as string | null);
      } catch (e) {
        return this.fail(ino, e);
      } finally {
        this.running.delete(ino);
      }
    }
    const node = this.ns.get(ino);
    if (!node) return;
    // A division, not `>> 4`: shifts take 32-bit integers, and the default cap (4 GiB) is 2^32.
    if (!force && node.dirty && node.opens > 0 && this.d.journal.fileBytes(ino) < this.ns.options.journalCap / 16) {
      // Still open for writing and its journal is small: wait for the close.
      this.ns.update(ino, { publish_after: null });
      return;
    }
    const path = this.ns.pathOf(ino);
    if (path === null) {
      this.ns.update(ino, { publish_after: null });
      return;
    }
    const type = node.mode & S_IFMT;
    const target = this.keyFor(node, path);
    if (!node.dirty && node.key === target) {
      this.ns.update(ino, { publish_after: null });
      return;
    }
    if (target === "" || new TextEncoder().encode(target).byteLength > KEY_MAX) {
      // The share's root has no object. (Derived keys keep every other one
      // within R2's limit: this only guards against a bug there.)
      this.ns.update(ino, { dirty: 0, publish_after: null });
      return;
    }
    if (type === S_IF.REG && node.size > this.ns.options.multipartThreshold && partSizeFor(node.size) > this.ns.options.partMaxBytes) {
      this.ns.update(ino, { publish_after: null });
      this.d.log(
        `inode ${ino}: ${node.size} bytes need parts larger than the publisher holds (${MAX_PARTS} parts of at most ${this.ns.options.partMaxBytes} bytes, EDGE9P.inflight_bytes): left unpublished`,
      );
      return;
    }
    const since = this.lastPut.get(target);
    if (since !== undefined && this.now() - since < KEY_INTERVAL_MS) {
      this.ns.update(ino, { publish_after: since + KEY_INTERVAL_MS });
      this.epoch++;
      return;
    }
    this.running.add(ino);
    this.uploading.add(target);
    // Durable too: after a crash mid-upload, the object may exist with no owner.
    const claim = this.ns.sqlStorage
      .exec(`INSERT INTO job (kind, key, ino, not_before) VALUES ('upload', ?, ?, ?) RETURNING id`, target, ino, NEVER)
      .one().id as number;
    this.truncatedDuring.delete(ino);
    const gen = this.generation.get(ino) ?? 0;
    const landed = this.landedAt(ino, target);
    try {
      const meta = metadataOf(node, this.placeOf(path, target));
      const result =
        type === S_IF.REG && node.size > this.ns.options.multipartThreshold
          ? await this.multipart(node, target, landed, meta)
          : await this.put(node, target, type, landed, meta);
      if (result === null) return; // multipart goes on in the next run
      this.lastPut.set(target, this.now());
      this.attempts.delete(ino);
      this.settle(node, gen, target, result);
      // Replaced: the cut upload's object at this key is no longer a thing to look after.
      this.ns.sqlStorage.exec(`DELETE FROM job WHERE kind = 'upload' AND ino = ? AND key = ? AND not_before < ?`, ino, target, NEVER);
    } catch (e) {
      this.fail(ino, e);
    } finally {
      this.running.delete(ino);
      this.uploading.delete(target);
      this.ns.sqlStorage.exec(`DELETE FROM job WHERE id = ?`, claim);
    }
  }

  /** Records a finished publish, keeping changes that arrived meanwhile. */
  private settle(snap: Inode, gen: number, target: string, etag: string): void {
    const cur = this.ns.get(snap.ino);
    const oldKey = snap.key;
    if (oldKey !== null && oldKey !== target) this.deleteKey(oldKey, snap.etag);
    if (!cur) {
      // Unlinked (and closed) while it uploaded: what just arrived goes too.
      this.deleteKey(target, etag);
      return;
    }
    const reg = isReg(snap);
    const path = this.ns.pathOf(snap.ino);
    const nowTarget = path === null ? null : this.keyFor(snap, path);
    const unchanged = (this.generation.get(snap.ino) ?? 0) === gen;
    let base = reg ? snap.size : 0;
    if (unchanged) {
      this.d.journal.clear(snap.ino);
    } else {
      // Written while uploading: the new object holds the snapshot and the
      // journal every later change; bytes past a truncation made meanwhile
      // are not content any more.
      const floor = this.truncatedDuring.get(snap.ino);
      if (floor !== undefined) base = Math.min(base, floor);
    }
    const clean = unchanged && nowTarget === target;
    this.ns.update(snap.ino, {
      key: target,
      etag,
      base_len: base,
      dirty: clean ? 0 : 1,
      from_r2: clean ? 1 : 0,
      publish_after: null,
    });
    // The object holds the snapshot now: what is still a hole is counted from the new base.
    if (!unchanged) this.d.journal.recount(snap.ino);
    if (!clean && nowTarget !== null) this.schedule(snap.ino, this.ns.options.publishDelayMs);
    this.truncatedDuring.delete(snap.ino);
  }

  private async content(node: Inode, type: number): Promise<Uint8Array> {
    if (type === S_IF.LNK) return this.ns.target(node.ino) ?? new Uint8Array(0);
    if (type !== S_IF.REG) return new Uint8Array(0);
    const buf = new Uint8Array(node.size);
    const n = await this.d.read(node, 0, buf);
    if (n !== node.size) throw new Error(`read ${n} of ${node.size} bytes to publish`);
    return buf;
  }

  /** One conditional PUT (on `landed`, the etag a cut upload of ours left there, if any). Returns the new etag. */
  private async put(node: Inode, target: string, type: number, landed: string | null, customMetadata: Record<string, string>): Promise<string> {
    const size = type === S_IF.REG ? node.size : 0;
    const release = await this.d.reserve(size);
    try {
      const body = await this.content(node, type);
      const bucket = this.d.bucket();
      // Compare-and-swap against what we last saw at this key.
      const expect = landed ?? (node.key === target ? node.etag : null);
      const onlyIf: R2Conditional | Headers = expect ? { etagMatches: expect } : new Headers({ "If-None-Match": "*" });
      let res = await bucket.put(target, body, { onlyIf, customMetadata });
      if (res === null) {
        await this.keepConflict(target);
        res = await bucket.put(target, body, { customMetadata });
      }
      this.stats.puts++;
      if (type === S_IF.REG) this.d.published?.(node.key, target, res!.etag, body);
      return res!.etag;
    } finally {
      release();
    }
  }

  /** Another tool wrote `key`: keep its object beside ours. */
  private async keepConflict(key: string): Promise<void> {
    const bucket = this.d.bucket();
    const other = await bucket.get(key);
    if (other === null) return;
    const conflict = `${key}.conflict-${other.etag.slice(0, 8)}`;
    await bucket.put(conflict, await other.arrayBuffer(), { customMetadata: other.customMetadata });
    this.stats.conflicts++;
    this.d.log(`${key} changed in R2 while it had unpublished changes here; the other version is kept as ${conflict}`);
  }

  /**
   * A multipart upload, PARTS_PER_RUN parts per call. Returns the etag when
   * complete, null when parts remain (the inode is rescheduled at once).
   */
  private async multipart(node: Inode, target: string, landed: string | null, customMetadata: Record<string, string>): Promise<string | null> {
    const sql = this.ns.sqlStorage;
    const bucket = this.d.bucket();
    let row = sql.exec(`SELECT * FROM upload WHERE ino = ?`, node.ino).toArray()[0];
    if (row && (row.version !== node.version || row.key !== target || row.size !== node.size)) {
      await bucket.resumeMultipartUpload(row.key as string, row.upload_id as string).abort().catch(() => {});
      sql.exec(`DELETE FROM upload WHERE ino = ?`, node.ino);
      row = undefined;
    }
    if (!row) {
      if (node.key !== target) {
        // A new key: keep what another tool may have put there.
        const head = await bucket.head(target);
        if (head !== null && head.etag !== landed) await this.keepConflict(target);
      }
      const partSize = partSizeFor(node.size);
      const up = await bucket.createMultipartUpload(target, { customMetadata });
      sql.exec(
        `INSERT INTO upload (ino, key, upload_id, part_size, size, version) VALUES (?, ?, ?, ?, ?, ?)`,
        node.ino,
        target,
        up.uploadId,
        partSize,
        node.size,
        node.version,
      );
      row = sql.exec(`SELECT * FROM upload WHERE ino = ?`, node.ino).one();
    }
    const partSize = row.part_size as number;
    const parts = JSON.parse(row.parts as string) as R2UploadedPart[];
    const up = bucket.resumeMultipartUpload(target, row.upload_id as string);
    const count = Math.ceil(node.size / partSize);
    for (let n = parts.length; n < count && n < parts.length + PARTS_PER_RUN; ) {
      const off = n * partSize;
      const len = Math.min(partSize, node.size - off);
      const release = await this.d.reserve(len);
      try {
        const buf = new Uint8Array(len);
        const got = await this.d.read(node, off, buf);
        if (got !== len) throw new Error(`read ${got} of ${len} bytes of part ${n + 1}`);
        parts.push(await up.uploadPart(n + 1, buf));
      } finally {
        release();
      }
      n++;
      sql.exec(`UPDATE upload SET parts = ? WHERE ino = ?`, JSON.stringify(parts), node.ino);
    }
    if (parts.length < count) {
      this.ns.update(node.ino, { publish_after: this.now() });
      this.epoch++;
      return null;
    }
    const obj = await up.complete(parts);
    sql.exec(`DELETE FROM upload WHERE ino = ?`, node.ino);
    this.stats.multiparts++;
    return obj.etag;
  }

  private async runJobs(now: number, limit: number): Promise<void> {
    const sql = this.ns.sqlStorage;
    const jobs = sql
      .exec(`SELECT id, kind, key, etag, ino, attempts FROM job WHERE not_before <= ? ORDER BY id LIMIT ?`, now, limit)
      .toArray();
    for (const j of jobs) {
      const key = j.key as string;
      try {
        // Never delete an object an inode still publishes at.
        const used = sql.exec(`SELECT 1 FROM inode WHERE key = ? LIMIT 1`, key).toArray().length > 0;
        if (j.kind === "upload") {
          if (this.uploading.has(key)) continue; // uploading again now: its own claim covers it
          await this.settleCut(j.id as number, key, j.ino as number, j.etag as string | null);
          continue; // settleCut keeps or drops the row
        } else if (!used) {
          // R2 deletes cannot be conditional: check the etag first (a small window remains).
          const head = j.etag ? await this.d.bucket().head(key) : null;
          if (!j.etag || (head !== null && head.etag === j.etag)) await this.deleteObject(key);
        }
        sql.exec(`DELETE FROM job WHERE id = ?`, j.id);
      } catch (e) {
        const n = (j.attempts as number) + 1;
        this.stats.failures++;
        const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (n - 1));
        this.d.log(`delete of ${key} failed (attempt ${n}, retry in ${delay} ms): ${(e as Error).message}`);
        sql.exec(`UPDATE job SET attempts = ?, not_before = ? WHERE id = ?`, n, this.now() + delay, j.id);
      }
    }
  }

  /**
   * An upload whose instance is gone (a restart cut it): its PUT may have
   * landed in R2 without the inode ever recording it. If the inode still
   * publishes at that key, such an object is the inode's own: its next
   * publish is made conditional on that object's etag and replaces it.
   * Without this, the next publish would find "another tool's" object at its
   * key and keep it as `<key>.conflict-<etag>`: a file nobody wrote, which
   * the next listing would bring into the share (a Linux mount would see an
   * extra file after gateway restarts; test/workerd/landed.test.ts). If the
   * inode moved or went meanwhile, the object belongs to nobody and is
   * deleted. (An object another tool put at that key in the same moment is
   * taken for ours: the same narrow loss docs/design.md states for multipart
   * uploads.)
   * `landed` is the etag an earlier look found ours there, if any.
   */
  private async settleCut(id: number, key: string, ino: number, landed: string | null): Promise<void> {
    const head = await this.d.bucket().head(key);
    const sql = this.ns.sqlStorage;
    // Re-read after the await.
    const owners = sql.exec(`SELECT ino, etag FROM inode WHERE key = ?`, key).toArray();
    const node = this.ns.get(ino);
    const path = node && this.ns.pathOf(ino);
    const bound = !!node && !!path && this.keyFor(node, path) === key;
    if (head !== null && !owners.some((o) => o.etag === head.etag) && (landed === null || head.etag === landed)) {
      if (bound && owners.every((o) => o.ino === ino)) {
        sql.exec(`UPDATE job SET etag = ?, not_before = ? WHERE id = ?`, head.etag, this.now() + LANDED_RECHECK_MS, id);
        // A multipart upload of that key starts over (it was completed, or the object there is not its).
        const up = sql.exec(`DELETE FROM upload WHERE ino = ? AND key = ? RETURNING upload_id`, ino, key).toArray()[0];
        this.epoch++;
        if (up) await this.d.bucket().resumeMultipartUpload(key, up.upload_id as string).abort().catch(() => {});
        return;
      }
      if (owners.length === 0) await this.deleteObject(key);
    }
    sql.exec(`DELETE FROM job WHERE id = ?`, id);
  }

  /** The etag of the object a cut upload of this inode left at `key` (settleCut), or null. */
  private landedAt(ino: number, key: string): string | null {
    const r = this.ns.sqlStorage
      .exec(`SELECT etag FROM job WHERE kind = 'upload' AND ino = ? AND key = ? AND etag IS NOT NULL AND not_before < ?`, ino, key, NEVER)
      .toArray()[0];
    return (r?.etag as string | undefined) ?? null;
  }

  /** The key an inode publishes at from its path: `dir/` for a directory; a derived key for a path too long (keys.ts). */
  private keyFor(node: Inode, path: Uint8Array[]): string {
    return objectKeyOf(this.ns.options.prefix, path, isDir(node));
  }

  /** For an object at a derived key: `edge9p-dir`, its directory's marker key below the prefix. */
  private placeOf(path: Uint8Array[], target: string): Record<string, string> | undefined {
    const root = rootOf(this.ns.options.prefix);
    if (!target.startsWith(`${root}${LONG_DIR}/`)) return undefined;
    return { [DIR_META]: objectKeyOf(this.ns.options.prefix, path.slice(0, -1), true).slice(root.length) };
  }

  private async deleteObject(key: string): Promise<void> {
    await this.d.bucket().delete(key);
    this.noteDeleted(key);
    this.stats.deletes++;
  }
}
