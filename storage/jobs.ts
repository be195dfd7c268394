// The publisher's durable work in SQLite: the `job` table (objects to
// delete, and claims on uploads in flight, so that a crash mid-upload cannot
// leave an object nobody owns) and the `upload` table (a multipart upload's
// progress, so a restart resumes it). Every statement on those two tables is
// here (test/node/sql-owners.test.ts); the tables themselves are created and
// migrated with the rest of the schema (schema.ts).

/** An upload's claim is due only once its instance is gone (Jobs.settleStale). */
export const NEVER = Number.MAX_SAFE_INTEGER;

export interface Job {
  id: number;
  kind: "delete" | "upload";
  key: string;
  etag: string | null;
  ino: number | null;
  attempts: number;
}

/** A multipart upload in progress, one per inode. */
export interface UploadRow {
  key: string;
  uploadId: string;
  partSize: number;
  size: number;
  version: number;
  parts: R2UploadedPart[];
}

const job = (r: Record<string, SqlStorageValue>): Job => ({
  id: r.id as number,
  kind: r.kind as Job["kind"],
  key: r.key as string,
  etag: (r.etag as string | null) ?? null,
  ino: (r.ino as number | null) ?? null,
  attempts: (r.attempts as number | undefined) ?? 0,
});

export class Jobs {
  constructor(private readonly sql: SqlStorage) {}

  /** Upload claims recorded by an instance that is gone are due now; whether there were any. */
  settleStale(): boolean {
    return this.sql.exec(`UPDATE job SET not_before = 0 WHERE kind = 'upload' RETURNING id`).toArray().length > 0;
  }

  /** Queues the deletion of the object at `key` (only if it still has `etag`, when given). */
  queueDelete(key: string, etag: string | null): void {
    this.sql.exec(`INSERT INTO job (kind, key, etag) VALUES ('delete', ?, ?)`, key, etag);
  }

  /** Whether any job (a deletion or an upload) names the key. */
  namesKey(key: string): boolean {
    return this.sql.exec(`SELECT 1 FROM job WHERE key = ? LIMIT 1`, key).toArray().length > 0;
  }

  /** Whether any job names a key in [from, to). */
  namesKeyIn(from: string, to: string): boolean {
    return this.sql.exec(`SELECT 1 FROM job WHERE key >= ? AND key < ? LIMIT 1`, from, to).toArray().length > 0;
  }

  /** The earliest time a job is due (ms), or null. */
  nextDue(): number | null {
    return (this.sql.exec(`SELECT min(not_before) AS t FROM job WHERE not_before < ?`, NEVER).one().t as number | null) ?? null;
  }

  count(): number {
    return this.sql.exec(`SELECT count(*) AS n FROM job`).one().n as number;
  }

  /** Jobs due at `now`, oldest first. */
  due(now: number, limit: number): Job[] {
    return this.sql
      .exec(`SELECT id, kind, key, etag, ino, attempts FROM job WHERE not_before <= ? ORDER BY id LIMIT ?`, now, limit)
      .toArray()
      .map(job);
  }

  drop(id: number): void {
    this.sql.exec(`DELETE FROM job WHERE id = ?`, id);
  }

  /** A job failed: tried again at `notBefore`. */
  retry(id: number, attempts: number, notBefore: number): void {
    this.sql.exec(`UPDATE job SET attempts = ?, not_before = ? WHERE id = ?`, attempts, notBefore, id);
  }

  /** Upload claims of an inode whose instance is gone (cut by a restart). */
  cutUploads(ino: number): Job[] {
    return this.sql
      .exec(`SELECT id, kind, key, etag, ino FROM job WHERE kind = 'upload' AND ino = ? AND not_before < ?`, ino, NEVER)
      .toArray()
      .map(job);
  }

  /** Claims `key` for an upload of `ino` by this instance; returns the claim's id. */
  claimUpload(key: string, ino: number): number {
    return this.sql.exec(`INSERT INTO job (kind, key, ino, not_before) VALUES ('upload', ?, ?, ?) RETURNING id`, key, ino, NEVER).one()
      .id as number;
  }

  /** A publish replaced what a cut upload of `ino` left at `key`: that claim is settled. */
  dropCutUpload(ino: number, key: string): void {
    this.sql.exec(`DELETE FROM job WHERE kind = 'upload' AND ino = ? AND key = ? AND not_before < ?`, ino, key, NEVER);
  }

  /** A cut upload's object is the inode's own (its etag): looked at again at `notBefore`. */
  markLanded(id: number, etag: string, notBefore: number): void {
    this.sql.exec(`UPDATE job SET etag = ?, not_before = ? WHERE id = ?`, etag, notBefore, id);
  }

  /** The etag of the object a cut upload of `ino` left at `key`, or null. */
  landedAt(ino: number, key: string): string | null {
    const r = this.sql
      .exec(`SELECT etag FROM job WHERE kind = 'upload' AND ino = ? AND key = ? AND etag IS NOT NULL AND not_before < ?`, ino, key, NEVER)
      .toArray()[0];
    return (r?.etag as string | undefined) ?? null;
  }

  /** The inode's multipart upload in progress, if any. */
  upload(ino: number): UploadRow | null {
    const r = this.sql.exec(`SELECT * FROM upload WHERE ino = ?`, ino).toArray()[0];
    if (!r) return null;
    return {
      key: r.key as string,
      uploadId: r.upload_id as string,
      partSize: r.part_size as number,
      size: r.size as number,
      version: r.version as number,
      parts: JSON.parse(r.parts as string) as R2UploadedPart[],
    };
  }

  startUpload(ino: number, u: Omit<UploadRow, "parts">): void {
    this.sql.exec(
      `INSERT INTO upload (ino, key, upload_id, part_size, size, version) VALUES (?, ?, ?, ?, ?, ?)`,
      ino,
      u.key,
      u.uploadId,
      u.partSize,
      u.size,
      u.version,
    );
  }

  setParts(ino: number, parts: R2UploadedPart[]): void {
    this.sql.exec(`UPDATE upload SET parts = ? WHERE ino = ?`, JSON.stringify(parts), ino);
  }

  dropUpload(ino: number): void {
    this.sql.exec(`DELETE FROM upload WHERE ino = ?`, ino);
  }

  /** Drops the inode's multipart upload of `key`, if any; returns its upload id (to abort it in R2). */
  takeUpload(ino: number, key: string): string | null {
    const r = this.sql.exec(`DELETE FROM upload WHERE ino = ? AND key = ? RETURNING upload_id`, ino, key).toArray()[0];
    return (r?.upload_id as string | undefined) ?? null;
  }
}
