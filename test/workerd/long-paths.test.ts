// Paths up to PATH_MAX (issue 14; pjdfstest's */03.t make 4,095-byte paths
// of 255-byte names). An object whose key would pass R2's 1,024 bytes lives
// under the share's reserved prefix instead, `PREFIX/.edge9p/long/<sha-256
// of its directory's path>/<name>`, with the key of its directory's object
// in its metadata (`edge9p-dir`). Such files create, write, read, stat,
// rename (also whole directories whose children cross the line, both
// ways), link and unlink as any other, outlive a restart and a listing of
// R2 afresh, and the reserved prefix is nobody's name: a client cannot make
// `.edge9p` at the root, and objects another tool put under it show only
// where their key puts them, never as an alias of another name.

import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ShareFiles } from "../../client/share-files.ts";
import { type Client, ERRNO, S_IF } from "../../protocol/index.ts";
import { cat, clunk, getattr, mkdir, openFile, rename, unlink, walkTo, writeAt, writeFile } from "./support/fs.ts";
import { BUCKET, bytes, listDir, mount, shareObject, sleep, text } from "./support/gateway.ts";

const SHARE = "long";
const enc = new TextEncoder();
/** A 255-byte name (NAME_MAX) of one repeated character. */
const n255 = (ch: string) => ch.repeat(255);
/** 15 directories and a file of 255 bytes each: 16 × 255 + 15 = 4,095 bytes, PATH_MAX - 1. */
const DIRS = "abcdefghijklmno".split("").map(n255);
const FILE = n255("z");
const PATH = [...DIRS, FILE].join("/");
const DEEP = DIRS.join("/");
const CONTENT = "at the end of a 4,095-byte path\n";

/** The SHA-256 of a string, in hex (WebCrypto: not the gateway's own code). */
async function sha256(s: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(s)));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Where the child `name` of the directory at `dir` (names joined by '/') lives when its key is too long. */
const derived = async (dir: string, name: string, isDir = false) => `${SHARE}/.edge9p/long/${await sha256(dir)}/${name}${isDir ? "/" : ""}`;

const bytesOf = (s: string) => enc.encode(s).byteLength;

