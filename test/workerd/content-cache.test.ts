// The share's content cache (storage/content-cache.ts): small files' R2
// bytes kept in the object's SQLite by key and etag, shared by every session
// and the files route, kept across restarts, filled on reads and publishes.
// It never serves an object the file no longer is: a write through another
// session, an object replaced in R2 by another tool, a truncate, an unlink
// and a new file of the same name, across sessions and after a restart.

import { abortAllDurableObjects } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { Client } from "../../protocol/index.ts";
import { parseConfig } from "../../worker/config.ts";
import { cat, clunk, create, openFile, rename, unlink, walkTo, writeAt, writeFile } from "./support/fs.ts";
import { BUCKET, bytes, diff, mount, noise, put, shareObject, sleep } from "./support/gateway.ts";
import { getsOf, r2Calls, watchR2 } from "./support/r2-watch.ts";

const FILES = 20;
const page = (i: number) => noise(4096, 1000 + i);

async function viaRoute(path: string): Promise<Uint8Array> {
  const r = await exports.default.fetch(`http://gateway/v1/shares/main/files/${path}`);
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** Makes the gateway notice objects other tools changed: a lookup of the file in its directory once its listing is older than dir_revalidate_ms (1 s here). */
async function relist(c: Client, path: string): Promise<void> {
  await sleep(1100);
  await clunk(c, await walkTo(c, path));
}

async function setSize(c: Client, path: string, size: number): Promise<void> {
  const f = await walkTo(c, path);
  await c.request({ type: "Tsetattr", fid: f, valid: 0x8, mode: 0, uid: 0, gid: 0, size: BigInt(size), atime_sec: 0n, atime_nsec: 0n, mtime_sec: 0n, mtime_nsec: 0n });
  await clunk(c, f);
}

/** The count of R2 calls so far, to compare with later. */
const mark = async () => (await r2Calls()).length;

beforeAll(async () => {
  for (let i = 0; i < FILES; i++) await put("main", `cc/shared/f${i}.bin`, page(i));
  for (const name of ["written", "replaced", "truncated", "recreated", "renamed", "down"]) await put("main", `cc/${name}.txt`, `${name}, version one\n`);
});

describe("content cache", () => {
  it("serves every session's and the files route's second read of a small file from the share's SQLite, with no R2 get", async () => {
    await watchR2();
    const { client: a } = await mount();
    const { client: b } = await mount();
    const first = await mark();
    for (let i = 0; i < FILES; i++) expect(diff(await cat(a, `cc/shared/f${i}.bin`), page(i))).toBe("equal");
    expect(await getsOf("main/cc/shared/", first)).toBe(FILES);
    const second = await mark();
    for (let i = 0; i < FILES; i++) {
      expect(diff(await cat(a, `cc/shared/f${i}.bin`), page(i))).toBe("equal");
      expect(diff(await cat(b, `cc/shared/f${i}.bin`), page(i))).toBe("equal");
      expect(diff(await viaRoute(`cc/shared/f${i}.bin`), page(i))).toBe("equal");
    }
    expect(await getsOf("main/cc/shared/", second)).toBe(0);
    const s = await shareObject().stats();
    expect(s.cache.hits).toBeGreaterThanOrEqual(3 * FILES);
    expect(s.cache.entries).toBeGreaterThanOrEqual(FILES);
    expect(s.cache.bytes).toBeGreaterThanOrEqual(FILES * 4096);
  });

  it("keeps them across a restart of the object: read again with no R2 get", async () => {
    const { client: a } = await mount();
    for (let i = 0; i < FILES; i++) await cat(a, `cc/shared/f${i}.bin`);
    await abortAllDurableObjects();
    await watchR2();
    const since = await mark();
    const { client: c } = await mount();
    for (let i = 0; i < FILES; i++) expect(diff(await cat(c, `cc/shared/f${i}.bin`), page(i))).toBe("equal");
    expect(await getsOf("main/cc/shared/", since)).toBe(0);
  });

  it("never serves what another session wrote over: before the publish, after it (filled by it) and after a restart", async () => {
    const path = "cc/written.txt";
    const model = bytes("written, version one\n");
    const { client: a } = await mount();
    const { client: b } = await mount();
    expect(diff(await cat(a, path), model)).toBe("equal");
    const wf = await openFile(b, path, 2);
    await writeAt(b, wf, 0, "WRITTEN");
    await writeAt(b, wf, model.byteLength, "and more\n");
    await clunk(b, wf);
    const now = new Uint8Array([...bytes("WRITTEN"), ...model.subarray(7), ...bytes("and more\n")]);
    expect(diff(await cat(a, path), now)).toBe("equal");
    expect(diff(await viaRoute(path), now)).toBe("equal");
    await shareObject().publishAll();
    expect(diff(new Uint8Array(await (await BUCKET.get(`main/${path}`))!.arrayBuffer()), now)).toBe("equal");
    await watchR2();
    const since = await mark();
    expect(diff(await cat(a, path), now)).toBe("equal");
    expect(diff(await viaRoute(path), now)).toBe("equal");
    // The publish had the bytes: the cache took them, R2 was not asked.
    expect(await getsOf(`main/${path}`, since)).toBe(0);
    await abortAllDurableObjects();
    const { client: c } = await mount();
    expect(diff(await cat(c, path), now)).toBe("equal");
  });

  it("never serves an object's old version once the gateway has seen it replaced in R2 by another tool, in any session, the files route or after a restart", async () => {
    const path = "cc/replaced.txt";
    const { client: a } = await mount();
    const { client: b } = await mount();
    expect(new TextDecoder().decode(await cat(a, path))).toBe("replaced, version one\n");
    await put("main", path, "replaced by another tool, version two\n");
    await relist(a, path);
    for (const read of [() => cat(a, path), () => cat(b, path), () => viaRoute(path)]) {
      expect(new TextDecoder().decode(await read())).toBe("replaced by another tool, version two\n");
    }
    await abortAllDurableObjects();
    const { client: c } = await mount();
    expect(new TextDecoder().decode(await cat(c, path))).toBe("replaced by another tool, version two\n");
    // Replaced while the object was down: seen at the next listing after the restart.
    await abortAllDurableObjects();
    await put("main", path, "replaced again, version three\n");
    const { client: d } = await mount();
    await relist(d, path);
    expect(new TextDecoder().decode(await cat(d, path))).toBe("replaced again, version three\n");
    expect(new TextDecoder().decode(await viaRoute(path))).toBe("replaced again, version three\n");
  });

  it("never serves bytes a truncate took away, in any session, after the publish or after a restart", async () => {
    const path = "cc/truncated.txt";
    const { client: a } = await mount();
    const { client: b } = await mount();
    expect(new TextDecoder().decode(await cat(a, path))).toBe("truncated, version one\n");
    await setSize(b, path, 3);
    expect(new TextDecoder().decode(await cat(a, path))).toBe("tru");
    expect(new TextDecoder().decode(await viaRoute(path))).toBe("tru");
    await setSize(b, path, 10);
    const holed = new Uint8Array([...bytes("tru"), 0, 0, 0, 0, 0, 0, 0]);
    expect(diff(await cat(a, path), holed)).toBe("equal");
    await shareObject().publishAll();
    expect(diff(await cat(b, path), holed)).toBe("equal");
    await abortAllDurableObjects();
    const { client: c } = await mount();
    expect(diff(await cat(c, path), holed)).toBe("equal");
    expect(diff(await viaRoute(path), holed)).toBe("equal");
  });

  it("never serves an unlinked file's bytes for a new file of the same name, nor a renamed file's old object", async () => {
    const { client: a } = await mount();
    expect(new TextDecoder().decode(await cat(a, "cc/recreated.txt"))).toBe("recreated, version one\n");
    await unlink(a, "cc/recreated.txt");
    await writeFile(a, "cc/recreated.txt", "a new file\n");
    expect(new TextDecoder().decode(await cat(a, "cc/recreated.txt"))).toBe("a new file\n");
    expect(new TextDecoder().decode(await cat(a, "cc/renamed.txt"))).toBe("renamed, version one\n");
    await rename(a, "cc/renamed.txt", "cc/moved.txt");
    const f = await create(a, "cc/renamed.txt");
    await writeAt(a, f, 0, "another file\n");
    await clunk(a, f);
    await shareObject().publishAll();
    await abortAllDurableObjects();
    const { client: c } = await mount();
    expect(new TextDecoder().decode(await cat(c, "cc/recreated.txt"))).toBe("a new file\n");
    expect(new TextDecoder().decode(await cat(c, "cc/moved.txt"))).toBe("renamed, version one\n");
    expect(new TextDecoder().decode(await cat(c, "cc/renamed.txt"))).toBe("another file\n");
    expect(new TextDecoder().decode(await viaRoute("cc/moved.txt"))).toBe("renamed, version one\n");
  });

  it("drops an entry when the gateway sees its object changed, and when the file is written", async () => {
    const path = "cc/down.txt";
    const { client: a } = await mount();
    await cat(a, path);
    const has = async () => (await shareObject().stats()).cache.entries;
    const before = await has();
    await put("main", path, "down, version two\n");
    await relist(a, path);
    expect(await has()).toBe(before - 1);
    await cat(a, path);
    expect(await has()).toBe(before);
    const wf = await openFile(a, path, 2);
    await writeAt(a, wf, 0, "D");
    expect(await has()).toBe(before - 1);
    await clunk(a, wf);
  });
});

describe("cache and readahead settings", () => {
  const base = { shares: { s: { binding: "B", bucket: "bkt" } } };
  const check = (extra: Record<string, unknown>) => parseConfig({ ...base, ...extra }, () => true);
  it("have defaults", () => {
    const r = check({});
    expect(r.ok && r.config).toMatchObject({ content_cache_bytes: 1 << 30, content_cache_file_bytes: 1 << 20, readahead_bytes: 16 << 20 });
    // With the largest journal, the cache gets what is left of the 9 GB the two may take.
    const big = check({ journal_cap_bytes: 8 * 2 ** 30 });
    expect(big.ok && big.config.content_cache_bytes).toBe(9_000_000_000 - 8 * 2 ** 30);
  });
  it("refuse a cache that with the journal would pass the object's storage, naming the field", () => {
    const r = check({ journal_cap_bytes: 8 * 2 ** 30, content_cache_bytes: 2 * 2 ** 30 });
    expect(!r.ok && r.error).toMatch(/EDGE9P\.content_cache_bytes: .*journal_cap_bytes/);
  });
  it("refuse a readahead window or a cached file larger than half the in-flight budget", () => {
    expect(!check({ readahead_bytes: 40 << 20 }).ok && (check({ readahead_bytes: 40 << 20 }) as { error: string }).error).toMatch(/EDGE9P\.readahead_bytes/);
    const r = check({ inflight_bytes: 8 << 20, msize_cap: 1 << 20, session_window_bytes: 1 << 20, multipart_threshold: 5 << 20, max_file_bytes: 1 << 30, content_cache_file_bytes: 8 << 20 });
    expect(!r.ok && r.error).toMatch(/EDGE9P\.content_cache_file_bytes/);
  });
});
