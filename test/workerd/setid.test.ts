// Set-user-ID and set-group-ID bits after a write, a truncate and a chown,
// as Linux's own file systems leave them (fs/attr.c should_remove_suid,
// fs/open.c chown_common). The acting user is the uid the fid was attached
// with (access=client: the guest attaches once per user).

import { describe, expect, it } from "vitest";
import { ATTR, type Client, DOTL, NOFID, OMODE, decode, encode } from "../../protocol/index.ts";
import { clunk, create, getattr, mkdir, openFile, setattr, walkTo, writeAt } from "./support/fs.ts";
import { open, rawSession, unchangedStat } from "./support/gateway.ts";

const ROOT = 0;
const NOBODY = 65534;

/** A 9P2000.L session attached as `uid`, as Linux's access=client attaches for that user. */
async function as(uid: number): Promise<Client> {
  const { client } = await open();
  await client.version(1 << 20);
  await client.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: uid });
  return client;
}

const permOf = async (c: Client, path: string) => (await getattr(c, path)).mode & 0o7777;

/** A file made by root with `mode` (chmod'ed after the create, as pjdfstest's create does). */
async function rootFile(root: Client, path: string, mode: number): Promise<void> {
  await clunk(root, await create(root, path, 0o644));
  await setattr(root, path, { valid: ATTR.MODE, mode });
  expect(await permOf(root, path)).toBe(mode);
}

async function writeAs(c: Client, path: string, flags = 1): Promise<number> {
  const fid = await openFile(c, path, flags);
  await writeAt(c, fid, 0, "x");
  // fstat on the fid that wrote, as chmod/12.t does, before the close.
  const mode = (await c.request({ type: "Tgetattr", fid, request_mask: 0x3fffn })).mode & 0o7777;
  await clunk(c, fid);
  return mode;
}

describe("set-ID bits on a write", () => {
  it("a write by another user than root clears S_ISUID, and S_ISGID with group-execute (pjdfstest chmod/12.t)", async () => {
    const root = await as(ROOT);
    const user = await as(NOBODY);
    await mkdir(root, "setid-w", 0o777);
    for (const [mode, flags] of [
      [0o4777, 1],
      [0o2777, 2],
      [0o6777, 2],
    ] as const) {
      const path = `setid-w/f${mode.toString(8)}`;
      await rootFile(root, path, mode);
      expect(await writeAs(user, path, flags)).toBe(0o777);
      expect(await permOf(root, path)).toBe(0o777);
    }
  });

  it("keeps S_ISGID without group-execute (a mandatory-locking mark, not a set-group-ID)", async () => {
    const root = await as(ROOT);
    const user = await as(NOBODY);
    await mkdir(root, "setid-g", 0o777);
    await rootFile(root, "setid-g/a", 0o2767);
    await rootFile(root, "setid-g/b", 0o6766);
    expect(await writeAs(user, "setid-g/a")).toBe(0o2767);
    expect(await writeAs(user, "setid-g/b")).toBe(0o2766);
  });

  it("keeps both bits on a write by root (CAP_FSETID), and on an empty write", async () => {
    const root = await as(ROOT);
    const user = await as(NOBODY);
    await mkdir(root, "setid-r", 0o777);
    await rootFile(root, "setid-r/f", 0o6777);
    expect(await writeAs(root, "setid-r/f")).toBe(0o6777);
    const fid = await openFile(user, "setid-r/f", 1);
    await user.request({ type: "Twrite", fid, offset: 0n, data: new Uint8Array(0) });
    await clunk(user, fid);
    expect(await permOf(root, "setid-r/f")).toBe(0o6777);
  });
});

describe("set-ID bits on a truncate", () => {
  it("a truncate by another user than root clears them (Tsetattr size, also to the same size, and O_TRUNC); root's keeps them", async () => {
    const root = await as(ROOT);
    const user = await as(NOBODY);
    await mkdir(root, "setid-t", 0o777);
    await rootFile(root, "setid-t/grow", 0o6777);
    await setattr(user, "setid-t/grow", { valid: ATTR.SIZE, size: 10 });
    expect(await permOf(root, "setid-t/grow")).toBe(0o777);
    await rootFile(root, "setid-t/same", 0o4755);
    await setattr(user, "setid-t/same", { valid: ATTR.SIZE, size: 0 });
    expect(await permOf(root, "setid-t/same")).toBe(0o755);
    await rootFile(root, "setid-t/otrunc", 0o2775);
    await clunk(user, await openFile(user, "setid-t/otrunc", DOTL.WRONLY | DOTL.TRUNC));
    expect(await permOf(root, "setid-t/otrunc")).toBe(0o775);
    await rootFile(root, "setid-t/root", 0o6777);
    await setattr(root, "setid-t/root", { valid: ATTR.SIZE, size: 3 });
    expect(await permOf(root, "setid-t/root")).toBe(0o6777);
  });

  it("takes the mode of a Tsetattr that sets it along with the size as sent (Linux's client computed it)", async () => {
    const root = await as(ROOT);
    const user = await as(NOBODY);
    await mkdir(root, "setid-tm", 0o777);
    await rootFile(root, "setid-tm/f", 0o6777);
    await setattr(user, "setid-tm/f", { valid: ATTR.SIZE | ATTR.MODE, size: 0, mode: 0o4777 });
    expect(await permOf(root, "setid-tm/f")).toBe(0o4777);
  });
});

