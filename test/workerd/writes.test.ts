// No durable write a read does not need: SQLite rows written per request
// type, as the share's stats count them (worker/sql-meter.ts). In
// production a reply that follows a write waits until the write is durable,
// so pure reads must write nothing, and walks and clunks nothing per request
// in steady state; sessions must still survive hibernation and restarts
// (their other tests: sessions.test.ts, resume-hello.test.ts, locks.test.ts,
// durability.test.ts).

import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { Client } from "../../protocol/index.ts";
import { FLUSH_MS } from "../../worker/session.ts";
import type { ShareObject } from "../../worker/share-object.ts";
import type { WriteTally } from "../../worker/sql-meter.ts";
import { clunk, create, openFile, unlink, walkTo, writeAt } from "./support/fs.ts";
import { BUCKET, mount, put, resumable, shareObject, sleep, text } from "./support/gateway.ts";

type Writes = Record<string, WriteTally>;

async function writes(): Promise<Writes> {
  return (await shareObject().stats()).writes;
}

/** What `kind` did between two snapshots. */
function between(a: Writes, b: Writes, kind: string): WriteTally {
  const x = a[kind] ?? { requests: 0, statements: 0, rows: 0 };
  const y = b[kind] ?? { requests: 0, statements: 0, rows: 0 };
  return { requests: y.requests - x.requests, statements: y.statements - x.statements, rows: y.rows - x.rows };
}

/** Past the sessions' batch write (and a margin): what they defer is written by then. */
const settle = () => sleep(FLUSH_MS * 2);

const READS = ["Tgetattr", "Tread", "Treaddir", "Treadlink", "Tstatfs", "Txattrwalk"];

/** Small files for the content cache (storage/content-cache.ts), read first by their tests. */
const COLD = "read once from R2, then from the share's content cache";
const AGED = "kept in the cache, then last used a generation ago";

beforeAll(async () => {
  await put("main", "w/a.txt", "some bytes to read");
  await put("main", "w/b.txt", "more");
  await put("main", "w/cold.txt", COLD);
  await put("main", "w/aged.txt", AGED);
  const { client: c } = await mount();
  const d = await walkTo(c, "w");
  await c.request({ type: "Tsymlink", fid: d, name: "ln", symtgt: "a.txt", gid: 0 });
  await clunk(c, d);
  // An xattr to read (Txattrcreate, its value written, committed at clunk).
  const f = await walkTo(c, "w/a.txt");
  await c.request({ type: "Txattrcreate", fid: f, name: "user.note", attr_size: 5n, flags: 0 });
  await c.request({ type: "Twrite", fid: f, offset: 0n, data: new TextEncoder().encode("hello") });
  await clunk(c, f);
});

/** One pass of every pure read on already open fids; returns how many of each it sent. */
async function reads(c: Client, fids: { file: number; dir: number; link: number }): Promise<number> {
  const n = 10;
  for (let i = 0; i < n; i++) {
    await c.request({ type: "Tgetattr", fid: fids.file, request_mask: 0x3fffn });
    await c.request({ type: "Tread", fid: fids.file, offset: 0n, count: 4096 });
    await c.request({ type: "Treaddir", fid: fids.dir, offset: 0n, count: 8192 });
    await c.request({ type: "Treadlink", fid: fids.link });
    await c.request({ type: "Tstatfs", fid: fids.file });
    const x = c.allocFid();
    await c.request({ type: "Txattrwalk", fid: fids.file, newfid: x, name: "user.note" });
    await c.request({ type: "Tread", fid: x, offset: 0n, count: 64 });
    await clunk(c, x);
  }
  return n;
}

