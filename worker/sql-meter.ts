// Rows the share's object writes to its SQLite, by what wrote them: each 9P
// request type, the deferred fid flush, the alarm, a socket's opening or
// close. In production a reply that follows a storage write is held until
// the write is durable (the output gate, docs/platform.md), so a request
// type that writes pays that wait on every reply: these counts say which do
// (GET /v1/shares/NAME/stats, `npm run bench`).
//
// Attribution follows the async context (AsyncLocalStorage, the
// `nodejs_als` compatibility flag): requests interleave at every await, and
// a write after an await still belongs to the request that made it.

import { AsyncLocalStorage } from "node:async_hooks";

export interface WriteTally {
  /** Requests (or runs) of this kind since the object was constructed. */
  requests: number;
  /** Statements that wrote at least one row. */
  statements: number;
  /** Rows written (inserted, updated or deleted), as SQLite counts them (cursor.rowsWritten). */
  rows: number;
}

export class SqlMeter {
  private readonly context = new AsyncLocalStorage<WriteTally>();
  private readonly tallies = new Map<string, WriteTally>();
  /** The object's SQLite, counting what each statement writes. */
  readonly sql: SqlStorage;

  constructor(real: SqlStorage) {
    const note = (rows: number) => {
      const t = this.context.getStore() ?? this.tally("other");
      t.rows += rows;
      t.statements++;
    };
    // Only exec is used (the storage code runs plain statements, no
    // prepared ones); a write statement has run to its end when exec
    // returns, so its rowsWritten is final then (measured in workerd).
    this.sql = {
      exec(query: string, ...bindings: unknown[]) {
        const c = real.exec(query, ...bindings);
        const w = c.rowsWritten;
        if (w > 0) note(w);
        return c;
      },
      get databaseSize() {
        return real.databaseSize;
      },
    } as unknown as SqlStorage;
  }

  private tally(what: string): WriteTally {
    let t = this.tallies.get(what);
    if (!t) {
      t = { requests: 0, statements: 0, rows: 0 };
      this.tallies.set(what, t);
    }
    return t;
  }

  /** Runs `f` with every write it makes (after its awaits too) counted under `what`. */
  run<T>(what: string, f: () => T): T {
    const t = this.tally(what);
    t.requests++;
    return this.context.run(t, f);
  }

  /** The counts so far, by kind (a copy). */
  snapshot(): Record<string, WriteTally> {
    const out: Record<string, WriteTally> = {};
    for (const [k, t] of [...this.tallies].sort((a, b) => (a[0] < b[0] ? -1 : 1))) out[k] = { ...t };
    return out;
  }
}