async function allKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await BUCKET.list({ prefix, cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys.sort();
}

/**
 * The path an object stands for, found as another R2 tool would: its key's
 * last segment is its name, and `edge9p-dir` names its directory's object,
 * followed up to a key outside the reserved prefix (which is the path itself).
 */
async function realPath(key: string): Promise<string> {
  const names: string[] = [];
  let cur = key;
  const reserved = `${SHARE}/.edge9p/`;
  while (cur.startsWith(reserved)) {
    const obj = await BUCKET.head(cur);
    if (obj === null) throw new Error(`no object ${cur}`);
    const trimmed = cur.endsWith("/") ? cur.slice(0, -1) : cur;
    names.unshift(trimmed.slice(trimmed.lastIndexOf("/") + 1));
    const dir = obj.customMetadata?.["edge9p-dir"];
    if (dir === undefined) throw new Error(`${cur} has no edge9p-dir`);
    cur = `${SHARE}/${dir}`;
  }
  const rest = cur.slice(SHARE.length + 1).replace(/\/$/, "");
  return [rest, ...names].filter(Boolean).join("/");
}

/** mkdir -p (the first three directories are in R2 already: beforeAll put objects into them). */
async function mkdirs(c: Client, path: string): Promise<void> {
  const parts = path.split("/");
  for (let i = 1; i <= parts.length; i++) {
    await mkdir(c, parts.slice(0, i).join("/")).catch((e) => {
      if (e.errno !== ERRNO.EEXIST) throw e;
    });
  }
}

async function inDir(c: Client, dir: string, f: (dfid: number) => Promise<unknown>) {
  const dfid = await walkTo(c, dir);
  try {
    return await f(dfid);
  } finally {
    await clunk(c, dfid);
  }
}

const symlink = (c: Client, dir: string, name: string, symtgt: string) =>
  inDir(c, dir, (fid) => c.request({ type: "Tsymlink", fid, name, symtgt, gid: 0 }));
const mknod = (c: Client, dir: string, name: string, mode: number, major = 0, minor = 0) =>
  inDir(c, dir, (dfid) => c.request({ type: "Tmknod", dfid, name, mode, major, minor, gid: 0 }));
async function link(c: Client, target: string, dir: string, name: string) {
  const fid = await walkTo(c, target);
  try {
    await inDir(c, dir, (dfid) => c.request({ type: "Tlink", dfid, fid, name }));
  } finally {
    await clunk(c, fid);
  }
}

const check = async () =>
  (await (
    await exports.default.fetch(`http://gateway/v1/shares/${SHARE}/check`, { headers: { Authorization: "Bearer test-operator-token-0123456789abcdef" } })
  ).json()) as { ok: boolean };

/** Forgets everything the share's object knows (its SQLite), so it lists R2 afresh: what R2 holds is all there is. */
async function wipe(): Promise<void> {
  await shareObject(SHARE).publishAll();
  await runInDurableObject(shareObject(SHARE), async (_obj, state) => {
    await state.storage.deleteAlarm();
    await state.storage.deleteAll();
  });
  await abortAllDurableObjects();
}

const names = async (c: Client, dir: string) => (await listDir(c, dir)).entries.map((e) => e.name).filter((n) => n !== "." && n !== "..");

// Objects another tool put under the reserved prefix, before anything lists them.
const FORGED_SHORT = "forged-short.txt";
/** The shallowest directories whose children may have derived keys: "long/" + 3 × 256 = 773 bytes, and 773 + 256 > 1,024. */
const THIRD = DIRS.slice(0, 3).join("/");
const FORGED_LONG = n255("f");
/** Put by another tool in its right place, and deleted by it later. */
const GOES = n255("g");
const forgedKeys = async () => [
  await derived(DEEP, GOES),
  await derived(THIRD, FORGED_SHORT),
  await derived(THIRD, "forged-dir", true),
  `${SHARE}/.edge9p/long/${"0".repeat(64)}/${FORGED_LONG}`,
  `${SHARE}/.edge9p/stray.txt`,
  await derived(DEEP, FORGED_LONG),
];
beforeAll(async () => {
  // A derived key for a name whose own key fits: it would alias a/forged-short.txt.
  await BUCKET.put(await derived(THIRD, FORGED_SHORT), "forged", { customMetadata: { mode: String(0o100644) } });
  await BUCKET.put(`${SHARE}/${THIRD}/${FORGED_SHORT}`, "the real one");
  await BUCKET.put(await derived(THIRD, "forged-dir", true), "");
  // Under a hash no directory has, and loose under the reserved prefix.
  await BUCKET.put(`${SHARE}/.edge9p/long/${"0".repeat(64)}/${FORGED_LONG}`, "nobody's");
  await BUCKET.put(`${SHARE}/.edge9p/stray.txt`, "stray");
  await BUCKET.put(`${SHARE}/.edge9p`, "an object named like the reserved prefix");
  // Empty directories another tool made (markers only), as long directories always are in R2.
  await BUCKET.put(`${SHARE}/imported/gone/`, "");
  await BUCKET.put(`${SHARE}/imported/moved/`, "");
  // In its right place for a long name of the deepest directory, with
  // metadata that claims another directory (outside the share, and an existing name).
  await BUCKET.put(await derived(DEEP, GOES), "to be deleted by another tool");
  await BUCKET.put(await derived(DEEP, FORGED_LONG), "placed by another tool", {
    customMetadata: { mode: String(0o100600), "edge9p-dir": `../../main/`, path: `${THIRD}/${FORGED_SHORT}` },
  });
});

describe("paths up to PATH_MAX", () => {
  it("creates, writes, reads back and stats a file at a 4,095-byte path of 255-byte names; a 256-byte name is ENAMETOOLONG", async () => {
    expect(bytesOf(PATH)).toBe(4095);
    expect(bytesOf(`${SHARE}/${PATH}`)).toBeGreaterThan(1024);
    const { client: c } = await mount(SHARE);
    await mkdirs(c, DEEP);
    await writeFile(c, PATH, CONTENT, 0o640);
    expect(text(await cat(c, PATH))).toBe(CONTENT);
    const a = await getattr(c, PATH);
    expect([a.mode, a.size, a.nlink]).toEqual([S_IF.REG | 0o640, BigInt(CONTENT.length), 1n]);
    expect(await names(c, DEEP)).toContain(FILE);
    // Every kind of inode that gets an object, at 4,095 bytes too.
    await symlink(c, DEEP, n255("l"), "../target/of/the/link");
    await mknod(c, DEEP, n255("p"), S_IF.FIFO | 0o600);
    await mknod(c, DEEP, n255("c"), S_IF.CHR | 0o644, 1, 3);
    await mkdir(c, `${DEEP}/${n255("e")}`);
    expect((await getattr(c, `${DEEP}/${n255("p")}`)).mode).toBe(S_IF.FIFO | 0o600);
    // Names stay within NAME_MAX.
    await expect(inDir(c, DEEP, (fid) => c.request({ type: "Tlcreate", fid, name: n255("y") + "y", flags: 2, mode: 0o100644, gid: 0 }))).rejects.toMatchObject({
      errno: ERRNO.ENAMETOOLONG,
    });
    await expect(mkdir(c, `${DIRS[0]}/${"q".repeat(256)}`)).rejects.toMatchObject({ errno: ERRNO.ENAMETOOLONG });
  });

  it("publishes such objects under the derived key, with their directory's object in edge9p-dir, which leads back to the real path", async () => {
    const { client: c } = await mount(SHARE);
    await shareObject(SHARE).publishAll();
    const key = await derived(DEEP, FILE);
    const obj = await BUCKET.get(key);
    expect(obj).not.toBeNull();
    expect(await obj!.text()).toBe(CONTENT);
    expect(obj!.customMetadata).toMatchObject({ mode: String(S_IF.REG | 0o640), "edge9p-dir": (await derived(DIRS.slice(0, 14).join("/"), DIRS[14]!, true)).slice(SHARE.length + 1) });
    expect(await realPath(key)).toBe(PATH);
    // The first directory whose marker would pass 1,024 bytes is the fourth:
    // "long/" + 4 × 256 = 1,029. The third has a plain key (773 bytes).
    expect(await BUCKET.head(await derived(DIRS.slice(0, 2).join("/"), DIRS[2]!, true))).toBeNull();
    const fourth = await derived(THIRD, DIRS[3]!, true);
    expect((await BUCKET.head(fourth))?.customMetadata?.["edge9p-dir"]).toBe(`${THIRD}/`);
    expect(await realPath(fourth)).toBe(DIRS.slice(0, 4).join("/"));
    // The symlink's object holds its target, the device its numbers.
    expect(await (await BUCKET.get(await derived(DEEP, n255("l"))))!.text()).toBe("../target/of/the/link");
    expect((await BUCKET.head(await derived(DEEP, n255("c"))))?.customMetadata).toMatchObject({ mode: String(S_IF.CHR | 0o644), rdev: String((1 << 8) | 3) });
    // Every key of the share fits R2, and each derived one names its real path.
    const forged = await forgedKeys();
    let derivedSeen = 0;
    for (const k of await allKeys(`${SHARE}/`)) {
      expect(bytesOf(k)).toBeLessThanOrEqual(1024);
      if (!k.startsWith(`${SHARE}/.edge9p/`) || forged.includes(k)) continue;
      expect((await realPath(k)).startsWith(`${THIRD}/`), k).toBe(true);
      derivedSeen++;
    }
    // Directories 4 to 15, and five inodes in the deepest.
    expect(derivedSeen).toBe(12 + 5);
    // A rewrite goes to the same key.
    const f = await openFile(c, PATH, 0o1001); // O_WRONLY | O_TRUNC
    await writeAt(c, f, 0, "rewritten\n");
    await clunk(c, f);
    await shareObject(SHARE).publishAll();
    expect(await (await BUCKET.get(key))!.text()).toBe("rewritten\n");
  });

  it("keeps edge9p-dir within R2's metadata limit when its directory's plain key is nearly 1,024 bytes of non-Latin-1 names", async () => {
    const { client: c } = await mount(SHARE);
    // "ā" is 2 bytes of UTF-8, and Miniflare counts a value holding it at 2 bytes a character.
    const wide = (n: number) => "ā".repeat(n);
    const dir = [wide(127), wide(127), wide(127), wide(126)].join("/");
    expect(bytesOf(`${SHARE}/${dir}/`)).toBe(1023);
    await mkdirs(c, dir);
    await writeFile(c, `${dir}/${wide(10)}`, "wide");
    await shareObject(SHARE).publishAll();
    const k = await derived(dir, wide(10));
    expect((await BUCKET.head(k))?.customMetadata?.["edge9p-dir"]).toBe(`${dir}/`);
    expect(await realPath(k)).toBe(`${dir}/${wide(10)}`);
    expect(text(await cat(c, `${dir}/${wide(10)}`))).toBe("wide");
  });

  it("reads the same after a restart, and after the share lists R2 afresh with its SQLite gone", async () => {
    await abortAllDurableObjects();
    let { client: c } = await mount(SHARE);
    expect(text(await cat(c, PATH))).toBe("rewritten\n");
    const before = await getattr(c, PATH);
    await wipe();
    ({ client: c } = await mount(SHARE));
    expect(text(await cat(c, PATH))).toBe("rewritten\n");
    const after = await getattr(c, PATH);
    expect([after.mode, after.size, after.mtime_sec, after.mtime_nsec]).toEqual([before.mode, before.size, before.mtime_sec, before.mtime_nsec]);
    const l = await walkTo(c, `${DEEP}/${n255("l")}`);
    expect(text((await c.request({ type: "Treadlink", fid: l })).target)).toBe("../target/of/the/link");
    await clunk(c, l);
    expect((await getattr(c, `${DEEP}/${n255("p")}`)).mode).toBe(S_IF.FIFO | 0o600);
    expect((await getattr(c, `${DEEP}/${n255("c")}`)).rdev).toBe(BigInt((1 << 8) | 3));
    expect((await getattr(c, `${DEEP}/${n255("e")}`)).mode & S_IF.DIR).toBe(S_IF.DIR);
    expect((await names(c, DEEP)).sort()).toEqual([n255("c"), n255("e"), FORGED_LONG, GOES, n255("l"), n255("p"), FILE].sort());
    expect(await check()).toMatchObject({ ok: true });
  });

  it("moves a directory's objects across the 1,024-byte line and back when it is renamed, and a file too", async () => {
    const { client: c } = await mount(SHARE);
    const base = THIRD;
    await mkdir(c, "mover");
    await mkdir(c, "mover/sub");
    await writeFile(c, "mover/c.txt", "c");
    await writeFile(c, `mover/${n255("L")}`, "L");
    await writeFile(c, "mover/sub/s.txt", "s");
    await shareObject(SHARE).publishAll();
    expect(await allKeys(`${SHARE}/mover/`)).toEqual([`${SHARE}/mover/`, `${SHARE}/mover/${n255("L")}`, `${SHARE}/mover/c.txt`, `${SHARE}/mover/sub/`, `${SHARE}/mover/sub/s.txt`]);

    // Down to where the directory fits but its 255-byte child does not (773 + 241 + 1 + 255).
    const mid = `${base}/${"m".repeat(240)}`;
    await rename(c, "mover", mid);
    await shareObject(SHARE).publishAll();
    expect(await allKeys(`${SHARE}/mover/`)).toEqual([]);
    expect(await allKeys(`${SHARE}/${mid}/`)).toEqual([`${SHARE}/${mid}/`, `${SHARE}/${mid}/c.txt`, `${SHARE}/${mid}/sub/`, `${SHARE}/${mid}/sub/s.txt`]);
    const longChild = await derived(mid, n255("L"));
    expect(await (await BUCKET.get(longChild))!.text()).toBe("L");
    expect(await realPath(longChild)).toBe(`${mid}/${n255("L")}`);

    // Further down: the directory itself passes the line, and all below it.
    const low = `${base}/${n255("M")}`;
    await rename(c, mid, low);
    await shareObject(SHARE).publishAll();
    expect(await allKeys(`${SHARE}/${mid}/`)).toEqual([]);
    expect(await BUCKET.head(longChild)).toBeNull();
    for (const [dir, name, isDir] of [
      [base, n255("M"), true],
      [low, "c.txt", false],
      [low, n255("L"), false],
      [low, "sub", true],
      [`${low}/sub`, "s.txt", false],
    ] as const) {
      const k = await derived(dir, name, isDir);
      expect(await BUCKET.head(k), k).not.toBeNull();
      expect(await realPath(k)).toBe(`${dir}/${name}`);
    }
    expect(text(await cat(c, `${low}/sub/s.txt`))).toBe("s");
    // Listed afresh, the tree is all there.
    await wipe();
    let { client: d } = await mount(SHARE);
    expect((await names(d, low)).sort()).toEqual([n255("L"), "c.txt", "sub"].sort());
    expect(text(await cat(d, `${low}/sub/s.txt`))).toBe("s");
    expect(text(await cat(d, `${low}/${n255("L")}`))).toBe("L");

    // And back up to the root: plain keys again, nothing left under the reserved prefix.
    await rename(d, low, "mover");
    await shareObject(SHARE).publishAll();
    expect(await allKeys(`${SHARE}/mover/`)).toEqual([`${SHARE}/mover/`, `${SHARE}/mover/${n255("L")}`, `${SHARE}/mover/c.txt`, `${SHARE}/mover/sub/`, `${SHARE}/mover/sub/s.txt`]);
    expect(await BUCKET.head(await derived(base, n255("M"), true))).toBeNull();
    expect(await BUCKET.head(await derived(`${low}/sub`, "s.txt"))).toBeNull();
    expect(await BUCKET.head(await derived(low, n255("L")))).toBeNull();

    // A single file across the line and back.
    await rename(d, PATH, FILE);
    await shareObject(SHARE).publishAll();
    expect(await BUCKET.head(await derived(DEEP, FILE))).toBeNull();
    expect(await (await BUCKET.get(`${SHARE}/${FILE}`))!.text()).toBe("rewritten\n");
    await rename(d, FILE, PATH);
    await shareObject(SHARE).publishAll();
    expect(await BUCKET.head(`${SHARE}/${FILE}`)).toBeNull();
    expect(await (await BUCKET.get(await derived(DEEP, FILE)))!.text()).toBe("rewritten\n");
    await wipe();
    ({ client: d } = await mount(SHARE));
    expect(text(await cat(d, PATH))).toBe("rewritten\n");
    expect(text(await cat(d, "mover/sub/s.txt"))).toBe("s");
    expect(await check()).toMatchObject({ ok: true });
  });

  it("links and unlinks long names: the object follows the first link, and goes with the last", async () => {
    const { client: c } = await mount(SHARE);
    await writeFile(c, "short.txt", "linked");
    const hard = `${DEEP}/${n255("h")}`;
    await link(c, "short.txt", DEEP, n255("h"));
    expect((await getattr(c, hard)).nlink).toBe(2n);
    // The object stays at the first link's plain key.
    await shareObject(SHARE).publishAll();
    expect(await BUCKET.head(await derived(DEEP, n255("h")))).toBeNull();
    expect(await (await BUCKET.get(`${SHARE}/short.txt`))!.text()).toBe("linked");
    // With the first name gone it moves to the long one.
    await unlink(c, "short.txt");
    await shareObject(SHARE).publishAll();
    expect(await BUCKET.head(`${SHARE}/short.txt`)).toBeNull();
    expect(await (await BUCKET.get(await derived(DEEP, n255("h"))))!.text()).toBe("linked");
    expect(await realPath(await derived(DEEP, n255("h")))).toBe(hard);
    await wipe();
    const { client: d } = await mount(SHARE);
    expect(text(await cat(d, hard))).toBe("linked");
    await unlink(d, hard);
    await unlink(d, `${DEEP}/${n255("p")}`);
    await shareObject(SHARE).publishAll();
    expect(await BUCKET.head(await derived(DEEP, n255("h")))).toBeNull();
    expect(await BUCKET.head(await derived(DEEP, n255("p")))).toBeNull();
    await expect(walkTo(d, hard)).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    expect(await check()).toMatchObject({ ok: true });
  });

  it("serves a long path through the files route by its real path; a path over PATH_MAX is refused", async () => {
    const url = (p: string) => `http://gateway/v1/shares/${SHARE}/files/${p.split("/").map(encodeURIComponent).join("/")}`;
    const r = await exports.default.fetch(url(PATH));
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("rewritten\n");
    const over = await exports.default.fetch(url(`${DEEP}/${n255("z")}z`));
    expect(over.status).toBe(400);
    expect(((await over.json()) as { error: string }).error).toMatch(/PATH_MAX/);
    // A signed link to it works; one for a path past PATH_MAX is refused.
    const ask = (path: string) =>
      exports.default.fetch(`http://gateway/v1/shares/${SHARE}/links`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ path }) });
    const made = await ask(PATH);
    expect(made.status).toBe(200);
    expect(await (await exports.default.fetch(((await made.json()) as { url: string }).url)).text()).toBe("rewritten\n");
    const refused = await ask(`${DEEP}/${n255("z")}z`);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toMatch(/PATH_MAX/);
    // The reserved prefix is no path of the share.
    const k = (await derived(DEEP, FILE)).slice(SHARE.length + 1);
    expect((await exports.default.fetch(url(k))).status).toBe(404);
  });
});

