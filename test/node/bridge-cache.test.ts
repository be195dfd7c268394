// edge9p bridge --cache against the real local gateway (wrangler dev) that
// grants and recalls leases (docs/leases.md): what the cache answers without
// crossing (Bridge.stats), virtual fids made real, a deferred clunk, recalls,
// a socket's loss, the cache's bounds, and two caching bridges on one share
// under the round-trip model with a storm of changes on one side.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bridge, startBridge } from "../../bridge/bridge.ts";
import { type Client, ERRNO, NOFID, P9Error, decodeDirents } from "../../protocol/index.ts";
import { type LocalGateway, OPERATOR_AUTH, startLocalGateway } from "../support/local-gateway.ts";
import { tcpClient } from "../support/tcp-client.ts";

let gw: LocalGateway;
let bridge: Bridge;
const lines: string[] = [];
const enc = (s: string) => new TextEncoder().encode(s);
const RACE_FILES = 8;
const BIG = new Uint8Array(300_000).map((_, i) => (i * 2654435761) >>> 24);

beforeAll(async () => {
  gw = await startLocalGateway();
  const b = await gw.bucket();
  await b.put("bc/small.txt", "small\n");
  await b.put("bc/big.bin", BIG);
  for (let i = 0; i < 40; i++) await b.put(`bc/many/e${i}`, `entry ${i}\n`);
  for (const n of ["plain", "cached"]) await b.put(`bc/gone-${n}.txt`, "bye\n");
  for (let i = 0; i < RACE_FILES; i++) await b.put(`bc/race/r${i}`, `r${i}\n`);
  bridge = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), cache: true, log: (l) => lines.push(l) });
}, 120_000);

afterAll(async () => {
  if (process.env.EDGE9P_DEBUG) console.log(lines.join("\n"), gw?.output());
  await bridge?.close();
  await gw?.stop();
});

async function mounted(via: Bridge = bridge): Promise<Client & { end(): void }> {
  const { client, socket } = await tcpClient(via.port!);
  await client.version(1 << 20);
  await client.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
  return Object.assign(client, { end: () => socket.destroy() });
}

async function walk(c: Client, path: string[], from = 0): Promise<number> {
  const fid = c.allocFid();
  try {
    const r = await c.request({ type: "Twalk", fid: from, newfid: fid, wnames: path.map(enc) });
    // A short Rwalk: a later name is absent, and newfid was not made (walk(5)).
    if (r.qids.length < path.length) throw new P9Error(ERRNO.ENOENT, `no ${path[r.qids.length]}`);
  } catch (e) {
    c.releaseFid(fid);
    throw e;
  }
  return fid;
}

async function clunk(c: Client, fid: number): Promise<void> {
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
}

const getattr = (c: Client, fid: number) => c.request({ type: "Tgetattr", fid, request_mask: 0x17ffn });

/** What `f` does to the bridge's counts: requests that crossed, and answered locally by type. */
async function counted(b: Bridge, f: () => Promise<void>): Promise<{ crossed: number; answered: Record<string, number>; made: number }> {
  const s0 = b.stats();
  await f();
  const s1 = b.stats();
  const delta = (a: Record<string, number>, z: Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(a)) if (v - (z[k] ?? 0)) out[k] = v - (z[k] ?? 0);
    return out;
  };
  const result = { crossed: s1.requests - s0.requests, answered: delta(s1.answered, s0.answered), made: s1.made - s0.made };
  // By type too, out of the way of toEqual on the three above.
  Object.defineProperty(result, "byType", { value: delta(s1.crossed, s0.crossed), enumerable: false });
  return result;
}

/** Linux's stat(2) of a path: walk, getattr, clunk. */
async function stat(c: Client, path: string[]) {
  const fid = await walk(c, path);
  const a = await getattr(c, fid);
  await clunk(c, fid);
  return a;
}

async function readAll(c: Client, fid: number): Promise<Uint8Array> {
  await c.request({ type: "Tlopen", fid, flags: 0 });
  const parts: Uint8Array[] = [];
  for (let off = 0; ; ) {
    const r = await c.request({ type: "Tread", fid, offset: BigInt(off), count: 65536 });
    if (r.data.byteLength === 0) break;
    parts.push(r.data.slice());
    off += r.data.byteLength;
  }
  return Buffer.concat(parts);
}

async function drain(): Promise<number> {
  const r = await fetch(`${gw.url}/v1/shares/dev/drain`, { method: "POST", headers: { "Content-Type": "application/json", ...OPERATOR_AUTH } });
  expect(r.status).toBe(200);
  return ((await r.json()) as { closed: number }).closed;
}

