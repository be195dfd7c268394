// The write journal (storage/journal.ts) on its own, on a real SqlStorage
// (a Durable Object of its own, with the share's schema), called as ShareFs
// calls it: each write's counts go into the inode row with its new size;
// a truncate sets size and base_len. journal-model.test.ts checks what a
// mount reads back; this checks the journal's parts against a plain
// in-memory model: its rows (disjoint, none past the size, none over
// EXTENT_MAX, small sequential writes merged), overlay and covers, and
// jbytes, hbytes and the share's total after every step, and after a
// restart (a new Journal on the same rows).

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EXTENT_MAX, Journal } from "../../storage/journal.ts";
import { holeBytes, migrate } from "../../storage/schema.ts";
import { noise } from "./support/gateway.ts";

const S_IFREG = 0o100000;

/** Runs `f` on the SQLite of a Durable Object no share uses, with the share's schema. */
function onSql<T>(name: string, f: (sql: SqlStorage) => T | Promise<T>): Promise<T> {
  const ns = (env as unknown as { SHARE: DurableObjectNamespace }).SHARE;
  return runInDurableObject(ns.getByName(`component/${name}`), (_obj, state: DurableObjectState) => {
    migrate(state.storage.sql);
    return f(state.storage.sql);
  });
}

/** What each byte of a file is: 0 hole (zeros, uploaded at publish), 1 the R2 object's, 2 journaled. */
const HOLE = 0;
const R2 = 1;
const JOURNAL = 2;

/** A file as the model holds it: a kind and a value per byte. */
class ModelFile {
  kind = new Uint8Array(0);
  data = new Uint8Array(0);
  base = 0;
  get size() {
    return this.kind.byteLength;
  }
  resize(n: number) {
    const k = new Uint8Array(n);
    const d = new Uint8Array(n);
    k.set(this.kind.subarray(0, n));
    d.set(this.data.subarray(0, n));
    this.kind = k;
    this.data = d;
  }
  write(off: number, bytes: Uint8Array) {
    if (off + bytes.byteLength > this.size) this.resize(off + bytes.byteLength);
    this.kind.fill(JOURNAL, off, off + bytes.byteLength);
    this.data.set(bytes, off);
  }
  truncate(n: number) {
    this.resize(n);
    this.base = Math.min(this.base, n);
  }
  /** Everything is in R2 now (a publish). */
  publish() {
    this.kind.fill(R2);
    this.base = this.size;
  }
  get jbytes() {
    return this.kind.reduce((n, k) => n + (k === JOURNAL ? 1 : 0), 0);
  }
  /** Bytes at or past the base that no extent holds. */
  get hbytes() {
    let n = 0;
    for (let i = this.base; i < this.size; i++) if (this.kind[i] !== JOURNAL) n++;
    return n;
  }
}

/** The journal and the inode rows, driven as ShareFs drives them. */
class Harness {
  total = 0;
  journal: Journal;
  constructor(readonly sql: SqlStorage) {
    sql.exec(`DELETE FROM extent`);
    sql.exec(`DELETE FROM inode`);
    this.journal = this.restart();
  }
  /** A new Journal on the same rows, as after the object restarts. */
  restart(): Journal {
    this.journal = new Journal(this.sql, (n) => (this.total = n), this.total);
    return this.journal;
  }
  newFile(base = 0): number {
    return this.sql.exec(`INSERT INTO inode (mode, uid, gid, size, base_len) VALUES (?, 0, 0, ?, ?) RETURNING ino`, S_IFREG | 0o644, base, base).one()
      .ino as number;
  }
  row(ino: number) {
    const r = this.sql.exec(`SELECT size, base_len, jbytes, hbytes FROM inode WHERE ino = ?`, ino).one();
    return { size: r.size as number, base: r.base_len as number, jbytes: r.jbytes as number, hbytes: r.hbytes as number };
  }
  write(ino: number, off: number, data: Uint8Array) {
    const { size, base } = this.row(ino);
    const c = this.journal.write(ino, off, data, { size, base });
    this.sql.exec(
      `UPDATE inode SET size = max(size, ?), jbytes = jbytes + ?, hbytes = hbytes + ? WHERE ino = ?`,
      off + data.byteLength,
      c.jbytes_add,
      c.hbytes_add,
      ino,
    );
  }
  truncate(ino: number, size: number) {
    const r = this.row(ino);
    this.journal.truncate(ino, size, { size: r.size, base: r.base });
    this.sql.exec(`UPDATE inode SET size = ?, base_len = min(base_len, ?) WHERE ino = ?`, size, size, ino);
  }
  /** What the publisher does once the object holds the whole file: the journal goes, the base is the size. */
  publish(ino: number) {
    this.journal.clear(ino);
    this.sql.exec(`UPDATE inode SET base_len = size WHERE ino = ?`, ino);
  }
  extents(ino: number) {
    return this.sql
      .exec(`SELECT off, len, length(data) AS n FROM extent WHERE ino = ? ORDER BY off`, ino)
      .toArray()
      .map((r) => ({ off: r.off as number, len: r.len as number, n: r.n as number }));
  }
}

