// The publisher: turns what the namespace and the journal hold into plain
// R2 objects at `<prefix>/<path>`, per inode, a short while after its last
// close. The key is resolved at publish time, so a file written under a
// temporary name and renamed is uploaded once, at its final name.
// This file decides when and where; uploads.ts puts the bytes (one PUT or a
// multipart upload, conflicts kept beside), deletions.ts runs the deletion
// jobs and answers which keys are the share's own; their durable work is in
// the `job` and `upload` tables (jobs.ts).
//
// - A file needing larger parts than the in-flight budget holds (more than
//   10,000 of them: only an object another tool put can be that large, since
//   max_file_bytes is configured within it) is left unpublished, logged,
//   never retried in a loop.
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
import { Deletions } from "./deletions.ts";
import { KEY_MAX, LONG_DIR, objectKeyOf, rootOf } from "./keys.ts";
import { type PublishContext, type PublishStats, type PublisherDeps, keyFor, openPublishBytes } from "./publish-context.ts";
import { MAX_PARTS, partSizeFor } from "./r2-limits.ts";
import { type Inode, isReg } from "./types.ts";
import { Uploads, metadataOf } from "./uploads.ts";

export type { PublishStats, PublisherDeps } from "./publish-context.ts";

/** R2 takes about one write per second per key. */
const KEY_INTERVAL_MS = 1000;
/** Put times kept before the ones past KEY_INTERVAL_MS are swept (forgetOldPuts). */
const LAST_PUTS_KEPT = 1024;
/**
 * Inodes whose failure counts are kept (for the retry backoff). Past it the
 * oldest count goes: that inode's next retry backs off from 1 s again, which
 * costs a few early retries, while an entry per inode that ever failed (and
 * may since be gone) would grow without bound.
 */