describe("set-ID bits on a chown", () => {
  it("a chown clears S_ISUID, and S_ISGID with group-execute, of anything but a directory, whoever makes it (fs/open.c chown_common)", async () => {
    const root = await as(ROOT);
    const user = await as(NOBODY);
    await mkdir(root, "setid-c", 0o777);
    await rootFile(root, "setid-c/byuser", 0o6555);
    await setattr(user, "setid-c/byuser", { valid: ATTR.GID, gid: 65532 });
    expect(await permOf(root, "setid-c/byuser")).toBe(0o555);
    await rootFile(root, "setid-c/byroot", 0o6755);
    await setattr(root, "setid-c/byroot", { valid: ATTR.UID | ATTR.GID, uid: 65532, gid: 65531 });
    expect(await getattr(root, "setid-c/byroot")).toMatchObject({ mode: 0o100755, uid: 65532, gid: 65531 });
    await rootFile(root, "setid-c/noxgrp", 0o6745);
    await setattr(root, "setid-c/noxgrp", { valid: ATTR.UID, uid: 7 });
    expect(await permOf(root, "setid-c/noxgrp")).toBe(0o2745);
    // A directory keeps them (Linux, as pjdfstest chown/00.t notes).
    await mkdir(root, "setid-c/dir", 0o755);
    await setattr(root, "setid-c/dir", { valid: ATTR.MODE, mode: 0o6755 });
    await setattr(user, "setid-c/dir", { valid: ATTR.UID | ATTR.GID, uid: NOBODY, gid: 65532 });
    expect(await permOf(root, "setid-c/dir")).toBe(0o6755);
    // A mode sent with the chown is the client's answer, taken as sent.
    await rootFile(root, "setid-c/withmode", 0o6755);
    await setattr(root, "setid-c/withmode", { valid: ATTR.UID | ATTR.MODE, uid: 9, mode: 0o6755 });
    expect(await permOf(root, "setid-c/withmode")).toBe(0o6755);
  });
});

describe("set-ID bits through 9P2000.u", () => {
  it("a Twstat length or owner change by another user than root clears them as Tsetattr does", async () => {
    const root = await as(ROOT);
    await mkdir(root, "setid-u", 0o777);
    await rootFile(root, "setid-u/len", 0o6777);
    await rootFile(root, "setid-u/own", 0o6777);
    await rootFile(root, "setid-u/w", 0o4777);
    const r = await rawSession();
    const ask = async (m: Parameters<typeof encode>[0]) => {
      r.send(encode(m, "9P2000.u"));
      return decode(await r.next(), "9P2000.u");
    };
    await ask({ type: "Tversion", tag: 0xffff, msize: 8192, version: "9P2000.u" });
    expect(await ask({ type: "Tattach", tag: 1, fid: 0, afid: NOFID, uname: "nobody", aname: "", n_uname: NOBODY })).toMatchObject({
      type: "Rattach",
    });
    const wstat = async (name: string, change: Record<string, unknown>) => {
      await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["setid-u", name] });
      expect(await ask({ type: "Twstat", tag: 1, fid: 1, stat: { ...unchangedStat(), ...change } })).toMatchObject({ type: "Rwstat" });
      await ask({ type: "Tclunk", tag: 1, fid: 1 });
    };
    await wstat("len", { length: 0n });
    await wstat("own", { n_gid: 65532 });
    expect(await permOf(root, "setid-u/len")).toBe(0o777);
    expect(await permOf(root, "setid-u/own")).toBe(0o777);
    await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 2, wnames: ["setid-u", "w"] });
    await ask({ type: "Topen", tag: 1, fid: 2, mode: OMODE.WRITE });
    expect(await ask({ type: "Twrite", tag: 1, fid: 2, offset: 0n, data: new Uint8Array([1]) })).toMatchObject({ type: "Rwrite" });
    expect(await permOf(root, "setid-u/w")).toBe(0o777);
  });
});
