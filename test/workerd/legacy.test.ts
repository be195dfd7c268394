// The 9P2000 and 9P2000.u forms: Topen, Tread of a directory (stat entries),
// Tstat, and errors as Rerror strings.

import { beforeAll, describe, expect, it } from "vitest";
import { DM, type Dialect, ERRNO, NOFID, type Stat, decode, encode } from "../../protocol/index.ts";
import { put, rawSession, unchangedStat } from "./support/gateway.ts";

beforeAll(async () => {
  await put("main", "legacy/a.txt", "alpha");
  await put("main", "legacy/b.txt", "bravo!");
  await put("main", "legacy/sub/c.txt", "c");
  await put("main", "legacy/ln", "a.txt", { mode: String(0o120777) });
});

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Parses the stat entries of a directory read. */
function stats(data: Uint8Array, d: Dialect): Stat[] {
  const out: Stat[] = [];
  let at = 0;
  while (at < data.byteLength) {
    const size = new DataView(data.buffer, data.byteOffset + at).getUint16(0, true) + 2;
    // Wrap the stat in an Rstat (n[2] + stat) to decode it with the codec.
    const msg = new Uint8Array(9 + size);
    new DataView(msg.buffer).setUint32(0, msg.byteLength, true);
    msg[4] = 125;
    new DataView(msg.buffer).setUint16(7, size, true);
    msg.set(data.subarray(at, at + size), 9);
    const m = decode(msg, d);
    if (m.type === "Rstat") out.push(m.stat);
    at += size;
  }
  return out;
}

for (const d of ["9P2000.u", "9P2000"] as const) {
  describe(d, () => {
    async function session() {
      const r = await rawSession();
      const ask = async (m: Parameters<typeof encode>[0]) => {
        r.send(encode(m, d));
        return decode(await r.next(), d);
      };
      expect(await ask({ type: "Tversion", tag: 0xffff, msize: 8192, version: d })).toMatchObject({ type: "Rversion" });
      const attach = { type: "Tattach", tag: 1, fid: 0, afid: NOFID, uname: "glenda", aname: "" } as const;
      expect(await ask(d === "9P2000.u" ? { ...attach, n_uname: 1000 } : attach)).toMatchObject({ type: "Rattach" });
      return ask;
    }

    it("opens and reads a file", async () => {
      const ask = await session();
      await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["legacy", "a.txt"] });
      expect(await ask({ type: "Topen", tag: 1, fid: 1, mode: 0 })).toMatchObject({ type: "Ropen" });
      const r = await ask({ type: "Tread", tag: 1, fid: 1, offset: 0n, count: 100 });
      expect(r.type === "Rread" && text(r.data)).toBe("alpha");
    });

    it("reads a directory as whole stat entries, continuing where the last read ended", async () => {
      const ask = await session();
      await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["legacy"] });
      await ask({ type: "Topen", tag: 1, fid: 1, mode: 0 });
      const all: Stat[] = [];
      let offset = 0n;
      for (;;) {
        // A small count: one or two entries per read.
        const r = await ask({ type: "Tread", tag: 1, fid: 1, offset, count: 150 });
        if (r.type !== "Rread") throw new Error(r.type);
        if (r.data.byteLength === 0) break;
        all.push(...stats(r.data, d));
        offset += BigInt(r.data.byteLength);
      }
      const byName = Object.fromEntries(all.map((s) => [text(s.name), s]));
      // (files another test of this file created start with "new-")
      expect(Object.keys(byName).filter((n) => !n.startsWith("new-")).sort()).toEqual(["a.txt", "b.txt", "ln", "sub"]);
      expect(byName["b.txt"]!.length).toBe(6n);
      expect((byName.sub!.mode & DM.DIR) >>> 0).toBe(DM.DIR);
      if (d === "9P2000.u") {
        expect((byName.ln!.mode & DM.SYMLINK) >>> 0).toBe(DM.SYMLINK);
        expect(byName["a.txt"]!.n_uid).toBe(1000);
      } else {
        expect(byName.ln!.extension).toBeUndefined();
      }
      // Any other offset is refused (read(5)).
      expect(await ask({ type: "Tread", tag: 2, fid: 1, offset: 3n, count: 150 })).toMatchObject({ type: "Rerror" });
    });

    it("answers Tstat with the file's name, and errors as strings", async () => {
      const ask = await session();
      await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["legacy", "b.txt"] });
      const st = await ask({ type: "Tstat", tag: 1, fid: 1 });
      expect(st.type === "Rstat" && [text(st.stat.name), st.stat.length, text(st.stat.uid)]).toEqual(["b.txt", 6n, "1000"]);
      const err = await ask({ type: "Twalk", tag: 2, fid: 0, newfid: 2, wnames: ["nope"] });
      expect(err.type === "Rerror" && text(err.ename)).toBe("No such file or directory");
      if (d === "9P2000.u") expect(err.type === "Rerror" && err.errno).toBe(ERRNO.ENOENT);
      await ask({ type: "Twalk", tag: 3, fid: 0, newfid: 3, wnames: ["legacy"] });
      const made = await ask({ type: "Tcreate", tag: 3, fid: 3, name: `new-${d}`, perm: 0o640, mode: 1, ...(d === "9P2000.u" ? { extension: "" } : {}) });
      expect(made).toMatchObject({ type: "Rcreate" });
      expect(await ask({ type: "Twrite", tag: 3, fid: 3, offset: 0n, data: new TextEncoder().encode("made") })).toMatchObject({ count: 4 });
      const again = await ask({ type: "Tcreate", tag: 4, fid: 0, name: "legacy", perm: 0o644, mode: 1, ...(d === "9P2000.u" ? { extension: "" } : {}) });
      expect(again.type === "Rerror" && text(again.ename)).toBe("File exists");
    });
  });
}