describe("edge9p bridge --cache", () => {
  it("answers a repeated stat (Twalk, Tgetattr, Tclunk) without crossing", async () => {
    const c = await mounted();
    // The first look at a directory imports its listing from R2, a change
    // the walk made itself before it read its reply: it is granted all the same.
    const first = await counted(bridge, async () => void (await stat(c, ["bc", "small.txt"])));
    expect(first.crossed).toBe(3);
    let a: Awaited<ReturnType<typeof stat>> | null = null;
    const again = await counted(bridge, async () => void (a = await stat(c, ["bc", "small.txt"])));
    expect(again).toEqual({ crossed: 0, answered: { Twalk: 1, Tgetattr: 1, Tclunk: 1 }, made: 0 });
    expect(a!.size).toBe(6n);
    // A clone (nwname 0) of a virtual fid, and its clunk, stay here too.
    const v = await walk(c, ["bc"]);
    const clone = await counted(bridge, async () => {
      const w = await walk(c, [], v);
      await clunk(c, w);
    });
    expect(clone.crossed).toBe(0);
    await clunk(c, v);
    c.end();
  });

  it("answers the lookup of a name found absent (Linux's lookup before a create) from the directory's lease; another client's create recalls it", async () => {
    const c = await mounted();
    const other = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev") });
    const w = await mounted(other);
    try {
      const miss = async () => {
        const e = await walk(c, ["neg-probe"]).catch((x: P9Error) => x);
        return e instanceof P9Error ? e.errno : "found";
      };
      expect(await miss()).toBe(ERRNO.ENOENT);
      let again: number | string = 0;
      const r = await counted(bridge, async () => void (again = await miss()));
      expect(again).toBe(ERRNO.ENOENT);
      expect(r).toEqual({ crossed: 0, answered: { Twalk: 1 }, made: 0 });
      const d = await walk(w, []);
      await w.request({ type: "Tlcreate", fid: d, name: enc("neg-probe"), flags: 1, mode: 0o100644, gid: 0 });
      await clunk(w, d);
      const fid = await walk(c, ["neg-probe"]);
      await clunk(c, fid);
    } finally {
      w.end();
      c.end();
      await other.close();
    }
  });

  it("makes a virtual fid real for Tlopen and Tread, which read the file's bytes", async () => {
    const c = await mounted();
    // Twice: the second stat is the cache's (the first walk is granted even where it imports a listing).
    await stat(c, ["bc", "big.bin"]);
    await stat(c, ["bc", "big.bin"]);
    const r = await counted(bridge, async () => {
      const fid = await walk(c, ["bc", "big.bin"]);
      expect(Buffer.compare(await readAll(c, fid), BIG)).toBe(0);
      await clunk(c, fid);
    });
    expect(r.answered.Twalk).toBe(1);
    expect(r.made).toBe(1); // the Twalk that made it real
    c.end();
  });

  it("defers the clunk of a real fid a virtual one leans on; the guest reuses its number at once", async () => {
    const c = await mounted();
    const dir = await walk(c, ["bc"]); // real: its first walk crossed... or is virtual if known
    await stat(c, ["bc", "small.txt"]);
    // Make `dir` real whatever it was, then walk from it (virtual, leaning on it).
    await c.request({ type: "Txattrwalk", fid: dir, newfid: 99, name: enc("user.none") }).catch(() => {});
    const v = await walk(c, ["small.txt"], dir);
    const r = await counted(bridge, async () => clunk(c, dir));
    expect(r).toEqual({ crossed: 0, answered: { Tclunk: 1 }, made: 0 });
    // The guest takes the number again (Client reuses freed fids): the old one is clunked at the gateway first.
    const again = await walk(c, ["bc", "small.txt"]);
    expect(again).toBe(dir);
    expect(Buffer.from(await readAll(c, v)).toString()).toBe("small\n");
    expect(Buffer.from(await readAll(c, again)).toString()).toBe("small\n");
    await clunk(c, v);
    await clunk(c, again);
    c.end();
  });

  it("a change by another client recalls the lease: the next stat crosses and sees it", async () => {
    const c = await mounted();
    const other = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev") });
    const w = await mounted(other);
    try {
      const f = await walk(w, ["bc"]);
      await w.request({ type: "Tlcreate", fid: f, name: enc("recalled.txt"), flags: 1, mode: 0o100644, gid: 0 });
      await w.request({ type: "Twrite", fid: f, offset: 0n, data: enc("one") });
      expect((await stat(c, ["bc", "recalled.txt"])).size).toBe(3n);
      expect((await counted(bridge, async () => void (await stat(c, ["bc", "recalled.txt"])))).crossed).toBe(0);
      await w.request({ type: "Twrite", fid: f, offset: 3n, data: enc("two") });
      let size = 0n;
      const r = await counted(bridge, async () => void (size = (await stat(c, ["bc", "recalled.txt"])).size));
      expect(size).toBe(6n);
      expect(r.answered.Tgetattr ?? 0).toBe(0);
      await clunk(w, f);
    } finally {
      w.end();
      c.end();
      await other.close();
    }
  });

  it("a virtual fid whose name the guest renames away is made real first: it still reaches its file, as through a plain bridge", async () => {
    const plain = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev") });
    /** Walks to the file (twice before, so that the cache knows the name), renames it, then uses the fid. */
    const script = async (c: Client, name: string) => {
      await stat(c, ["bc", name]);
      await stat(c, ["bc", name]);
      const fid = await walk(c, ["bc", name]);
      const d = await walk(c, ["bc"]);
      await c.request({ type: "Trenameat", olddirfid: d, oldname: enc(name), newdirfid: d, newname: enc(`${name}.moved`) });
      const out: string[] = [];
      const a = await getattr(c, fid).catch((e: P9Error) => e);
      out.push(a instanceof P9Error ? `error ${a.errno}` : `size ${a.size} nlink ${a.nlink}`);
      // The fid is the file's, whatever its name (a real fid follows its inode through a rename).
      const data = await readAll(c, fid).catch((e: P9Error) => e);
      out.push(data instanceof P9Error ? `error ${data.errno}` : Buffer.from(data).toString());
      await clunk(c, fid);
      await clunk(c, d);
      return out;
    };
    try {
      const p = await mounted(plain);
      const expected = await script(p, "gone-plain.txt");
      p.end();
      const c = await mounted();
      let got: string[] = [];
      const r = await counted(bridge, async () => void (got = await script(c, "gone-cached.txt")));
      c.end();
      expect(expected).toEqual(["size 4 nlink 1", "bye\n"]);
      expect(got).toEqual(expected);
      expect(r.answered.Twalk).toBeGreaterThan(0); // the walk before the unlink was the cache's
    } finally {
      await plain.close();
    }
  });

  it("answers a Treaddir of a listing it read under the directory's lease; another client's create recalls it", async () => {
    const c = await mounted();
    const other = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev") });
    const w = await mounted(other);
    /** The names of bc/many, read on one open fid from offset 0 to the end. */
    const list = async () => {
      const fid = await walk(c, ["bc", "many"]);
      await c.request({ type: "Tlopen", fid, flags: 0 });
      const out: string[] = [];
      let offset = 0n;
      for (;;) {
        const r = await c.request({ type: "Treaddir", fid, offset, count: 8192 });
        if (r.data.byteLength === 0) break;
        const batch = decodeDirents(r.data);
        for (const e of batch) out.push(Buffer.from(e.name).toString());
        offset = batch.at(-1)!.offset;
      }
      await clunk(c, fid);
      return out.filter((n) => n !== "." && n !== "..").sort();
    };
    try {
      await list(); // the first listing crosses
      const first = await list();
      const again = await counted(bridge, async () => expect(await list()).toEqual(first));
      expect(again.answered.Treaddir).toBeGreaterThan(0);
      expect((again as unknown as { byType: Record<string, number> }).byType.Treaddir ?? 0).toBe(0);
      const d = await walk(w, ["bc", "many"]);
      await w.request({ type: "Tlcreate", fid: d, name: enc("new-entry"), flags: 1, mode: 0o100644, gid: 0 });
      await clunk(w, d);
      expect(await list()).toEqual([...first, "new-entry"].sort());
    } finally {
      w.end();
      c.end();
      await other.close();
    }
  });

  it("drops everything when the socket goes, and the session resumes", async () => {
    const c = await mounted();
    await stat(c, ["bc", "small.txt"]);
    await stat(c, ["bc", "small.txt"]);
    const held = await walk(c, ["bc", "small.txt"]); // virtual: survives the drop as names
    expect(await drain()).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 300));
    const r = await counted(bridge, async () => void (await stat(c, ["bc", "small.txt"])));
    expect(r.crossed).toBe(3);
    expect(lines.some((l) => /resumed session/.test(l))).toBe(true);
    expect(Buffer.from(await readAll(c, held)).toString()).toBe("small\n");
    await clunk(c, held);
    c.end();
  });

  it("a resume while the bridge's own Twalk is out replays it and the guest never sees its reply", async () => {
    // Its own log: the drain resumes every bridge on the share, and the others log to `lines` too.
    const own: string[] = [];
    const slow = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), cache: true, simulateRttMs: 200, log: (l) => own.push(l) });
    const c = await mounted(slow);
    try {
      await stat(c, ["bc", "small.txt"]);
      await stat(c, ["bc", "small.txt"]);
      const fid = await walk(c, ["bc", "small.txt"]); // virtual
      const made = slow.stats().made;
      const resumes = own.filter((l) => /resumed session/.test(l)).length;
      const open = c.request({ type: "Tlopen", fid, flags: 0 });
      // The bridge's Twalk is held 100 ms on its way out (the model): cut before it leaves,
      // so that only the resume's replay can carry it.
      await new Promise((r) => setTimeout(r, 40));
      expect(await drain()).toBeGreaterThanOrEqual(1);
      await expect(open).resolves.toMatchObject({ type: "Rlopen" });
      expect(slow.stats().made).toBe(made + 1);
      expect(own.filter((l) => /resumed session/.test(l)).length).toBe(resumes + 1);
      const r = await c.request({ type: "Tread", fid, offset: 0n, count: 100 });
      expect(Buffer.from(r.data).toString()).toBe("small\n");
      await clunk(c, fid);
    } finally {
      c.end();
      await slow.close();
    }
  });

  it("holds its bounds: a guest that walks more names than the cache holds still gets every answer right", async () => {
    const small = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), cache: true, cacheBounds: { entries: 8, bytes: 1 << 20 } });
    const c = await mounted(small);
    try {
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 40; i++) {
          const fid = await walk(c, ["bc", "many", `e${i}`]);
          expect(Buffer.from(await readAll(c, fid)).toString()).toBe(`entry ${i}\n`);
          await clunk(c, fid);
        }
      }
      const s = small.stats();
      expect(s.released).toBeGreaterThan(0);
      expect(s.held).toBeLessThanOrEqual(8);
    } finally {
      c.end();
      await small.close();
    }
  });
  it("a grant that crossed its release is not trusted: with the bound evicting under concurrent Tgetattrs, another client's change is still seen", { timeout: 60_000 }, async () => {
    const N = RACE_FILES;
    const small = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), cache: true, cacheBounds: { entries: 4, bytes: 1 << 20 }, simulateRttMs: 100 });
    const other = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev") });
    const c = await mounted(small);
    const w = await mounted(other);
    try {
      // Two open (so real: a virtual one would make the burst wait for its Twalk) fids on each file.
      const fids: number[][] = [];
      for (let i = 0; i < N; i++) {
        fids.push([]);
        for (let k = 0; k < 2; k++) {
          const fid = await walk(c, ["bc", "race", `r${i}`]);
          await c.request({ type: "Tlopen", fid, flags: 0 });
          fids[i]!.push(fid);
        }
      }
      // Every file's first fid, then every file's second, all in flight at
      // once: a file's first grant is evicted (and released) by the grants
      // after it while its second Tgetattr is out, and the gateway answers
      // that one, granting the file, before it reads the release (the
      // simulated distance: the whole burst is at the gateway, and answered,
      // before the first release gets there).
      await Promise.all([0, 1].flatMap((k) => fids.map((f) => getattr(c, f[k]!))));
      for (let i = 0; i < N; i++) {
        const f = await walk(w, ["bc", "race", `r${i}`]);
        await w.request({ type: "Tlopen", fid: f, flags: 2 });
        await w.request({ type: "Twrite", fid: f, offset: 0n, data: enc(`changed r${i}\n`) });
        await clunk(w, f);
      }
      // Newest first: what the bound kept last is what the last grants gave
      // (a crossing getattr's grant evicts the oldest, unlooked-at yet).
      const sizes: number[] = [];
      for (let i = N - 1; i >= 0; i--) sizes.unshift(Number((await getattr(c, fids[i]![1]!)).size));
      expect(sizes).toEqual(Array.from({ length: N }, (_, i) => `changed r${i}\n`.length));
      for (const f of fids.flat()) await clunk(c, f);
    } finally {
      c.end();
      w.end();
      await small.close();
      await other.close();
    }
  });
});