/** Every count the journal keeps, and its rows, agree with the model. */
function check(h: Harness, files: Map<number, ModelFile>, at: string) {
  let total = 0;
  for (const [ino, m] of files) {
    const row = h.row(ino);
    expect(row.size, `${at}: size of ${ino}`).toBe(m.size);
    expect(row.jbytes, `${at}: inode.jbytes of ${ino}`).toBe(m.jbytes);
    expect(row.hbytes, `${at}: inode.hbytes of ${ino}`).toBe(m.hbytes);
    expect(h.journal.fileBytes(ino), `${at}: fileBytes of ${ino}`).toBe(m.jbytes);
    const counted = h.sql.exec(`SELECT ${holeBytes("inode")} AS hole FROM inode WHERE ino = ?`, ino).one().hole as number;
    expect(counted, `${at}: hole of ${ino} counted again from its rows`).toBe(m.hbytes);
    const ex = h.extents(ino);
    let end = 0;
    for (const e of ex) {
      expect(e.off, `${at}: extents of ${ino} are disjoint and in order`).toBeGreaterThanOrEqual(end);
      expect(e.len, `${at}: an extent's len is its data's length`).toBe(e.n);
      expect(e.len, `${at}: no extent is empty`).toBeGreaterThan(0);
      expect(e.len, `${at}: no extent is over EXTENT_MAX`).toBeLessThanOrEqual(EXTENT_MAX);
      end = e.off + e.len;
    }
    expect(end, `${at}: no extent of ${ino} reaches past its size`).toBeLessThanOrEqual(m.size);
    // overlay gives the journaled bytes, and says exactly which.
    const into = new Uint8Array(m.size + 10);
    const covered = h.journal.overlay(ino, 0, into);
    const kinds = new Uint8Array(into.byteLength);
    for (const c of covered) kinds.fill(JOURNAL, c.off, c.off + c.len);
    let wrong = -1;
    for (let i = 0; i < into.byteLength && wrong < 0; i++) {
      const journaled = i < m.size && m.kind[i] === JOURNAL;
      if ((kinds[i] === JOURNAL) !== journaled || (journaled && into[i] !== m.data[i])) wrong = i;
    }
    expect(wrong, `${at}: first byte of ${ino} overlay gets wrong`).toBe(-1);
    total += m.jbytes + m.hbytes;
  }
  expect(h.journal.bytes, `${at}: the journal's total`).toBe(total);
  expect(h.total, `${at}: the total it last stored`).toBe(total);
}