describe("Twstat", () => {
  it("renames within the directory, truncates, chmods, and treats all don't-touch as a sync", async () => {
    const r = await rawSession();
    const d = "9P2000.u" as const;
    const ask = async (m: Parameters<typeof encode>[0]) => {
      r.send(encode(m, d));
      return decode(await r.next(), d);
    };
    await ask({ type: "Tversion", tag: 0xffff, msize: 8192, version: d });
    await ask({ type: "Tattach", tag: 1, fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
    await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["legacy"] });
    await ask({ type: "Tcreate", tag: 1, fid: 1, name: "ws.txt", perm: 0o644, mode: 1, extension: "" });
    await ask({ type: "Twrite", tag: 1, fid: 1, offset: 0n, data: new TextEncoder().encode("0123456789") });
    const none = unchangedStat();
    expect(await ask({ type: "Twstat", tag: 2, fid: 1, stat: none })).toMatchObject({ type: "Rwstat" });
    expect(await ask({ type: "Twstat", tag: 2, fid: 1, stat: { ...none, name: "renamed.txt", length: 4n, mode: 0o600 } })).toMatchObject({
      type: "Rwstat",
    });
    const st = await ask({ type: "Tstat", tag: 3, fid: 1 });
    expect(st.type === "Rstat" && [text(st.stat.name), st.stat.length, st.stat.mode & 0o777]).toEqual(["renamed.txt", 4n, 0o600]);
  });
});

