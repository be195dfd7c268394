// The bridge's lease cache and its caching layer on their own, driven by
// real encoded 9P messages (protocol/) and lease messages (protocol/leases.ts)
// in the order a gateway sends them: the end-to-end tests against the real
// gateway are in test/node/bridge-cache.test.ts.

import { describe, expect, it } from "vitest";
import { CachingSession, type Wire } from "../../bridge/caching.ts";
import { LeaseCache } from "../../bridge/lease-cache.ts";
import { LEASE_RENEW, LEASE_RENEWED, type Message, type MessageInit, NOFID, NOTAG, decode, encode, leaseText, parseLease } from "../../protocol/index.ts";

const L = "9P2000.L";
const qid = (path: number, type = 0) => ({ type, version: 0, path: BigInt(path) });
const attrs = (path: number, size: number) => ({
  type: "Rgetattr" as const,
  tag: 0,
  valid: 0x7ffn,
  qid: qid(path),
  mode: 0o100644,
  uid: 0,
  gid: 0,
  nlink: 1n,
  rdev: 0n,
  size: BigInt(size),
  blksize: 4096n,
  blocks: 0n,
  atime_sec: 0n,
  atime_nsec: 0n,
  mtime_sec: 0n,
  mtime_nsec: 0n,
  ctime_sec: 0n,
  ctime_nsec: 0n,
  btime_sec: 0n,
  btime_nsec: 0n,
  gen: 0n,
  data_version: 0n,
});

describe("LeaseCache", () => {
  it("keeps attrs only under a lease, answers a covered mask, and forgets at the term's end", () => {
    const c = new LeaseCache();
    const a = decode(encode(attrs(40, 5), L), L) as Message & { type: "Rgetattr" };
    c.putAttrs("40", a, 0x7ffn, 0);
    expect(c.attrs("40", 0x7ffn, 0)).toBeNull(); // no lease, nothing kept (rule 6)
    c.grant("40", 1000);
    c.putAttrs("40", a, 0x7ffn, 10);
    expect(c.attrs("40", 0x7ffn, 500)?.size).toBe(5n);
    expect(c.attrs("40", 0x3fffn, 500)).toBeNull(); // asks for more than given or asked
    expect(c.attrs("40", 0x7ffn, 1000)).toBeNull(); // the term ran out (rule 4)
  });

  it("renews every lease held, recalls drop what they cover", () => {
    const c = new LeaseCache();
    c.grant("1", 100);
    c.grant("2", 100);
    c.putName("1", "a", qid(2), 0);
    c.renewed(300);
    expect(c.name("1", "a", 200)?.path).toBe(2n);
    c.recall(["1"]);
    expect(c.name("1", "a", 200)).toBeUndefined();
    expect(c.leased("2", 200)).toBe(true);
  });

  it("holds its bounds: the least recently used leases go, and are released", () => {
    const released: string[] = [];
    const c = new LeaseCache({ entries: 10, bytes: 1 << 20 }, (q) => released.push(...q));
    for (let d = 1; d <= 5; d++) {
      c.grant(String(d), 1e9);
      for (let i = 0; i < 3; i++) c.putName(String(d), `n${i}`, qid(100 + i), 0);
    }
    expect(c.size.entries).toBeLessThanOrEqual(10);
    expect(released).toEqual(["1", "2", "3"]);
    expect(c.name("5", "n2", 0)?.path).toBe(102n);
    const small = new LeaseCache({ entries: 1000, bytes: 600 }, (q) => released.push(...q));
    small.grant("9", 1e9);
    for (let i = 0; i < 50; i++) small.putName("9", `name-${i}`, qid(i), 0);
    expect(small.size.bytes).toBeLessThanOrEqual(600);
  });
});