const ATTEMPTS_KEPT = 4096;
const MAX_BACKOFF_MS = 60_000;

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
  /**
   * The earliest time the moves of `epoch` since takeWakeBy last looked
   * need the alarm by: -Infinity when a move did not say (look at every
   * deadline), Infinity when nothing moved.
   */
  private wakeBy = Infinity;
  /** Keys being uploaded by this instance right now. */
  private readonly uploading = new Set<string>();
  private readonly uploads: Uploads;
  /** Deletion jobs and the keys that are the share's own (the importer's KeyClaims). */
  readonly deletions: Deletions;

  constructor(private readonly d: PublisherDeps) {
    this.now = d.now ?? Date.now;
    const c: PublishContext = { d, stats: this.stats, now: this.now, uploading: this.uploading, wake: () => this.moved() };
    this.uploads = new Uploads(c);
    this.deletions = new Deletions(c);
    // Uploads recorded by an instance that is gone: settle them now.
    if (d.jobs.settleStale()) this.moved();
  }

  /** Something may need the alarm by `at` (ms; -Infinity: by a time not known here). */
  private moved(at = -Infinity): void {
    this.epoch++;
    this.wakeBy = Math.min(this.wakeBy, at);
  }

  /**
   * The earliest time what was scheduled since the last call needs the
   * alarm by (worker/alarms.ts: an alarm set for that time or earlier needs
   * no look at the deadlines, which a create would otherwise pay in three
   * queries).
   */
  takeWakeBy(): number {
    const t = this.wakeBy;
    this.wakeBy = Infinity;
    return t;
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
      this.moved(at);
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
    const at = this.now() + delayMs;
    this.ns.update(ino, { publish_after: at });
    this.moved(at);
  }

  /**
   * The publish time of an inode about to be created with it (in its own
   * INSERT, NewInode.publishAfter): what schedule would set, without a
   * second write.
   */
  scheduleNew(delayMs: number): number {
    const at = this.now() + delayMs;
    this.moved(at);
    return at;
  }

  /** Notes a put of a key now, keeping the map in time order (a key put again moves to the end). */
  private notePut(key: string): void {
    this.lastPut.delete(key);
    this.lastPut.set(key, this.now());
    this.forgetOldPuts();
  }

  /**
   * Drops the put times that no longer hold a key back (KEY_INTERVAL_MS
   * ago), once there are many. The map is in time order (notePut), so the
   * sweep stops at the first recent one: each time is dropped once, and a
   * second's worth of puts past the mark is not scanned at every put.
   */
  private forgetOldPuts(): void {
    if (this.lastPut.size < LAST_PUTS_KEPT) return;
    const old = this.now() - KEY_INTERVAL_MS;
    for (const [k, t] of this.lastPut) {
      if (t > old) break;
      this.lastPut.delete(k);
    }
  }

  /** Any change to an inode's content, metadata or place. */
  changed(ino: number): void {
    // Counted only while a publish of it runs (it compares before and
    // after): an entry per inode ever changed would grow without bound.
    if (this.running.has(ino)) this.generation.set(ino, (this.generation.get(ino) ?? 0) + 1);
  }

  /** A truncate happened: a publish in progress must not trust bytes past it. */
  truncated(ino: number, size: number): void {
    if (!this.running.has(ino)) return;
    const prev = this.truncatedDuring.get(ino);
    this.truncatedDuring.set(ino, prev === undefined ? size : Math.min(prev, size));
  }

  /** Queues the deletion of an object no inode uses any more (deletions.ts). */
  deleteKey(key: string, etag: string | null = null): void {
    this.deletions.deleteKey(key, etag);
  }

  /** The earliest time something is due (ms), or null. */
  nextWakeup(): number | null {
    const p = this.ns.nextPublish();
    const j = this.d.jobs.nextDue();
    if (p === null) return j;
    if (j === null) return p;
    return Math.min(p, j);
  }

  /** Runs what is due. Idempotent: an alarm may fire more than once. */
  async runDue(limit = 32): Promise<void> {
    const now = this.now();
    for (const ino of this.ns.duePublishes(now, limit)) await this.publish(ino);
    await this.deletions.run(now, limit);
  }

  /** Publishes every inode with unpublished changes now (tests, shutdown, `sync`). */
  async publishAll(): Promise<void> {
    for (let round = 0; round < 64; round++) {
      const dirty = this.ns.dirtyInodes();
      for (const ino of dirty) await this.publish(ino, true);
      await this.deletions.run(Number.MAX_SAFE_INTEGER, 1000);
      const left = this.ns.dirtyInodes().length;
      if (left === 0 && this.d.jobs.count() === 0) return;
      const wait = Math.max(0, ...[...this.lastPut.values()].map((t) => t + KEY_INTERVAL_MS - this.now()));
      if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, KEY_INTERVAL_MS)));
    }
  }

  private fail(ino: number, e: unknown): void {
    const n = (this.attempts.get(ino) ?? 0) + 1;
    this.attempts.delete(ino);
    this.attempts.set(ino, n);
    if (this.attempts.size > ATTEMPTS_KEPT) this.attempts.delete(this.attempts.keys().next().value!);
    this.stats.failures++;
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (n - 1));
    this.d.log(`publish of inode ${ino} failed (attempt ${n}, retry in ${delay} ms): ${(e as Error).message ?? e}`);
    this.ns.update(ino, { publish_after: this.now() + delay });
    this.moved(this.now() + delay);
  }

  /** Publishes one inode if it has changes; `force` ignores its publish time. */
  async publish(ino: number, force = false): Promise<void> {
    if (this.running.has(ino)) return;
    const cut = this.d.jobs.cutUploads(ino);
    if (cut.length) {
      // Before uploading again: what a cut upload of this inode left in R2 is its own.
      this.running.add(ino);
      try {
        for (const j of cut) await this.deletions.settleCut(j, ino, j.etag);
      } catch (e) {
        return this.fail(ino, e);
      } finally {
        this.running.delete(ino);
        this.generation.delete(ino);
      }
    }
    const node = this.ns.get(ino);
    if (!node) return;
    if (!force && node.dirty && node.opens > 0 && this.d.journal.fileBytes(ino) < openPublishBytes(this.ns.options.journalCap)) {
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
    const target = keyFor(this.ns.options.prefix, node, path);
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
      this.moved(since + KEY_INTERVAL_MS);
      return;
    }
    this.running.add(ino);
    this.uploading.add(target);
    // Durable too: after a crash mid-upload, the object may exist with no owner.
    const claim = this.d.jobs.claimUpload(target, ino);
    this.truncatedDuring.delete(ino);
    const gen = this.generation.get(ino) ?? 0;
    const landed = this.d.jobs.landedAt(ino, target);
    try {
      const meta = metadataOf(node, this.placeOf(path, target));
      const result =
        type === S_IF.REG && node.size > this.ns.options.multipartThreshold
          ? await this.uploads.multipart(node, target, landed, meta)
          : await this.uploads.put(node, target, type, landed, meta);
      if (result === null) return; // multipart goes on in the next run
      this.notePut(target);
      this.attempts.delete(ino);
      this.settle(node, gen, target, result);
      // Replaced: the cut upload's object at this key is no longer a thing to look after.
      this.d.jobs.dropCutUpload(ino, target);
    } catch (e) {
      this.fail(ino, e);
    } finally {
      this.running.delete(ino);
      this.generation.delete(ino);
      this.uploading.delete(target);
      this.d.jobs.drop(claim);
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
    const nowTarget = path === null ? null : keyFor(this.ns.options.prefix, snap, path);
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

  /** For an object at a derived key: `edge9p-dir`, its directory's marker key below the prefix. */
  private placeOf(path: Uint8Array[], target: string): Record<string, string> | undefined {
    const root = rootOf(this.ns.options.prefix);
    if (!target.startsWith(`${root}${LONG_DIR}/`)) return undefined;
    return { [DIR_META]: objectKeyOf(this.ns.options.prefix, path.slice(0, -1), true).slice(root.length) };
  }
}
