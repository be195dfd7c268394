// The publisher's deletion jobs: objects no inode uses any more, deleted
// through the job table (jobs.ts) so that a crash cannot forget them, and
// the upload claims a restart cut short. Until its deletion has run, a key
// is a tombstone, and for a while after it is remembered: a listing that
// began before must not bring the object back (the importer asks `claimed`).

import type { Job } from "./jobs.ts";
import { type PublishContext, keyFor } from "./publish-context.ts";
import type { KeyClaims } from "./types.ts";

const MAX_BACKOFF_MS = 60_000;
/** How long a deletion is remembered for listings that began before it. */
const DELETED_MEMORY_MS = 10 * 60_000;
/** How often an object left by a cut upload is looked at again while its file waits to be republished. */
const LANDED_RECHECK_MS = 60_000;

export class Deletions implements KeyClaims {
  /** Objects deleted lately (key -> deletion number, time), for listings that began before. */
  private readonly deleted = new Map<string, { n: number; at: number }>();
  private deletions = 0;

  constructor(private readonly c: PublishContext) {}

  private get ns() {
    return this.c.d.ns;
  }

  private get jobs() {
    return this.c.d.jobs;
  }

  /**
   * Queues the deletion of an object no inode uses any more. Until it runs,
   * the key is a tombstone: a listing does not bring the object back.
   * With its etag, an object another tool has put there since is left alone.
   */
  deleteKey(key: string, etag: string | null = null): void {
    this.jobs.queueDelete(key, etag);
    this.c.wake();
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
    return this.c.uploading.has(key) || (this.deleted.get(key)?.n ?? -1) >= mark || this.ns.keyInUse(key) || this.jobs.namesKey(key);
  }

  /** `claimed` for any key under a prefix (a directory renamed or removed here). */
  claimedUnder(prefix: string, mark: number): boolean {
    const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    const under = (k: string) => k.startsWith(prefix);
    return (
      [...this.c.uploading].some(under) ||
      [...this.deleted].some(([k, d]) => d.n >= mark && under(k)) ||
      this.ns.keyInUseIn(prefix, end) ||
      this.jobs.namesKeyIn(prefix, end)
    );
  }

  private noteDeleted(key: string): void {
    const now = this.c.now();
    this.deleted.delete(key);
    this.deleted.set(key, { n: ++this.deletions, at: now });
    // A listing takes seconds, not minutes: forget old deletions (oldest first).
    for (const [k, d] of this.deleted) {
      if (now - d.at < DELETED_MEMORY_MS) break;
      this.deleted.delete(k);
    }
  }

  /** Runs the jobs due at `now`: deletions, and the claims of uploads a restart cut. */
  async run(now: number, limit: number): Promise<void> {
    for (const j of this.jobs.due(now, limit)) {
      const key = j.key;
      try {
        if (j.kind === "upload") {
          if (this.c.uploading.has(key)) continue; // uploading again now: its own claim covers it
          await this.settleCut(j, j.ino!, j.etag);
          continue; // settleCut keeps or drops the row
        } else if (!this.ns.keyInUse(key)) {
          // Never delete an object an inode still publishes at.
          // R2 deletes cannot be conditional: check the etag first (a small window remains).
          const head = j.etag ? await this.c.d.bucket().head(key) : null;
          if (!j.etag || (head !== null && head.etag === j.etag)) await this.deleteObject(key);
        }
        this.jobs.drop(j.id);
      } catch (e) {
        const n = j.attempts + 1;
        this.c.stats.failures++;
        const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (n - 1));
        this.c.d.log(`delete of ${key} failed (attempt ${n}, retry in ${delay} ms): ${(e as Error).message}`);
        this.jobs.retry(j.id, n, this.c.now() + delay);
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
  async settleCut(j: Pick<Job, "id" | "key">, ino: number, landed: string | null): Promise<void> {
    const key = j.key;
    const head = await this.c.d.bucket().head(key);
    // Re-read after the await.
    const owners = this.ns.ownersOf(key);
    const node = this.ns.get(ino);
    const path = node && this.ns.pathOf(ino);
    const bound = !!node && !!path && keyFor(this.ns.options.prefix, node, path) === key;
    if (head !== null && !owners.some((o) => o.etag === head.etag) && (landed === null || head.etag === landed)) {
      if (bound && owners.every((o) => o.ino === ino)) {
        this.jobs.markLanded(j.id, head.etag, this.c.now() + LANDED_RECHECK_MS);
        // A multipart upload of that key starts over (it was completed, or the object there is not its).
        const up = this.jobs.takeUpload(ino, key);
        this.c.wake();
        if (up !== null) await this.c.d.bucket().resumeMultipartUpload(key, up).abort().catch(() => {});
        return;
      }
      if (owners.length === 0) await this.deleteObject(key);
    }
    this.jobs.drop(j.id);
  }

  private async deleteObject(key: string): Promise<void> {
    await this.c.d.bucket().delete(key);
    this.noteDeleted(key);
    this.c.stats.deletes++;
  }
}