/** A caching session whose gateway is this test: what it forwards and what the guest gets are recorded. */
function session(term = 10_000, bounds?: { entries: number; bytes: number }) {
  const forwarded: Message[] = [];
  const guest: Message[] = [];
  const texts: string[] = [];
  const wire: Wire = {
    forward: (m) => forwarded.push(decode(m, L)),
    toGuest: (m) => guest.push(decode(m, L)),
    sendText: (t) => texts.push(t),
  };
  const stats = { answered: {} as Record<string, number>, made: 0, released: 0, held: 0 };
  let clock = 0;
  const s = new CachingSession(wire, stats, bounds, () => clock);
  s.opened(term);
  const tick = () => new Promise((r) => setImmediate(r));
  const send = async (m: MessageInit) => {
    s.request(encode(m, L));
    await tick();
  };
  /** The gateway answers: an optional grant, then the reply (which the guest sees unless consumed). */
  const reply = async (m: MessageInit, grant?: number[]) => {
    if (grant) s.text(leaseText({ lease: "grant", tag: m.tag, q: grant.map(String) }));
    const shown = s.reply(encode(m, L));
    if (shown) guest.push(decode(encode(m, L), L));
    await tick();
  };
  return { s, forwarded, guest, texts, stats, send, reply, at: (t: number) => (clock = t) };
}