describe("9P2000.u device nodes", () => {
  async function session(share = "main") {
    const r = await rawSession(share);
    const d = "9P2000.u" as const;
    const ask = async (m: Parameters<typeof encode>[0]) => {
      r.send(encode(m, d));
      return decode(await r.next(), d);
    };
    await ask({ type: "Tversion", tag: 0xffff, msize: 8192, version: d });
    await ask({ type: "Tattach", tag: 1, fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
    return ask;
  }

  // Linux's v9fs_vfs_mknod (fs/9p/vfs_inode.c) creates a device with DMDEVICE
  // and the extension "b MAJOR MINOR" or "c MAJOR MINOR", and p9mode2unixmode
  // reads the same form back from Rstat.
  it("makes block and character devices with Tcreate DMDEVICE, and Rstat gives DMDEVICE and the numbers back", async () => {
    const ask = await session();
    await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: [] });
    expect(await ask({ type: "Tcreate", tag: 1, fid: 1, name: "udevs", perm: (DM.DIR | 0o755) >>> 0, mode: 0, extension: "" })).toMatchObject({ type: "Rcreate" });
    await ask({ type: "Tclunk", tag: 1, fid: 1 });
    const made: Record<string, string> = { sdb: "b 8 16", urandom: "c 1 9", wide: "c 4095 1048575" };
    for (const [i, [name, ext]] of Object.entries(made).entries()) {
      await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 10 + i, wnames: ["udevs"] });
      const r = await ask({ type: "Tcreate", tag: 1, fid: 10 + i, name, perm: (DM.DEVICE | 0o640) >>> 0, mode: 0, extension: ext });
      expect(r, name).toMatchObject({ type: "Rcreate" });
      await ask({ type: "Tclunk", tag: 1, fid: 10 + i });
    }
    await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 2, wnames: ["udevs", "sdb"] });
    const st = await ask({ type: "Tstat", tag: 1, fid: 2 });
    if (st.type !== "Rstat") throw new Error(st.type);
    expect([(st.stat.mode & DM.DEVICE) >>> 0, st.stat.mode & 0o777, text(st.stat.extension!), st.stat.length]).toEqual([DM.DEVICE, 0o640, "b 8 16", 0n]);
    // A directory read carries the same extension.
    await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 3, wnames: ["udevs"] });
    await ask({ type: "Topen", tag: 1, fid: 3, mode: 0 });
    const rd = await ask({ type: "Tread", tag: 1, fid: 3, offset: 0n, count: 4000 });
    if (rd.type !== "Rread") throw new Error(rd.type);
    const byName = Object.fromEntries(stats(rd.data, "9P2000.u").map((s) => [text(s.name), s]));
    expect(Object.fromEntries(Object.entries(byName).map(([n, s]) => [n, [(s.mode & DM.DEVICE) >>> 0, text(s.extension!)]]))).toEqual({
      sdb: [DM.DEVICE, "b 8 16"],
      urandom: [DM.DEVICE, "c 1 9"],
      wide: [DM.DEVICE, "c 4095 1048575"],
    });
    // The same nodes through 9P2000.L: the Linux types and rdev.
    const { mount } = await import("./support/gateway.ts");
    const { getattr } = await import("./support/fs.ts");
    const { client: c } = await mount();
    const sdb = await getattr(c, "udevs/sdb");
    expect([sdb.mode, sdb.rdev]).toEqual([0o060640, BigInt(16 | (8 << 8))]);
    expect((await getattr(c, "udevs/urandom")).mode).toBe(0o020640);
    expect((await getattr(c, "udevs/wide")).rdev).toBe(0xffffffffn);
    // Extensions that name no Linux device are refused, and nothing is made.
    for (const bad of ["x 1 2", "b 1", "b -1 2", "c 4096 0", "c 0 1048576", "b 1 2 3", ""]) {
      await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 4, wnames: ["udevs"] });
      const r = await ask({ type: "Tcreate", tag: 1, fid: 4, name: "bad", perm: (DM.DEVICE | 0o600) >>> 0, mode: 0, extension: bad });
      expect(r.type === "Rerror" && r.errno, JSON.stringify(bad)).toBe(ERRNO.EINVAL);
      await ask({ type: "Tclunk", tag: 1, fid: 4 });
    }
    const w = await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 5, wnames: ["udevs", "bad"] });
    expect(w.type === "Rwalk" && w.qids.length).toBe(1);
  });

  it("refuses Tcreate DMDEVICE with EPERM on a share with device_nodes = false", async () => {
    const ask = await session("nodev");
    await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: [] });
    const r = await ask({ type: "Tcreate", tag: 1, fid: 1, name: "udev", perm: (DM.DEVICE | 0o600) >>> 0, mode: 0, extension: "c 1 3" });
    expect(r.type === "Rerror" && r.errno).toBe(ERRNO.EPERM);
  });
});
