// A consistency check of a share's namespace in SQLite, for operators after
// an incident (GET /v1/shares/NAME/check) and for the crash tests: the
// invariants every change must keep, whatever was cut short.
//
// The one exception to "each table's statements live in its owner"
// (test/node/sql-owners.test.ts): the checker reads every table at once, in
// joins no owner would need, so it takes the object's SQL handle from ShareFs
// and runs SELECT statements only. It never writes.

import { S_IF, S_IFMT } from "../protocol/index.ts";
import { ROOT_INO, dirLinks, holeBytes } from "./schema.ts";

const S_IFDIR = S_IF.DIR;

/** Counts of rows that break an invariant; all zero in a consistent share. */
export interface Problems {
  /** Directory entries whose inode does not exist. */
  entriesWithoutInode: number;
  /** Directory entries whose parent is missing or not a directory. */
  entriesInNonDirectories: number;
  /** Journal extents of an inode that does not exist. */
  orphanExtents: number;
  /** Inodes whose journal byte count differs from their extents. */
  journalMiscounts: number;
  /** Files whose hole count differs from their size, R2 base and extents. */
  holeMiscounts: number;
  /** The share's journal total differs from the sum of its extents and holes. */
  journalTotalOff: number;
  /** Inodes no name and no open fid reaches (their space is never reclaimed). */
  unreachable: number;
  /** Inodes whose link count is off: a file's differs from its names, a directory's from 2 + its subdirectories (0 once removed). */
  linkMiscounts: number;
}

export interface Example {
  problem: "unreachable" | "linkMiscount";
  ino: number;
  mode: number;
  nlink: number;
  opens: number;
  names: number;
}

/** Work the publisher has not done yet (not a problem: it drains). */
export interface Pending {
  unpublished: number;
  jobs: number;
}

export interface CheckReport {
  ok: boolean;
  problems: Problems;
  /** A few inodes behind the per-inode problems, for the operator's report. */
  examples: Example[];
  pending: Pending;
}

// The per-inode invariants, each written once: counted, and a few shown.
const UNREACHABLE = `i.ino != ${ROOT_INO} AND i.opens = 0 AND NOT EXISTS (SELECT 1 FROM dirent d WHERE d.ino = i.ino)`;
const NAMES = `(SELECT count(*) FROM dirent d WHERE d.ino = i.ino)`;
const LINK_MISCOUNT = `i.nlink != CASE WHEN (i.mode & ${S_IFMT}) = ${S_IFDIR} THEN ${dirLinks("i")} ELSE ${NAMES} END`;

export function checkNamespace(sql: SqlStorage, journalTotal: number): CheckReport {
  const n = (q: string, ...args: unknown[]) => sql.exec(q, ...args).one().n as number;
  const problems: Problems = {
    entriesWithoutInode: n(`SELECT count(*) AS n FROM dirent d LEFT JOIN inode i ON i.ino = d.ino WHERE i.ino IS NULL`),
    entriesInNonDirectories: n(
      `SELECT count(*) AS n FROM dirent d LEFT JOIN inode p ON p.ino = d.parent WHERE p.ino IS NULL OR (p.mode & ?) != ?`,
      S_IFMT,
      S_IFDIR,
    ),
    orphanExtents: n(`SELECT count(*) AS n FROM extent e LEFT JOIN inode i ON i.ino = e.ino WHERE i.ino IS NULL`),
    journalMiscounts: n(
      `SELECT count(*) AS n FROM inode i WHERE jbytes != (SELECT coalesce(sum(len), 0) FROM extent e WHERE e.ino = i.ino)`,
    ),
    holeMiscounts: n(`SELECT count(*) AS n FROM inode i WHERE hbytes != ${holeBytes("i")}`),
    journalTotalOff:
      n(`SELECT coalesce(sum(len), 0) AS n FROM extent`) + n(`SELECT coalesce(sum(hbytes), 0) AS n FROM inode`) === journalTotal ? 0 : 1,
    unreachable: n(`SELECT count(*) AS n FROM inode i WHERE ${UNREACHABLE}`),
    linkMiscounts: n(`SELECT count(*) AS n FROM inode i WHERE ${LINK_MISCOUNT}`),
  };
  const show = (problem: Example["problem"], where: string) =>
    sql
      .exec(`SELECT '${problem}' AS problem, ino, mode, nlink, opens, ${NAMES} AS names FROM inode i WHERE ${where} LIMIT 5`)
      .toArray() as unknown as Example[];
  const examples = [...show("unreachable", UNREACHABLE), ...show("linkMiscount", LINK_MISCOUNT)];
  const pending: Pending = {
    unpublished: n(`SELECT count(*) AS n FROM inode WHERE dirty = 1`),
    jobs: n(`SELECT count(*) AS n FROM job`),
  };
  return { ok: Object.values(problems).every((v) => v === 0), problems, examples, pending };
}