describe("the journal's extents", () => {
  it("keeps a write, and overwrites part of it in place", async () => {
    await onSql("journal-basic", (sql) => {
      const h = new Harness(sql);
      const ino = h.newFile();
      const m = new ModelFile();
      const files = new Map([[ino, m]]);
      h.write(ino, 0, noise(1000, 1));
      m.write(0, noise(1000, 1));
      check(h, files, "first write");
      expect(h.extents(ino)).toHaveLength(1);
      // Overwrite the middle: the extent is cut around it, nothing counted twice.
      h.write(ino, 300, noise(200, 2));
      m.write(300, noise(200, 2));
      check(h, files, "overwrite in the middle");
      // Overwrite across the end: the file grows by what passes it.
      h.write(ino, 900, noise(300, 3));
      m.write(900, noise(300, 3));
      check(h, files, "overwrite across the end");
      expect(h.row(ino).jbytes).toBe(1200);
    });
  });

  it("merges small sequential writes into one row up to 128 KiB, and splits large ones at EXTENT_MAX", async () => {
    await onSql("journal-merge", (sql) => {
      const h = new Harness(sql);
      const ino = h.newFile();
      const m = new ModelFile();
      const files = new Map([[ino, m]]);
      const chunk = 16 * 1024;
      for (let i = 0; i < 12; i++) {
        h.write(ino, i * chunk, noise(chunk, i + 1));
        m.write(i * chunk, noise(chunk, i + 1));
      }
      check(h, files, "12 sequential 16 KiB writes");
      expect(
        h.extents(ino).map((e) => e.len),
        "the first write, the next seven merged into it up to 128 KiB, then the rest",
      ).toEqual([128 * 1024, 64 * 1024]);
      const big = h.newFile();
      const mb = new ModelFile();
      files.set(big, mb);
      h.write(big, 10, noise(EXTENT_MAX + 1000, 99));
      mb.write(10, noise(EXTENT_MAX + 1000, 99));
      check(h, files, "one write past EXTENT_MAX");
      expect(h.extents(big).map((e) => [e.off, e.len])).toEqual([
        [10, EXTENT_MAX],
        [10 + EXTENT_MAX, 1000],
      ]);
    });
  });

  it("counts a write past the end as a hole up to it, filled by later writes", async () => {
    await onSql("journal-holes", (sql) => {
      const h = new Harness(sql);
      const ino = h.newFile();
      const m = new ModelFile();
      const files = new Map([[ino, m]]);
      h.write(ino, 5000, noise(100, 1));
      m.write(5000, noise(100, 1));
      check(h, files, "write at 5000 of an empty file");
      expect(h.row(ino)).toMatchObject({ jbytes: 100, hbytes: 5000 });
      h.write(ino, 1000, noise(1000, 2));
      m.write(1000, noise(1000, 2));
      check(h, files, "a write into the hole");
      expect(h.row(ino)).toMatchObject({ jbytes: 1100, hbytes: 4000 });
      expect(h.journal.covers(ino, 1000, 2000), "written range").toBe(true);
      expect(h.journal.covers(ino, 1000, 2001), "one byte of hole at its end").toBe(false);
      expect(h.journal.covers(ino, 999, 2000), "one byte of hole at its start").toBe(false);
      expect(h.journal.covers(ino, 1500, 1500), "an empty range").toBe(true);
      expect(h.journal.covers(ino, 0, 5100), "the whole file").toBe(false);
    });
  });

  it("counts a truncate up as hole and a truncate down as what it takes away", async () => {
    await onSql("journal-truncate", (sql) => {
      const h = new Harness(sql);
      const ino = h.newFile();
      const m = new ModelFile();
      const files = new Map([[ino, m]]);
      h.write(ino, 0, noise(3000, 1));
      m.write(0, noise(3000, 1));
      h.truncate(ino, 10_000);
      m.truncate(10_000);
      check(h, files, "truncate up");
      expect(h.row(ino)).toMatchObject({ jbytes: 3000, hbytes: 7000 });
      h.truncate(ino, 2000);
      m.truncate(2000);
      check(h, files, "truncate down into the extent");
      expect(h.row(ino)).toMatchObject({ jbytes: 2000, hbytes: 0 });
      h.truncate(ino, 0);
      m.truncate(0);
      check(h, files, "truncate to 0");
      expect(h.extents(ino)).toEqual([]);
    });
  });

  it("counts what the R2 object holds as neither journal nor hole, also below a truncate", async () => {
    await onSql("journal-base", (sql) => {
      const h = new Harness(sql);
      const ino = h.newFile(4000); // 4,000 bytes in R2, nothing journaled
      const m = new ModelFile();
      m.resize(4000);
      m.publish();
      const files = new Map([[ino, m]]);
      check(h, files, "a file in R2");
      h.write(ino, 1000, noise(500, 1));
      m.write(1000, noise(500, 1));
      check(h, files, "a write below the base");
      expect(h.row(ino)).toMatchObject({ jbytes: 500, hbytes: 0 });
      h.truncate(ino, 6000);
      m.truncate(6000);
      check(h, files, "truncate up past the base");
      expect(h.row(ino).hbytes).toBe(2000);
      h.write(ino, 3500, noise(1000, 2));
      m.write(3500, noise(1000, 2));
      check(h, files, "a write across the base");
      expect(h.row(ino).hbytes).toBe(1500);
      h.truncate(ino, 1200);
      m.truncate(1200);
      check(h, files, "truncate below the base");
      expect(h.row(ino)).toMatchObject({ base: 1200, jbytes: 200, hbytes: 0 });
      h.truncate(ino, 1500);
      m.truncate(1500);
      check(h, files, "and up again: zeros, not the old R2 bytes");
      expect(h.row(ino).hbytes).toBe(300);
    });
  });

  it("clear drops a file's extents and hole, and nothing of another file's", async () => {
    await onSql("journal-clear", (sql) => {
      const h = new Harness(sql);
      const a = h.newFile();
      const b = h.newFile();
      const ma = new ModelFile();
      const mb = new ModelFile();
      const files = new Map([
        [a, ma],
        [b, mb],
      ]);
      h.write(a, 100, noise(100, 1));
      ma.write(100, noise(100, 1));
      h.write(b, 0, noise(50, 2));
      mb.write(0, noise(50, 2));
      h.truncate(b, 400);
      mb.truncate(400);
      check(h, files, "two files");
      h.publish(a);
      ma.publish();
      check(h, files, "the first published");
      expect(h.extents(a)).toEqual([]);
      expect(h.journal.bytes).toBe(400);
      // What the journal's overlay gives for a file with no journal: nothing.
      const into = new Uint8Array(200).fill(7);
      expect(h.journal.overlay(a, 0, into)).toEqual([]);
      expect(into.every((x) => x === 7)).toBe(true);
    });
  });

  it("overlays part of an extent into a buffer at an offset", async () => {
    await onSql("journal-overlay", (sql) => {
      const h = new Harness(sql);
      const ino = h.newFile();
      const data = noise(300, 5);
      h.write(ino, 100, data.subarray(0, 100));
      h.write(ino, 300, data.subarray(200, 300));
      const into = new Uint8Array(250);
      const covered = h.journal.overlay(ino, 150, into);
      expect(covered).toEqual([
        { off: 0, len: 50 },
        { off: 150, len: 100 },
      ]);
      expect([...into.subarray(0, 50)]).toEqual([...data.subarray(50, 100)]);
      expect(into.subarray(50, 150).every((x) => x === 0), "the gap is left as it was").toBe(true);
      expect([...into.subarray(150, 250)]).toEqual([...data.subarray(200, 300)]);
      expect(h.journal.covers(ino, 100, 200)).toBe(true);
      expect(h.journal.covers(ino, 150, 350)).toBe(false);
    });
  });

  it("recount after a publish that moved the base counts the hole from the rows", async () => {
    await onSql("journal-recount", (sql) => {
      const h = new Harness(sql);
      const ino = h.newFile();
      const m = new ModelFile();
      const files = new Map([[ino, m]]);
      h.write(ino, 0, noise(100, 1));
      m.write(0, noise(100, 1));
      h.truncate(ino, 1000);
      m.truncate(1000);
      check(h, files, "before");
      // The object now holds a snapshot of the whole file; the journal keeps its extents.
      sql.exec(`UPDATE inode SET base_len = size WHERE ino = ?`, ino);
      m.base = m.size;
      h.journal.recount(ino);
      check(h, files, "after the base moved");
      expect(h.row(ino)).toMatchObject({ jbytes: 100, hbytes: 0 });
    });
  });
});

