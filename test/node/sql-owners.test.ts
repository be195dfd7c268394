// Every SQL statement runs in the module that owns its table. The share
// object's SQLite holds the namespace, the journal, the publisher's work,
// locks, xattrs, the content cache and the sessions; each table has one
// module that reads and writes it, and any other module that needs it asks
// that module by a named method. This test reads the source of storage/ and
// worker/, finds each statement run by `.exec(` with a string literal or a
// template, and fails if it names a table its file does not own.
//
// The rule, exactly:
// - a file may run a statement on a table OWNERS gives it;
// - storage/schema.ts creates and migrates the tables of NAMESPACE_SCHEMA
//   (DDL and one-off migrations): it may run statements on those;
// - storage/journal.ts keeps each file's journal counts in the inode row
//   (jbytes, hbytes: the journal's own columns, read and written with the
//   extents): it may run statements on inode that name one of them;
// - storage/fsck.ts is the checker, the one reader of every table: it may
//   run SELECT statements only, on any table;
// - a table not in OWNERS fails the test until it is given an owner.
// (The meta table's keys belong to the modules that use them; every
// statement on it is storage/meta.ts's, which lists the keys.)

import { readFileSync, readdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** Table -> the one file that runs statements on it. */
const OWNERS: Record<string, string> = {
  inode: "storage/namespace.ts",
  dirent: "storage/namespace.ts",
  extent: "storage/journal.ts",
  job: "storage/jobs.ts",
  upload: "storage/jobs.ts",
  lock: "storage/locks.ts",
  xattr: "storage/xattrs.ts",
  cache_entry: "storage/content-cache.ts",
  cache_chunk: "storage/content-cache.ts",
  meta: "storage/meta.ts",
  session: "worker/session-store.ts",
  fid: "worker/session-store.ts",
  reply: "worker/session-store.ts",
  link_key_retired: "worker/links.ts",
  // The lock table's one-off rebuild with a key (schema.ts migrateLocks).
  lock_unkeyed: "storage/schema.ts",
};

/** The tables storage/schema.ts creates and migrates. */
const SCHEMA_TABLES = new Set(["inode", "dirent", "extent", "xattr", "job", "upload", "lock"]);

interface Statement {
  file: string;
  line: number;
  text: string;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.ts$/.test(e.name) && !e.name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** The string literal or template starting at `at` (its quote), `${...}` kept as written. */
function literalAt(src: string, at: number): string {
  const q = src[at]!;
  let i = at + 1;
  let depth = 0;
  for (; i < src.length; i++) {
    const ch = src[i]!;
    if (ch === "\\") i++;
    else if (q === "`" && ch === "$" && src[i + 1] === "{") {
      depth++;
      i++;
    } else if (depth > 0 && ch === "}") depth--;
    else if (depth === 0 && ch === q) break;
  }
  return src.slice(at + 1, i);
}

/** Statements run by `.exec(` with a literal or a template as the query. */
export function statements(file: string, src: string): Statement[] {
  const out: Statement[] = [];
  for (const m of src.matchAll(/\.exec\(\s*(["'`])/g)) {
    const quote = m.index! + m[0].length - 1;
    out.push({ file, line: src.slice(0, m.index).split("\n").length, text: literalAt(src, quote) });
  }
  return out;
}

/** The tables a statement names (FROM, JOIN, INTO, UPDATE, TABLE, ON of an index, table_info). */
export function tablesOf(sql: string): string[] {
  const s = sql.replace(/\$\{[^}]*\}/g, " ");
  const found = new Set<string>();
  const patterns = [
    /\bFROM\s+([a-z_][a-z0-9_]*)/gi,
    /\bJOIN\s+([a-z_][a-z0-9_]*)/gi,
    /\bINTO\s+([a-z_][a-z0-9_]*)/gi,
    /\bUPDATE\s+([a-z_][a-z0-9_]*)\s+SET\b/gi,
    /\bTABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?([a-z_][a-z0-9_]*)/gi,
    /\bINDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?[a-z_][a-z0-9_]*\s+ON\s+([a-z_][a-z0-9_]*)/gi,
    /\btable_info\(\s*([a-z_][a-z0-9_]*)\s*\)/gi,
  ];
  for (const p of patterns) for (const m of s.matchAll(p)) found.add(m[1]!.toLowerCase());
  return [...found];
}

/** Why a statement breaks the rule, or null. */
export function violation(st: Statement, table: string): string | null {
  const where = `${st.file}:${st.line} runs SQL on ${table}`;
  if (!(table in OWNERS)) return `${where}, a table with no declared owner (add it to OWNERS)`;
  if (OWNERS[table] === st.file) return null;
  if (st.file === "storage/schema.ts" && SCHEMA_TABLES.has(table)) return null;
  if (st.file === "storage/journal.ts" && table === "inode" && /\b[jh]bytes\b/.test(st.text)) return null;
  if (st.file === "storage/fsck.ts") return /^\s*SELECT\b/i.test(st.text) ? null : `${where}: the checker only reads`;
  return `${where}, which is ${OWNERS[table]}'s: ask it by a named method`;
}

function violations(stmts: Statement[]): string[] {
  return stmts.flatMap((st) => tablesOf(st.text).flatMap((t) => violation(st, t) ?? []));
}

function all(): Statement[] {
  return ["storage", "worker"].flatMap((d) => sources(d)).flatMap((f) => statements(relative(root, join(root, f)), readFileSync(join(root, f), "utf8")));
}

describe("SQL owners", () => {
  it("finds the statements (the scan sees what it must)", () => {
    const stmts = all();
    expect(stmts.length).toBeGreaterThan(80);
    const files = new Set(stmts.map((s) => s.file));
    for (const f of new Set(Object.values(OWNERS))) expect(files, f).toContain(f);
    expect(tablesOf("SELECT 1 FROM dirent d JOIN inode i ON i.ino = d.ino")).toEqual(["dirent", "inode"]);
    expect(tablesOf("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)")).toEqual(["meta"]);
    expect(tablesOf("UPDATE job SET not_before = 0 WHERE kind = 'upload' RETURNING id")).toEqual(["job"]);
  });

  it("every statement runs in its table's owner", () => {
    expect(violations(all())).toEqual([]);
  });

  it("refuses a statement on a table its file does not own", () => {
    const misplaced = statements("storage/publisher.ts", "this.sql.exec(`SELECT 1 FROM job WHERE key = ? LIMIT 1`, key);");
    expect(violations(misplaced)).toEqual(["storage/publisher.ts:1 runs SQL on job, which is storage/jobs.ts's: ask it by a named method"]);
    expect(violations(statements("storage/fsck.ts", "sql.exec(`DELETE FROM inode WHERE ino = ?`, 1)"))).toHaveLength(1);
  });
});
