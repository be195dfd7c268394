// The share object's `meta` table: one value per key, for the small
// counters and settings that have no table of their own. Every statement on
// it is here (test/node/sql-owners.test.ts), and so is the table's one
// definition; the keys belong to the modules that use them:
//   clock_ns, journal_bytes  share-fs.ts (the clock's bound: clock.ts; the journal's total)
//   journal_bytes, dir_nlink schema.ts (migrations)
//   cache_bytes, cache_gen   content-cache.ts
//   share, boots             worker/share-setup.ts, worker/share-object.ts
//   link_key                 worker/links.ts

/** Storage handles whose meta table exists already (one CREATE per object, whoever opens it first). */
const created = new WeakSet<SqlStorage>();

export class Meta {
  constructor(private readonly sql: SqlStorage) {
    if (created.has(sql)) return;
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v)`);
    created.add(sql);
  }

  get(k: string): SqlStorageValue | null {
    const rows = this.sql.exec(`SELECT v FROM meta WHERE k = ?`, k).toArray();
    return rows.length ? rows[0]!.v! : null;
  }

  has(k: string): boolean {
    return this.sql.exec(`SELECT 1 FROM meta WHERE k = ?`, k).toArray().length > 0;
  }

  set(k: string, v: SqlStorageValue): void {
    this.sql.exec(`INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)`, k, v);
  }

  /** Adds `n` to a numeric value (absent counts as 0). */
  add(k: string, n: number): void {
    this.sql.exec(`INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = coalesce(v, 0) + ?2`, k, n);
  }
}