type Op =
  | { kind: "write"; file: number; off: number; len: number; seed: number }
  | { kind: "truncate"; file: number; size: number }
  | { kind: "publish"; file: number }
  | { kind: "restart" };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("write" as const),
      file: fc.nat(1),
      off: fc.nat(200_000),
      len: fc.integer({ min: 1, max: 40_000 }),
      seed: fc.nat(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("truncate" as const), file: fc.nat(1), size: fc.nat(250_000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("publish" as const), file: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("restart" as const) }) },
);

describe("the journal against a model", () => {
  it("agrees on every byte and every count after random writes, truncates, publishes and restarts", async () => {
    await onSql("journal-model", async (sql) => {
      fc.assert(
        fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => {
          const h = new Harness(sql);
          const inos = [h.newFile(), h.newFile(3000)];
          const models = [new ModelFile(), new ModelFile()];
          models[1]!.resize(3000);
          models[1]!.publish();
          const files = new Map(inos.map((ino, i) => [ino, models[i]!]));
          ops.forEach((o, i) => {
            if (o.kind === "write") {
              const data = noise(o.len, o.seed + 1);
              h.write(inos[o.file]!, o.off, data);
              models[o.file]!.write(o.off, data);
            } else if (o.kind === "truncate") {
              h.truncate(inos[o.file]!, o.size);
              models[o.file]!.truncate(o.size);
            } else if (o.kind === "publish") {
              h.publish(inos[o.file]!);
              models[o.file]!.publish();
            } else {
              h.restart();
            }
            check(h, files, `step ${i} (${o.kind})`);
          });
        }),
        { numRuns: 30 },
      );
    });
  });
});