async function mounted() {
  const t = session();
  await t.send({ type: "Tversion", tag: NOTAG, msize: 65536, version: L });
  await t.reply({ type: "Rversion", tag: NOTAG, msize: 65536, version: L });
  await t.send({ type: "Tattach", tag: 1, fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
  await t.reply({ type: "Rattach", tag: 1, qid: qid(1, 0x80) });
  // Walk to dir/f: crosses, granted on both directories.
  await t.send({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: ["dir", "f"] });
  await t.reply({ type: "Rwalk", tag: 2, qids: [qid(2, 0x80), qid(3)] }, [1, 2]);
  await t.send({ type: "Tgetattr", tag: 3, fid: 1, request_mask: 0x7ffn });
  await t.reply({ ...attrs(3, 7), tag: 3 }, [3]);
  t.s.close();
  return t;
}

describe("CachingSession", () => {
  it("answers a known walk, a covered getattr and the clunk of a virtual fid without crossing", async () => {
    const t = await mounted();
    const before = t.forwarded.length;
    await t.send({ type: "Twalk", tag: 4, fid: 0, newfid: 2, wnames: ["dir", "f"] });
    await t.send({ type: "Tgetattr", tag: 5, fid: 2, request_mask: 0x7ffn });
    await t.send({ type: "Twalk", tag: 6, fid: 2, newfid: 3, wnames: [] });
    await t.send({ type: "Tclunk", tag: 7, fid: 3 });
    await t.send({ type: "Tclunk", tag: 8, fid: 2 });
    expect(t.forwarded.length).toBe(before);
    expect(t.guest.slice(-5).map((m) => `${m.type}:${m.tag}`)).toEqual(["Rwalk:4", "Rgetattr:5", "Rwalk:6", "Rclunk:7", "Rclunk:8"]);
    expect(t.stats.answered).toEqual({ Twalk: 2, Tgetattr: 1, Tclunk: 2 });
  });

  it("answers a name absent under the directory's lease: ENOENT for a first name, a short Rwalk for a later one (walk(5))", async () => {
    const t = await mounted();
    await t.send({ type: "Twalk", tag: 4, fid: 0, newfid: 2, wnames: ["dir", "nope"] });
    await t.reply({ type: "Rwalk", tag: 4, qids: [qid(2, 0x80)] }, [1, 2]);
    const before = t.forwarded.length;
    await t.send({ type: "Twalk", tag: 5, fid: 0, newfid: 2, wnames: ["dir", "nope"] });
    await t.send({ type: "Twalk", tag: 6, fid: 1, newfid: 3, wnames: [] }); // clone of dir/f, to walk from dir
    await t.send({ type: "Twalk", tag: 7, fid: 0, newfid: 4, wnames: ["dir"] });
    await t.send({ type: "Twalk", tag: 8, fid: 4, newfid: 5, wnames: ["nope"] });
    expect(t.forwarded.length).toBe(before);
    expect(t.guest.at(-4)).toMatchObject({ type: "Rwalk", tag: 5, qids: [qid(2, 0x80)] });
    expect(t.guest.at(-1)).toMatchObject({ type: "Rlerror", tag: 8, ecode: 2 });
    // A short Rwalk makes no newfid: 2 is not the guest's, a Tclunk of it crosses (and fails there).
    await t.send({ type: "Tclunk", tag: 9, fid: 2 });
    expect(t.forwarded.at(-1)).toMatchObject({ type: "Tclunk", tag: 9, fid: 2 });
  });

  it("caches a first name absent from an Rlerror ENOENT granted the directory, and answers the next walk of it", async () => {
    const t = await mounted();
    await t.send({ type: "Twalk", tag: 4, fid: 1, newfid: 2, wnames: ["x"] }); // from a file: not granted, not cached
    await t.reply({ type: "Rlerror", tag: 4, ecode: 20 });
    await t.send({ type: "Twalk", tag: 5, fid: 0, newfid: 2, wnames: ["nope"] });
    await t.reply({ type: "Rlerror", tag: 5, ecode: 5 }, [1]); // EIO: says nothing of the name
    await t.send({ type: "Twalk", tag: 6, fid: 0, newfid: 2, wnames: ["nope"] });
    expect(t.forwarded.at(-1)).toMatchObject({ type: "Twalk", tag: 6 });
    await t.reply({ type: "Rlerror", tag: 6, ecode: 2 }, [1]);
    const before = t.forwarded.length;
    await t.send({ type: "Twalk", tag: 7, fid: 0, newfid: 2, wnames: ["nope", "deeper"] });
    expect(t.forwarded.length).toBe(before);
    expect(t.guest.at(-1)).toMatchObject({ type: "Rlerror", tag: 7, ecode: 2 });
  });

  it("Tversion starts over: nothing cached or virtual holds (version(5))", async () => {
    const t = await mounted();
    await t.send({ type: "Tversion", tag: NOTAG, msize: 65536, version: L });
    await t.reply({ type: "Rversion", tag: NOTAG, msize: 65536, version: L });
    await t.send({ type: "Tattach", tag: 1, fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
    await t.reply({ type: "Rattach", tag: 1, qid: qid(1, 0x80) });
    await t.send({ type: "Twalk", tag: 2, fid: 0, newfid: 7, wnames: ["dir", "f"] });
    expect(t.forwarded.at(-1)).toMatchObject({ type: "Twalk", tag: 2 });
  });

  it("takes a local Rwalk's qid.version from the target's own lease, not the directory's (docs/leases.md, Precisely)", async () => {
    const t = await mounted();
    await t.send({ type: "Tgetattr", tag: 9, fid: 1, request_mask: 0x3fffn });
    await t.reply({ ...attrs(3, 7), qid: { type: 0, version: 5, path: 3n }, tag: 9 }, [3]);
    await t.send({ type: "Twalk", tag: 4, fid: 0, newfid: 2, wnames: ["dir", "f"] });
    const w = t.guest.at(-1) as Message & { type: "Rwalk" };
    expect([w.type, w.qids.map((q) => q.version)]).toEqual(["Rwalk", [0, 5]]);
  });

  it("makes a virtual fid real with a Twalk from its ancestor before the request that needs it, and the guest never sees that Rwalk", async () => {
    const t = await mounted();
    await t.send({ type: "Twalk", tag: 4, fid: 0, newfid: 2, wnames: ["dir", "f"] });
    const before = t.forwarded.length;
    await t.send({ type: "Tlopen", tag: 5, fid: 2, flags: 0 });
    // Only the bridge's Twalk has gone: the Tlopen waits for its reply.
    expect(t.forwarded.slice(before).map((m) => m.type)).toEqual(["Twalk"]);
    const w = t.forwarded.at(-1) as Message & { type: "Twalk" };
    expect([w.fid, w.newfid, w.wnames.map((n) => Buffer.from(n).toString())]).toEqual([0, 2, ["dir", "f"]]);
    const seen = t.guest.length;
    await t.reply({ type: "Rwalk", tag: w.tag, qids: [qid(2, 0x80), qid(3)] });
    expect(t.guest.length).toBe(seen);
    expect(t.forwarded.at(-1)).toMatchObject({ type: "Tlopen", tag: 5, fid: 2 });
    expect(t.stats.made).toBe(1);
  });

  it("defers the clunk of a real fid a virtual one leans on, and clunks it once that one goes", async () => {
    const t = await mounted();
    await t.send({ type: "Twalk", tag: 4, fid: 1, newfid: 2, wnames: [] }); // virtual, leans on 1
    const before = t.forwarded.length;
    await t.send({ type: "Tclunk", tag: 5, fid: 1 });
    expect(t.guest.at(-1)).toMatchObject({ type: "Rclunk", tag: 5 });
    expect(t.forwarded.length).toBe(before);
    await t.send({ type: "Tclunk", tag: 6, fid: 2 });
    expect(t.forwarded.at(-1)).toMatchObject({ type: "Tclunk", fid: 1 });
    expect(t.guest.at(-1)).toMatchObject({ type: "Rclunk", tag: 6 });
  });

  it("a guest that reuses a deferred fid's number first has the leaners made real and the old fid clunked", async () => {
    const t = await mounted();
    await t.send({ type: "Twalk", tag: 4, fid: 1, newfid: 2, wnames: [] });
    await t.send({ type: "Tclunk", tag: 5, fid: 1 });
    const before = t.forwarded.length;
    await t.send({ type: "Twalk", tag: 6, fid: 0, newfid: 1, wnames: ["other"] });
    const w = t.forwarded.at(-1) as Message & { type: "Twalk" };
    expect([w.type, w.fid, w.newfid]).toEqual(["Twalk", 1, 2]);
    await t.reply({ type: "Rwalk", tag: w.tag, qids: [] });
    const c = t.forwarded.at(-1)!;
    expect(c).toMatchObject({ type: "Tclunk", fid: 1 });
    await t.reply({ type: "Rclunk", tag: c.tag });
    expect(t.forwarded.slice(before).map((m) => `${m.type}`)).toEqual(["Twalk", "Tclunk", "Twalk"]);
    expect(t.forwarded.at(-1)).toMatchObject({ tag: 6, newfid: 1 });
  });

  it("a recall drops what it names before the ack; a forwarded change drops at once; a lost socket drops all", async () => {
    const t = await mounted();
    t.s.text(leaseText({ lease: "recall", n: 3, q: ["3"] }));
    expect(parseLease(t.texts.at(-1)!)).toEqual({ lease: "ack", n: 3 });
    await t.send({ type: "Tgetattr", tag: 9, fid: 1, request_mask: 0x7ffn });
    expect(t.forwarded.at(-1)).toMatchObject({ type: "Tgetattr", tag: 9 });
    await t.reply({ ...attrs(3, 7), tag: 9 }, [3]);
    await t.send({ type: "Twrite", tag: 10, fid: 1, offset: 0n, data: new Uint8Array(3) });
    await t.send({ type: "Tgetattr", tag: 11, fid: 1, request_mask: 0x7ffn });
    expect(t.forwarded.at(-1)).toMatchObject({ type: "Tgetattr", tag: 11 });
    t.s.lost();
    await t.send({ type: "Twalk", tag: 12, fid: 0, newfid: 5, wnames: ["dir"] });
    expect(t.forwarded.at(-1)).toMatchObject({ type: "Twalk", tag: 12 });
  });

  it("renews while it holds leases (one at a time) and a renew extends them from when it was sent", async () => {
    const t = session(300);
    await t.send({ type: "Tversion", tag: NOTAG, msize: 65536, version: L });
    await t.reply({ type: "Rversion", tag: NOTAG, msize: 65536, version: L });
    await t.send({ type: "Tattach", tag: 1, fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
    await t.reply({ type: "Rattach", tag: 1, qid: qid(1, 0x80) });
    await t.send({ type: "Tgetattr", tag: 2, fid: 0, request_mask: 0x7ffn });
    await t.reply({ ...attrs(1, 0), tag: 2 }, [1]);
    t.at(200);
    await new Promise((r) => setTimeout(r, 250));
    expect(t.texts.filter((x) => x === LEASE_RENEW)).toHaveLength(1);
    t.at(290);
    t.s.text(LEASE_RENEWED);
    t.at(450); // past 0 + 300, within 200 + 300
    await t.send({ type: "Tgetattr", tag: 3, fid: 0, request_mask: 0x7ffn });
    expect(t.guest.at(-1)).toMatchObject({ type: "Rgetattr", tag: 3 });
    t.at(500);
    await t.send({ type: "Tgetattr", tag: 4, fid: 0, request_mask: 0x7ffn });
    expect(t.forwarded.at(-1)).toMatchObject({ type: "Tgetattr", tag: 4 });
    t.s.close();
  });

  it("does not trust a grant of an inode it released that came with the reply to a request forwarded before the release (docs/leases.md, the bridge's releases)", async () => {
    const t = session(10_000, { entries: 4, bytes: 1 << 20 });
    await t.send({ type: "Tversion", tag: NOTAG, msize: 65536, version: L });
    await t.reply({ type: "Rversion", tag: NOTAG, msize: 65536, version: L });
    await t.send({ type: "Tattach", tag: 1, fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
    await t.reply({ type: "Rattach", tag: 1, qid: qid(1, 0x80) });
    await t.send({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: ["a"] });
    await t.reply({ type: "Rwalk", tag: 2, qids: [qid(10)] }, [1]);
    await t.send({ type: "Tgetattr", tag: 3, fid: 1, request_mask: 0x7ffn });
    await t.reply({ ...attrs(10, 5), tag: 3 }, [10]);
    await t.send({ type: "Twalk", tag: 4, fid: 0, newfid: 2, wnames: ["b"] });
    await t.reply({ type: "Rwalk", tag: 4, qids: [qid(11)] }, [1]);
    // Held: 10 (least recently used), then 1 with names a and b: four entries, the bound.
    // Two requests cross: a Tgetattr of 10 asking more than was asked (not
    // the cache's to answer), then one of 11, whose grant evicts 10.
    await t.send({ type: "Tgetattr", tag: 5, fid: 1, request_mask: 0x3fffn });
    await t.send({ type: "Tgetattr", tag: 6, fid: 2, request_mask: 0x7ffn });
    await t.reply({ ...attrs(11, 1), tag: 6 }, [11]);
    expect(t.texts.map((x) => parseLease(x))).toContainEqual({ lease: "release", q: ["10"] });
    // The gateway granted 10 with tag 5's reply before it read that release,
    // then forgot 10 on it: the bridge must not cache 10 from that grant.
    const releases = t.texts.length;
    await t.reply({ ...attrs(10, 5), tag: 5 }, [10]);
    // Released again: the gateway may have granted it after reading the release.
    expect(t.texts.slice(releases).map((x) => parseLease(x))).toEqual([{ lease: "release", q: ["10"] }]);
    await t.send({ type: "Tgetattr", tag: 7, fid: 1, request_mask: 0x7ffn });
    expect(t.forwarded.at(-1)).toMatchObject({ type: "Tgetattr", tag: 7 });
    // A grant with the reply to a request forwarded after the release is the gateway's word: cached.
    await t.reply({ ...attrs(10, 9), tag: 7 }, [10]);
    await t.send({ type: "Tgetattr", tag: 8, fid: 1, request_mask: 0x7ffn });
    expect(t.guest.at(-1)).toMatchObject({ type: "Rgetattr", tag: 8, size: 9n });
    expect(t.stats.answered.Tgetattr).toBe(1);
    // Every request forwarded before the release is answered: its mark is forgotten (bounded).
    expect(t.s.releaseMarks).toBe(0);
    t.s.close();
  });
});