describe("the share browser's file API at a long path", () => {
  it("lists, stats, reads, writes, renames and removes by the real path (client/share-files.ts, which the page and the CLI use)", async () => {
    const { client: c } = await mount(SHARE);
    const files = new ShareFiles(c);
    expect((await files.list(DEEP)).map((e) => e.name)).toContain(FILE);
    expect((await files.stat(PATH)).size).toBe("rewritten\n".length);
    const got: Uint8Array[] = [];
    await files.read(PATH, (p) => void got.push(p.slice()));
    expect(got.map(text).join("")).toBe("rewritten\n");
    const up = `${DEEP}/${n255("u")}`;
    await files.write(up, 0o644, (async function* () {
      yield bytes("uploaded through the page's API");
    })());
    await files.rename(up, `${DEEP}/${n255("v")}`);
    await shareObject(SHARE).publishAll();
    expect(await (await BUCKET.get(await derived(DEEP, n255("v"))))!.text()).toBe("uploaded through the page's API");
    await files.remove(`${DEEP}/${n255("v")}`, false);
    await shareObject(SHARE).publishAll();
    expect(await BUCKET.head(await derived(DEEP, n255("v")))).toBeNull();
  });
});

describe("the reserved prefix", () => {
  it("refuses .edge9p as a new name at the share's root (EPERM), whatever makes it, and allows it deeper", async () => {
    const { client: c } = await mount(SHARE);
    const RES = ".edge9p";
    await writeFile(c, "victim.txt", "v");
    const refused = { errno: ERRNO.EPERM };
    await expect(mkdir(c, RES)).rejects.toMatchObject(refused);
    await expect(inDir(c, "", (fid) => c.request({ type: "Tlcreate", fid, name: RES, flags: 2, mode: 0o100644, gid: 0 }))).rejects.toMatchObject(refused);
    await expect(symlink(c, "", RES, "x")).rejects.toMatchObject(refused);
    await expect(mknod(c, "", RES, S_IF.FIFO | 0o644)).rejects.toMatchObject(refused);
    await expect(link(c, "victim.txt", "", RES)).rejects.toMatchObject(refused);
    await expect(rename(c, "victim.txt", RES)).rejects.toMatchObject(refused);
    await mkdir(c, "inner");
    await expect(rename(c, "inner", RES)).rejects.toMatchObject(refused);
    expect(text(await cat(c, "victim.txt"))).toBe("v");
    await expect(walkTo(c, RES)).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    // Below the root it is a name like any other.
    await mkdir(c, `inner/${RES}`);
    await writeFile(c, `inner/${RES}/x.txt`, "x");
    await shareObject(SHARE).publishAll();
    expect(await (await BUCKET.get(`${SHARE}/inner/${RES}/x.txt`))!.text()).toBe("x");
    await rename(c, "inner", "inner2");
    await shareObject(SHARE).publishAll();
    expect(await (await BUCKET.get(`${SHARE}/inner2/${RES}/x.txt`))!.text()).toBe("x");
  });

  it("hides what lies under it, and shows an object another tool put there only where its key puts it, never as another name", async () => {
    await sleep(1100); // past dir_revalidate_ms: every lookup below lists R2 again
    const { client: c } = await mount(SHARE);
    // Not in the root's listing, not walkable.
    expect(await names(c, "")).not.toContain(".edge9p");
    await expect(walkTo(c, ".edge9p")).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    // A derived key for a name whose own key fits aliases nothing: the real one stays.
    const third = await names(c, THIRD);
    expect(third.filter((n) => n === FORGED_SHORT)).toHaveLength(1);
    expect(third).not.toContain("forged-dir");
    expect(text(await cat(c, `${THIRD}/${FORGED_SHORT}`))).toBe("the real one");
    // A long name's object in its right place shows there, whatever its metadata claims.
    expect(text(await cat(c, `${DEEP}/${FORGED_LONG}`))).toBe("placed by another tool");
    expect((await getattr(c, `${DEEP}/${FORGED_LONG}`)).mode).toBe(S_IF.REG | 0o600);
    // ...and nowhere else: not at the root, nor anywhere its metadata points.
    expect(await names(c, "")).not.toContain(FORGED_LONG);
    await expect(walkTo(c, FORGED_LONG)).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    // One that another tool deletes goes at the next listing.
    expect(text(await cat(c, `${DEEP}/${GOES}`))).toBe("to be deleted by another tool");
    await BUCKET.delete(await derived(DEEP, GOES));
    await sleep(1100);
    await expect(walkTo(c, `${DEEP}/${GOES}`)).rejects.toMatchObject({ errno: ERRNO.ENOENT });
    // Removing it removes that object, and only it.
    await unlink(c, `${DEEP}/${FORGED_LONG}`);
    await shareObject(SHARE).publishAll();
    expect(await BUCKET.head(await derived(DEEP, FORGED_LONG))).toBeNull();
    expect(await (await BUCKET.get(`${SHARE}/${THIRD}/${FORGED_SHORT}`))!.text()).toBe("the real one");
    // What is under no directory's hash stays in R2, unseen, untouched.
    expect(await BUCKET.head(`${SHARE}/.edge9p/long/${"0".repeat(64)}/${FORGED_LONG}`)).not.toBeNull();
    expect(await BUCKET.head(`${SHARE}/.edge9p/stray.txt`)).not.toBeNull();
    expect(await BUCKET.head(await derived(THIRD, FORGED_SHORT))).not.toBeNull();
    expect(await check()).toMatchObject({ ok: true });
  });

  it("keeps nothing of a long name once listed afresh but what its key says (no alias, nothing above the root)", async () => {
    await wipe();
    const { client: c } = await mount(SHARE);
    expect(await names(c, "")).not.toContain(".edge9p");
    expect((await names(c, THIRD)).filter((n) => n.startsWith("forged"))).toEqual([FORGED_SHORT]);
    expect(text(await cat(c, `${THIRD}/${FORGED_SHORT}`))).toBe("the real one");
    expect(text(await cat(c, PATH))).toBe("rewritten\n");
    expect(bytes(PATH).byteLength).toBe(4095);
  });
});

describe("directories another tool made", () => {
  // A directory with a derived key is only its marker in R2; the importer
  // did not record a marker's key, so an rmdir or a rename left the marker
  // behind and the old directory came back with the next listing (for
  // plain markers too).
  it("lose their marker with an rmdir or a rename, and do not come back", async () => {
    const { client: c } = await mount(SHARE);
    await clunk(c, await walkTo(c, "imported/gone"));
    await unlink(c, "imported/gone", true);
    await rename(c, "imported/moved", "imported/moved2");
    await shareObject(SHARE).publishAll();
    expect(await allKeys(`${SHARE}/imported/`)).toEqual([`${SHARE}/imported/moved2/`]);
    await sleep(1100); // past dir_revalidate_ms: listed again
    expect((await names(c, "imported")).sort()).toEqual(["moved2"]);
    await expect(walkTo(c, "imported/gone")).rejects.toMatchObject({ errno: ERRNO.ENOENT });
  });
});