describe("rows written per request type", () => {
  it("are 0 for Tgetattr, Tread, Treaddir, Treadlink, Tstatfs and Txattrwalk on a name", async () => {
    const { client: c } = await mount();
    const fids = { file: await openFile(c, "w/a.txt", 0), dir: await openFile(c, "w", 0), link: await walkTo(c, "w/ln") };
    // A first pass fills whatever a read may keep (listings, caches): the steady state is the second.
    await reads(c, fids);
    await settle();
    const before = await writes();
    const n = await reads(c, fids);
    await settle();
    const after = await writes();
    for (const t of READS) {
      const d = between(before, after, t);
      expect(d.requests, t).toBe(t === "Tread" ? 2 * n : n);
      expect(d.rows, t).toBe(0);
    }
    // The xattr fids (walked and clunked within one batch) wrote nothing either.
    const perFid = (between(before, after, "Tclunk").rows + between(before, after, "fid flush").rows) / n;
    expect(perFid).toBeLessThan(0.1);
  });

  it("are 0 for a cold Tread of a small file, whose cache fill is written after the reply under its own kind, and 0 of any kind for a warm one", async () => {
    const body = COLD;
    const { client: c } = await mount();
    const f = await openFile(c, "w/cold.txt", 0);
    await settle();
    const s0 = await shareObject().stats();
    const cold = await c.request({ type: "Tread", fid: f, offset: 0n, count: 4096 });
    expect(text(cold.data)).toBe(body);
    await settle();
    const s1 = await shareObject().stats();
    expect(s1.r2Calls.get - s0.r2Calls.get).toBe(1);
    expect(s1.cache.fills - s0.cache.fills).toBe(1);
    // The fill's rows are its own (content-cache.ts), not the read's: its reply waited on no write.
    expect(between(s0.writes, s1.writes, "Tread")).toEqual({ requests: 1, statements: 0, rows: 0 });
    expect(between(s0.writes, s1.writes, "cache fill").rows).toBeGreaterThan(0);
    // A warm read, from the same fid and from another session's: no R2 get and not one row written, of any kind.
    const { client: d } = await mount();
    const g = await openFile(d, "w/cold.txt", 0);
    await settle();
    const s2 = await shareObject().stats();
    const warm = await c.request({ type: "Tread", fid: f, offset: 0n, count: 4096 });
    const other = await d.request({ type: "Tread", fid: g, offset: 7n, count: 4096 });
    expect(text(warm.data)).toBe(body);
    expect(text(other.data)).toBe(body.slice(7));
    await settle();
    const s3 = await shareObject().stats();
    expect(s3.r2Calls.get - s2.r2Calls.get).toBe(0);
    expect(s3.cache.hits - s2.cache.hits).toBe(2);
    expect(between(s2.writes, s3.writes, "Tread").requests).toBe(2);
    const kinds = new Set([...Object.keys(s2.writes), ...Object.keys(s3.writes)]);
    const rows = Object.fromEntries([...kinds].map((k) => [k, between(s2.writes, s3.writes, k).rows]).filter(([, n]) => n !== 0));
    expect(rows).toEqual({});
  });

  it("are 0 for a warm Tread of an entry the cache's LRU counts as old: its mark is written after the reply, as its fill was", async () => {
    const body = AGED;
    const { client: c } = await mount();
    const f = await openFile(c, "w/aged.txt", 0);
    expect(text((await c.request({ type: "Tread", fid: f, offset: 0n, count: 4096 })).data)).toBe(body);
    await settle();
    // As if an eighth of the cache had been filled since its last use (content-cache.ts: the generation moved on).
    const genOf = () =>
      runInDurableObject(shareObject(), (_o: ShareObject, state) => {
        const sql = state.storage.sql;
        const now = (sql.exec(`SELECT v FROM meta WHERE k = 'cache_gen'`).toArray()[0]?.v as number | undefined) ?? 0;
        const row = sql.exec(`SELECT gen FROM cache_entry WHERE key = 'main/w/aged.txt'`).one();
        return { now, entry: row.gen as number };
      });
    await runInDurableObject(shareObject(), (_o: ShareObject, state) => {
      state.storage.sql.exec(`UPDATE cache_entry SET gen = gen - 1 WHERE key = 'main/w/aged.txt'`);
    });
    const aged = await genOf();
    expect(aged.entry).toBeLessThan(aged.now);
    const s0 = await shareObject().stats();
    expect(text((await c.request({ type: "Tread", fid: f, offset: 0n, count: 4096 })).data)).toBe(body);
    await settle();
    const s1 = await shareObject().stats();
    expect(s1.cache.hits - s0.cache.hits).toBe(1);
    expect(between(s0.writes, s1.writes, "Tread")).toEqual({ requests: 1, statements: 0, rows: 0 });
    // One statement (SQLite counts its row and the LRU index entry).
    expect(between(s0.writes, s1.writes, "cache fill").statements).toBe(1);
    expect(await genOf()).toEqual({ now: aged.now, entry: aged.now });
  });

  it("are 0 per walk and per clunk of a plain session, and below 0.1 with its batch writes counted, in steady state", async () => {
    const { client: c } = await mount();
    const stat = async () => {
      const f = await walkTo(c, "w/a.txt");
      await c.request({ type: "Tgetattr", fid: f, request_mask: 0x7ffn });
      await clunk(c, f);
    };
    const catFile = async () => {
      const f = await openFile(c, "w/b.txt", 0);
      await c.request({ type: "Tread", fid: f, offset: 0n, count: 4096 });
      await clunk(c, f);
    };
    await stat();
    await catFile();
    await settle();
    const before = await writes();
    const rounds = 150;
    for (let i = 0; i < rounds; i++) {
      await stat();
      await catFile();
    }
    await settle();
    const after = await writes();
    const walks = between(before, after, "Twalk");
    const clunks = between(before, after, "Tclunk");
    expect(walks.requests).toBe(2 * rounds);
    expect(clunks.requests).toBe(2 * rounds);
    expect(walks.rows).toBe(0);
    expect(clunks.rows).toBe(0);
    // Opening a file to read it needs no durable write either.
    expect(between(before, after, "Tlopen").rows).toBe(0);
    expect(between(before, after, "Tgetattr").rows).toBe(0);
    expect(between(before, after, "Tread").rows).toBe(0);
    const batch = between(before, after, "fid flush").rows;
    expect((walks.rows + clunks.rows + batch) / (walks.requests + clunks.requests)).toBeLessThan(0.1);
  });

  it("are the fid's row and the kept reply alone per walk and per clunk of a resumable session, and 0 per Tgetattr", async () => {
    const { client: c } = await resumable();
    const stat = async () => {
      const f = await walkTo(c, "w/a.txt");
      await c.request({ type: "Tgetattr", fid: f, request_mask: 0x7ffn });
      await clunk(c, f);
    };
    await stat();
    await settle();
    const before = await writes();
    const rounds = 50;
    for (let i = 0; i < rounds; i++) await stat();
    const after = await writes();
    // Statements, not rows: SQLite counts a row and each index entry it writes.
    expect(between(before, after, "Twalk").statements / rounds).toBeLessThanOrEqual(2);
    expect(between(before, after, "Tclunk").statements / rounds).toBeLessThanOrEqual(2);
    expect(between(before, after, "Tgetattr").rows).toBe(0);
  });

  it("are in GET /v1/shares/NAME/stats, with the content cache's, readahead's and R2's figures", async () => {
    const res = await exports.default.fetch("http://gateway/v1/shares/main/stats", {
      headers: { Authorization: "Bearer test-operator-token-0123456789abcdef" },
    });
    const body = (await res.json()) as { writes: Writes; cache: Record<string, number>; readahead: Record<string, number>; r2Calls: Record<string, number> };
    expect(res.status).toBe(200);
    expect(body.writes.Twalk!.requests).toBeGreaterThan(0);
    expect(body.writes.Tgetattr).toMatchObject({ rows: 0 });
    // Beside them, the content cache's figures (its fills' rows among the writes above), readahead's and R2's calls.
    expect(body.writes["cache fill"]!.rows).toBeGreaterThan(0);
    expect(body.cache).toMatchObject({ hits: expect.any(Number), fills: expect.any(Number), entries: expect.any(Number), limitBytes: 1024 * 1024 * 1024 });
    expect(body.cache.fills).toBeGreaterThan(0);
    expect(body.readahead).toMatchObject({ hits: expect.any(Number), windowMax: expect.any(Number), heldBytes: expect.any(Number) });
    expect(body.r2Calls.get).toBeGreaterThan(0);
  });
});