describe("two caching bridges at 20 ms, one changing, one looking", () => {
  it("every answer the reader gets agrees with the last change acknowledged before it asked, or one in flight", { timeout: 120_000 }, async () => {
    const opts = { listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), cache: true, simulateRttMs: 20 } as const;
    const wb = await startBridge(opts);
    const rb = await startBridge(opts);
    const w = await mounted(wb);
    const r = await mounted(rb);
    try {
      const d = await walk(w, []);
      await w.request({ type: "Tmkdir", dfid: d, name: enc("storm"), mode: 0o40755, gid: 0 });
      await clunk(w, d);
      /** The states the writer went through: f's existence, inode, size and mode, with when the change was sent and acknowledged. */
      interface State {
        exists: boolean;
        ino: bigint | null;
        size: bigint;
        mode: number;
        sent: number;
        acked: number;
      }
      const history: State[] = [{ exists: false, ino: null, size: 0n, mode: 0, sent: 0, acked: 0 }];
      const change = async (next: Omit<State, "sent" | "acked">, f: () => Promise<void>) => {
        const s: State = { ...next, sent: performance.now(), acked: Infinity };
        history.push(s);
        await f();
        s.acked = performance.now();
      };
      let stop = false;
      const writer = async () => {
        const dir = await walk(w, ["storm"]);
        for (let round = 0; round < 12; round++) {
          const fid = await walk(w, [], dir);
          let ino = 0n;
          await change({ exists: true, ino: null, size: 0n, mode: 0o644 }, async () => {
            const q = await w.request({ type: "Tlcreate", fid, name: enc("f"), flags: 2, mode: 0o100644, gid: 0 });
            ino = q.qid.path;
          });
          history.at(-1)!.ino = ino;
          await change({ exists: true, ino, size: BigInt(round + 1), mode: 0o644 }, async () => {
            await w.request({ type: "Twrite", fid, offset: 0n, data: new Uint8Array(round + 1) });
          });
          await change({ exists: true, ino, size: BigInt(round + 1), mode: 0o600 }, async () => {
            await w.request({ type: "Tsetattr", fid, valid: 1, mode: 0o600, uid: 0, gid: 0, size: 0n, atime_sec: 0n, atime_nsec: 0n, mtime_sec: 0n, mtime_nsec: 0n });
          });
          await clunk(w, fid);
          await change({ exists: false, ino: null, size: 0n, mode: 0 }, async () => {
            await w.request({ type: "Trenameat", olddirfid: dir, oldname: enc("f"), newdirfid: dir, newname: enc("g") });
          });
          await w.request({ type: "Tunlinkat", dirfid: dir, name: enc("g"), flags: 0 });
        }
        await clunk(w, dir);
        stop = true;
      };
      const problems: string[] = [];
      let checked = 0;
      /** The states the reader may see for a request sent at `s` and answered at `g`. */
      const possible = (s: number, g: number) =>
        history.filter((st, i) => st.sent <= g && (history[i + 1] === undefined || history[i + 1]!.acked > s));
      const reader = async () => {
        while (!stop) {
          const s = performance.now();
          let fid: number | null = null;
          try {
            fid = await walk(r, ["storm", "f"]);
          } catch (e) {
            if (!(e instanceof P9Error)) throw e;
          }
          const g = performance.now();
          const can = possible(s, g);
          checked++;
          if (!can.some((st) => st.exists === (fid !== null))) problems.push(`walk at ${s.toFixed(0)}: ${fid !== null ? "found" : "absent"}`);
          if (fid === null) continue;
          const s2 = performance.now();
          const a = await getattr(r, fid).catch(() => null);
          const g2 = performance.now();
          await clunk(r, fid);
          if (!a) continue; // unlinked meanwhile
          checked++;
          // The fid names an inode: its size and mode must be one of that inode's states in the window.
          const states = possible(s2, g2).filter((st) => st.ino === a.qid.path || (st.ino === null && st.exists));
          const later = history.filter((st) => st.ino === a.qid.path && st.acked <= s2);
          const last = later.at(-1);
          const ok = states.some((st) => st.size === a.size && (st.mode & 0o777) === (a.mode & 0o777)) || (last && last.size === a.size && (last.mode & 0o777) === (a.mode & 0o777) && states.length === 0);
          if (!ok) problems.push(`getattr at ${s2.toFixed(0)}: size ${a.size} mode ${(a.mode & 0o777).toString(8)}`);
        }
      };
      await Promise.all([writer(), reader()]);
      expect(problems).toEqual([]);
      expect(checked).toBeGreaterThan(20);
      // The reader's cache answered some of it: the test is about a cache that was used.
      expect(Object.values(rb.stats().answered).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    } finally {
      w.end();
      r.end();
      await wb.close();
      await rb.close();
    }
  });
});