describe("fids written in batches", () => {
  it("survive a hibernation that follows them at once, and a clunked one does not come back", { timeout: 60_000 }, async () => {
    const { client: c } = await mount("main", 65536);
    // Written in an earlier batch, then clunked just before the object goes idle.
    const old = await walkTo(c, "w/b.txt");
    await settle();
    await c.request({ type: "Tclunk", fid: old });
    // Made just before it goes idle.
    const dir = await openFile(c, "w", 0);
    const file = await openFile(c, "w/a.txt", 0);
    const boots = (await shareObject().stats()).boots;
    await sleep(25_000); // idle past the time workerd hibernates an object
    expect((await shareObject().stats()).boots).toBeGreaterThan(boots);
    const rd = await c.request({ type: "Treaddir", fid: dir, offset: 0n, count: 8192 });
    expect(rd.data.byteLength).toBeGreaterThan(0);
    const r = await c.request({ type: "Tread", fid: file, offset: 0n, count: 100 });
    expect(new TextDecoder().decode(r.data)).toBe("some bytes to read");
    // The clunked fid's number is free again.
    await expect(c.request({ type: "Twalk", fid: 0, newfid: old, wnames: ["w"] })).resolves.toMatchObject({ type: "Rwalk" });
  });

  it("that a restart lost leave nothing behind: a file open and unlinked by a plain session is gone", async () => {
    const { client: c } = await mount();
    const fid = await create(c, "w/doomed.bin");
    await writeAt(c, fid, 0, "held open by a fid that has no row yet");
    const ino = Number((await c.request({ type: "Tgetattr", fid, request_mask: 0x7ffn })).qid.path);
    await unlink(c, "w/doomed.bin");
    // Restarted before the session's batch write: its open fid had no row.
    await abortAllDurableObjects();
    await mount();
    const left = await runInDurableObject(shareObject(), (_o: ShareObject, state) => ({
      inodes: state.storage.sql.exec(`SELECT count(*) AS n FROM inode WHERE ino = ?`, ino).one().n as number,
      extents: state.storage.sql.exec(`SELECT count(*) AS n FROM extent WHERE ino = ?`, ino).one().n as number,
    }));
    expect(left).toEqual({ inodes: 0, extents: 0 });
  });

  it("that a restart lost leave nothing behind: a file written by a plain session and left open is published by the alarm", async () => {
    const { client: c } = await mount();
    const fid = await create(c, "w/left-open.txt");
    await writeAt(c, fid, 0, "written, never closed");
    // Restarted before the session's batch write: the fid that held the publish back had no row.
    await abortAllDurableObjects();
    await mount();
    // No publishAll: the object's own alarm publishes it (publish_delay_ms is 200 in the tests).
    let obj: R2ObjectBody | null = null;
    for (let i = 0; i < 100 && !obj; i++) {
      await sleep(100);
      obj = await BUCKET.get("main/w/left-open.txt");
    }
    expect(obj && (await obj.text())).toBe("written, never closed");
  });

  it("a new file's close writes nothing, yet one closed late in its wait and renamed just after is uploaded once, at its final key", async () => {
    const { client: c } = await mount();
    // publish_delay_ms is 200 in the tests; the create schedules the publish.
    const fid = await create(c, "w/slow.tmp");
    await writeAt(c, fid, 0, "written slowly");
    await sleep(150);
    const before = await writes();
    const stats0 = (await shareObject().stats()).publish!;
    await clunk(c, fid); // less than half the delay left: the close moves the publish later
    await sleep(60); // past the create's time
    const d = await walkTo(c, "w");
    await c.request({ type: "Trenameat", olddirfid: d, oldname: "slow.tmp", newdirfid: d, newname: "slow.txt" });
    await clunk(c, d);
    let obj: R2ObjectBody | null = null;
    for (let i = 0; i < 100 && !obj; i++) {
      await sleep(50);
      obj = await BUCKET.get("main/w/slow.txt");
    }
    expect(obj && (await obj.text())).toBe("written slowly");
    const stats1 = (await shareObject().stats()).publish!;
    // Uploaded at its temporary name first, the rename would have deleted that object.
    expect(stats1.deletes - stats0.deletes).toBe(0);
    expect(await BUCKET.head("main/w/slow.tmp")).toBeNull();
    // And a file closed soon after its create writes nothing at its close.
    const quick = await create(c, "w/quick.txt");
    await writeAt(c, quick, 0, "quick");
    const a = await writes();
    await clunk(c, quick);
    expect(between(a, await writes(), "Tclunk").rows).toBe(0);
    expect(between(before, a, "Tclunk").rows).toBeGreaterThan(0); // the late close above did write
  });
});
