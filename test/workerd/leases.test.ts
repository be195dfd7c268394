// Leases, the gateway's side (docs/leases.md), against the real object, R2
// and SQLite: the attacks first (a holder that never acks, one that asks
// for everything, lease texts where none were negotiated, malformed ones, a
// change overtaking a grant, recalls before the changer's reply, from the
// files route and the importer too), then what a client is promised.
// test/workerd/wrangler.toml sets lease_term_ms = 1500 and
// lease_max_per_session = 8 for these.

import { afterEach, describe, expect, it } from "vitest";
import { CLOSE, LEASES_HEADER, LEASE_RENEW, LEASE_RENEWED, type Client } from "../../protocol/index.ts";
import type { ShareStats } from "../../worker/share-object.ts";
import { faults } from "./support/r2-faults.ts";
import { create, mkdir, walkTo, writeFile } from "./support/fs.ts";
import { BUCKET, mount, open, shareObject, sleep, upgrade } from "./support/gateway.ts";
import { type LeaseConn, granted, leaseMount, until } from "./support/leases.ts";
import { runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import type { ShareObject } from "../../worker/share-object.ts";

const SHARE = "leases";
const TERM = 1500;
const MAX = 8;
const R_GETATTR = 25;
const R_WALK = 111;
const R_LCREATE = 15;
const enc = new TextEncoder();

const open_: { ws: WebSocket }[] = [];
afterEach(async () => {
  await faults([], undefined, SHARE);
  for (const c of open_.splice(0)) {
    try {
      c.ws.close(1000);
    } catch {
      // already closed
    }
  }
});

async function lease(o: { ask?: boolean; autoAck?: boolean; resume?: string } = {}): Promise<LeaseConn> {
  const c = await leaseMount(SHARE, o);
  open_.push(c);
  return c;
}

async function plain() {
  const c = await mount(SHARE);
  open_.push(c);
  return c;
}

async function stats(): Promise<ShareStats> {
  return shareObject(SHARE).stats();
}

/**
 * Replies that waited for another socket's ack so far: a test asks whether a
 * change waited with this, not with a clock (a loaded machine is slow).
 */
async function recallWaits(): Promise<number> {
  return (await stats()).leases!.recallWaits;
}

/** Walks from fid 0 into a new fid; returns it and the qids. */
async function walk(c: Client, path: string) {
  const newfid = c.allocFid();
  const r = await c.request({ type: "Twalk", fid: 0, newfid, wnames: path.split("/").filter(Boolean).map((p) => enc.encode(p)) });
  return { fid: newfid, qids: r.qids };
}

const getattr = (c: Client, fid: number) => c.request({ type: "Tgetattr", fid, request_mask: 0x3fffn });

/** A promise's settling, observable without awaiting it. */
function watch<T>(p: Promise<T>) {
  const w = { done: false, at: 0, value: p };
  void p.then(
    () => {
      w.done = true;
      w.at = Date.now();
    },
    () => {
      w.done = true;
      w.at = Date.now();
    },
  );
  return w;
}

describe("leases: attacks", () => {
  it("a holder that never acks delays another session's change by at most the term, once; its leases are void after", async () => {
    const a = await plain();
    await mkdir(a.client, "never");
    const b = await lease({ autoAck: false });
    const { fid, qids } = await walk(b.client, "never");
    await getattr(b.client, fid);
    const dir = String(qids[0]!.path);
    expect(granted(b).has(dir)).toBe(true);
    const grantAt = b.events.filter((e) => e.kind === "lease").at(-1)!.at;
    const t0 = Date.now();
    const fid1 = await create(a.client, "never/one");
    const waited = Date.now() - t0;
    // Held until B's term ran out from its last grant, and not much longer.
    expect(Date.now()).toBeGreaterThanOrEqual(grantAt + TERM - 50);
    // The slack is for a slow machine (a create takes a few ms here); a
    // wait for an ack that never comes would be the test's timeout.
    expect(waited).toBeLessThan(TERM + 2500);
    expect(b.leases("recall").some((r) => r.q?.includes(dir))).toBe(true);
    // Void: B is told to drop everything, and the next change does not wait.
    await until(() => b.leases("recall").some((r) => r.all === true), 2000, "recall all");
    // Whether it waited, from the object's own count, not a clock: the
    // machine may be slow, and a wait is all this asks about.
    const waits = (await stats()).leases!.recallWaits;
    const fid2 = await create(a.client, "never/two");
    expect((await stats()).leases!.recallWaits, "the next change waits for no recall").toBe(waits);
    // Nothing more is granted to B until it acks.
    const before = b.leases("grant").length;
    await getattr(b.client, fid);
    expect(b.leases("grant").length).toBe(before);
    b.ack(b.leases("recall").at(-1)!.n);
    await getattr(b.client, fid);
    expect(b.leases("grant").length).toBe(before + 1);
    const s = await stats();
    expect(s.leases!.voidByTerm).toBeGreaterThanOrEqual(1);
    for (const f of [fid1, fid2]) await a.client.request({ type: "Tclunk", fid: f });
  });

  it("a client that asks for leases on everything holds at most lease_max_per_session", async () => {
    const a = await plain();
    await mkdir(a.client, "many");
    for (let i = 0; i < 12; i++) await writeFile(a.client, `many/f${i}`, "x");
    const b = await lease();
    const held = new Set<string>();
    const track = () => {
      held.clear();
      for (const e of b.events) if (e.kind === "lease" && e.m.lease === "grant") for (const q of e.m.q) held.add(q);
    };
    for (let i = 0; i < 12; i++) {
      const { fid } = await walk(b.client, `many/f${i}`);
      await getattr(b.client, fid);
    }
    track();
    expect(b.leases("recall")).toEqual([]);
    expect(held.size).toBe(MAX);
    // Releasing makes room: the next getattr of an unleased file is granted.
    const drop = [...held].slice(0, 3);
    b.ws.send(JSON.stringify({ lease: "release", q: drop }));
    const { fid, qids } = await walk(b.client, "many/f11");
    const before = b.leases("grant").length;
    await getattr(b.client, fid);
    const g = b.leases("grant").slice(before);
    expect(g.length).toBe(1);
    expect(g[0]!.q).toEqual([String(qids[1]!.path)]);
  });

  it("refuses lease texts from a socket that did not negotiate leases", async () => {
    const c = await open(SHARE);
    await c.client.version(1 << 16);
    c.ws.send(JSON.stringify({ lease: "ack", n: 1 }));
    const closed = await c.closed;
    expect(closed.code).toBe(CLOSE.UNSUPPORTED);
    expect(closed.reason).toMatch(/X-Edge9p-Leases/);
  });

  it("closes a socket that sends a malformed lease message, saying why, and other sessions keep working", async () => {
    const other = await lease();
    const { fid } = await walk(other.client, "");
    await getattr(other.client, fid);
    for (const [text, why] of [
      ['{"lease":"ack"}', /lease: ack needs n/],
      ['{"lease":"grant","tag":1,"q":["1"]}', /gateway to the client/],
      ['{"lease":"release","q":[1]}', /release needs q/],
      ['{"lease":', /not JSON/],
    ] as const) {
      const bad = await lease();
      await getattr(bad.client, 0);
      bad.ws.send(text);
      const closed = await bad.closed;
      expect(closed.code).toBe(CLOSE.PROTOCOL);
      expect(closed.reason).toMatch(why);
    }
    // The bad sockets' leases went with them: a change waits for none of them.
    // (It does wait for `other`'s ack, which comes at once; a wait on a
    // closed socket could end only by its term: a void.)
    const a = await plain();
    const voids = (await stats()).leases!.voidByTerm;
    await mkdir(a.client, "after-bad");
    expect((await stats()).leases!.voidByTerm, "no wait ran out a term").toBe(voids);
    expect((await getattr(other.client, fid)).type).toBe("Rgetattr");
  });

  it("never grants what a change overtook: a change while a walk reads strikes the grant", async () => {
    const a = await plain();
    await mkdir(a.client, "il");
    const b = await lease();
    await walk(b.client, "il");
    const root = String((await getattr(b.client, 0)).qid.path);
    expect(granted(b).has(root)).toBe(true);
    // B's walk waits in R2 (il's listing is stale: dir_revalidate_ms) after it looked "il" up in the root.
    await sleep(1100);
    await faults([{ method: "list", key: `${SHARE}/il/`, kind: "delay", delayMs: 400 }], undefined, SHARE);
    const before = b.events.length;
    const w = b.client.request({ type: "Twalk", fid: 0, newfid: b.client.allocFid(), wnames: [enc.encode("il"), enc.encode("nope")] });
    await sleep(150);
    // Meanwhile the root changes (and B, whose grant of the root is pending in that walk, holds it from before).
    const f = await create(a.client, "overtook");
    const r = await w;
    expect(r.qids.length).toBe(1);
    const reply = b.events.slice(before).find((e) => e.kind === "reply" && e.type === R_WALK)!;
    const grants = b.events.slice(before).flatMap((e) => (e.kind === "lease" && e.m.lease === "grant" && e.m.tag === (reply as { tag: number }).tag ? e.m.q : []));
    expect(grants).not.toContain(root);
    await a.client.request({ type: "Tclunk", fid: f });
  });

  it("a request's own change does not strike its own grant: the first walk into a directory (its R2 listing imported) is granted", async () => {
    // A directory another tool made: the root's listing (stale after dir_revalidate_ms) shows it, and its own is not read yet.
    await BUCKET.put(`${SHARE}/fresh/f.txt`, "one");
    await sleep(1100);
    const b = await lease();
    const before = b.events.length;
    const { qids } = await walk(b.client, "fresh/f.txt");
    expect(qids.length).toBe(2);
    const reply = b.events.slice(before).find((e) => e.kind === "reply" && e.type === R_WALK)!;
    const grants = b.events.slice(before).flatMap((e) => (e.kind === "lease" && e.m.lease === "grant" && e.m.tag === (reply as { tag: number }).tag ? e.m.q : []));
    // The walk imported fresh's listing (a change: its nlink becomes known) before it looked f.txt up in it.
    expect(grants).toContain(String(qids[0]!.path));
  });

  it("grants the directory looked in with the Rlerror ENOENT of a walk whose first name is absent (its lease covers that a name is absent)", async () => {
    const a = await plain();
    await mkdir(a.client, "neg");
    const b = await lease();
    const { fid, qids } = await walk(b.client, "neg");
    const dir = String(qids[0]!.path);
    const before = b.events.length;
    const w = b.client.request({ type: "Twalk", fid, newfid: b.client.allocFid(), wnames: [enc.encode("absent")] });
    await expect(w).rejects.toMatchObject({ errno: 2 });
    const ev = b.events.slice(before);
    const i = ev.findIndex((e) => e.kind === "reply");
    const prev = ev[i - 1];
    expect(prev?.kind === "lease" && prev.m.lease === "grant" ? [prev.m.tag, prev.m.q] : null).toEqual([(ev[i] as { tag: number }).tag, [dir]]);
    // Another session's create of that name recalls it (rule 1).
    const f = await create(a.client, "neg/absent");
    expect(b.leases("recall").some((r) => r.q?.includes(dir))).toBe(true);
    await a.client.request({ type: "Tclunk", fid: f });
  });

  it("recalls a change by one session from another before the changer's reply, which waits for the ack", async () => {
    const a = await plain();
    await mkdir(a.client, "rc");
    const b = await lease({ autoAck: false });
    const { fid, qids } = await walk(b.client, "rc");
    await getattr(b.client, fid);
    const dir = String(qids[0]!.path);
    const w = watch(create(a.client, "rc/x"));
    await until(() => b.leases("recall").some((r) => r.q?.includes(dir)), 2000, "the recall");
    await sleep(300);
    expect(w.done).toBe(false);
    const ackAt = Date.now();
    b.ack(b.leases("recall").at(-1)!.n);
    const f = await w.value;
    expect(w.at).toBeGreaterThanOrEqual(ackAt);
    const s = await stats();
    expect(s.leases!.recallWaits).toBeGreaterThanOrEqual(1);
    expect(s.leases!.acks).toBeGreaterThanOrEqual(1);
    await a.client.request({ type: "Tclunk", fid: f });
  });

  it("a reply waiting for an ack blocks no one else: other sessions, and the changer's other requests, go on", async () => {
    const a = await plain();
    const c = await plain();
    await mkdir(a.client, "nb");
    await mkdir(c.client, "nb2");
    const b = await lease({ autoAck: false });
    const { fid, qids } = await walk(b.client, "nb");
    await getattr(b.client, fid);
    const w = watch(create(a.client, "nb/x"));
    await until(() => b.leases("recall").some((r) => r.q?.includes(String(qids[0]!.path))), 2000, "the recall");
    const waits = await recallWaits();
    // A change B holds no lease on (B holds the root and nb), and reads.
    await mkdir(c.client, "nb2/other");
    await getattr(a.client, 0);
    await getattr(b.client, 0);
    expect(await recallWaits(), "none of them waited for the recall out").toBe(waits);
    expect(w.done).toBe(false);
    b.ack(b.leases("recall").at(-1)!.n);
    await a.client.request({ type: "Tclunk", fid: await w.value });
  });

  it("a reply that shows an inode whose recall is still out waits for it too: no one learns of a change first", async () => {
    const a = await plain();
    const c = await plain();
    await mkdir(a.client, "seen");
    const b = await lease({ autoAck: false });
    const { fid, qids } = await walk(b.client, "seen");
    await getattr(b.client, fid);
    const w = watch(create(a.client, "seen/x"));
    await until(() => b.leases("recall").some((r) => r.q?.includes(String(qids[0]!.path))), 2000, "the recall");
    // C walks to the new name and asks about the directory: both show A's change.
    const shown = watch(walkTo(c.client, "seen/x"));
    await sleep(300);
    expect(shown.done).toBe(false);
    b.ack(b.leases("recall").at(-1)!.n);
    await shown.value;
    await a.client.request({ type: "Tclunk", fid: await w.value });
  });

  it("a renew the platform answers extends the holder's term for the wait, and a renew after the recall does not", async () => {
    const a = await plain();
    await mkdir(a.client, "rn");
    const b = await lease({ autoAck: false });
    const texts: string[] = [];
    b.ws.addEventListener("message", (ev: MessageEvent) => {
      if (typeof ev.data === "string" && ev.data === LEASE_RENEWED) texts.push(ev.data);
    });
    const { fid } = await walk(b.client, "rn");
    await getattr(b.client, fid);
    await sleep(1000);
    b.ws.send(LEASE_RENEW);
    await until(() => texts.length === 1, 2000, "renewed");
    const renewAt = Date.now();
    const w = watch(create(a.client, "rn/x"));
    await until(() => b.leases("recall").length > 0, 2000, "the recall");
    // Renews after the recall do not stretch the wait.
    for (let i = 0; i < 3; i++) {
      await sleep(300);
      b.ws.send(LEASE_RENEW);
    }
    const f = await w.value;
    // The wait ran to the renew's term, past the grant's (which ended about 500 ms before the renew's).
    expect(w.at).toBeGreaterThanOrEqual(renewAt + TERM - 100);
    expect(w.at).toBeLessThan(renewAt + TERM + 700);
    await a.client.request({ type: "Tclunk", fid: f });
  });

  it("the files route's response waits for the recalls of a change it imports", async () => {
    const a = await plain();
    // A directory and file another tool made: the root's listing (stale after dir_revalidate_ms) imports them.
    await BUCKET.put(`${SHARE}/fr/f.txt`, "one");
    await sleep(1100);
    const b = await lease({ autoAck: false });
    const { fid, qids } = await walk(b.client, "fr/f.txt");
    await getattr(b.client, fid);
    const file = String(qids[1]!.path);
    // Another tool replaces the object; the files route's read imports it (the listing is stale).
    await sleep(1100);
    await BUCKET.put(`${SHARE}/fr/f.txt`, "two, longer");
    const w = watch(exports.default.fetch(`http://gateway/v1/shares/${SHARE}/files/fr/f.txt`));
    await until(() => b.leases("recall").some((r) => r.q?.includes(file) || r.q?.includes(String(qids[0]!.path))), 3000, "the recall");
    await sleep(300);
    expect(w.done).toBe(false);
    b.ack(b.leases("recall").at(-1)!.n);
    const res = await w.value;
    expect(await res.text()).toBe("two, longer");
  });

  it("recalls after an importer change: an object replaced in R2 by another tool", async () => {
    const a = await plain();
    // A directory and file another tool made: the root's listing (stale after dir_revalidate_ms) imports them.
    await BUCKET.put(`${SHARE}/imp/f.txt`, "one");
    await sleep(1100);
    const b = await lease({ autoAck: false });
    const { fid, qids } = await walk(b.client, "imp/f.txt");
    await getattr(b.client, fid);
    const file = String(qids[1]!.path);
    expect(granted(b).has(file)).toBe(true);
    await sleep(1100);
    await BUCKET.put(`${SHARE}/imp/f.txt`, "two, longer");
    // A's walk lists the stale directory, imports the new object, and its reply waits for B.
    const w = watch(walkTo(a.client, "imp/f.txt"));
    await until(() => b.leases("recall").some((r) => r.q?.includes(file)), 3000, "the recall");
    await sleep(300);
    expect(w.done).toBe(false);
    b.ack(b.leases("recall").at(-1)!.n);
    await w.value;
    expect((await getattr(b.client, fid)).size).toBe(11n);
  });

  it("the changer's own socket gets its recall before its reply, and is not waited for", async () => {
    const b = await lease({ autoAck: false });
    await mkdir(b.client, "own");
    const { fid, qids } = await walk(b.client, "own");
    await getattr(b.client, fid);
    const dir = String(qids[0]!.path);
    const before = b.events.length;
    const waits = await recallWaits();
    const f = await create(b.client, "own/x");
    expect(await recallWaits(), "its own recall is not waited for").toBe(waits);
    const after = b.events.slice(before);
    const recall = after.findIndex((e) => e.kind === "lease" && e.m.lease === "recall" && e.m.q?.includes(dir));
    const reply = after.findIndex((e) => e.kind === "reply" && e.type === R_LCREATE);
    expect(recall).toBeGreaterThanOrEqual(0);
    expect(recall).toBeLessThan(reply);
    await b.client.request({ type: "Tclunk", fid: f });
  });
});

describe("leases: loss (rule 5)", () => {
  it("after the object forgets its table (a wake), recalls all from each lease socket, and the first change waits for their acks", async () => {
    const b = await lease({ autoAck: false });
    await getattr(b.client, 0);
    const a = await plain();
    // What a hibernation or a restart does to the object's memory, with the sockets still open.
    await runInDurableObject(shareObject(SHARE), (obj: ShareObject) => {
      const o = obj as unknown as { leases: unknown; ready: unknown; startLeases(r: unknown): void };
      o.leases = null;
      o.startLeases(o.ready);
    });
    await until(() => b.leases("recall").some((r) => r.all === true), 2000, "recall all");
    const w = watch(mkdir(a.client, "woke"));
    await sleep(300);
    expect(w.done).toBe(false);
    b.ack(b.leases("recall").at(-1)!.n);
    await w.value;
    const waits = await recallWaits();
    await mkdir(a.client, "woke/again");
    expect(await recallWaits(), "the next change waits for nothing").toBe(waits);
  });

  it("a resumed session starts with no leases: its old socket's are not waited for", async () => {
    const b = await lease({ autoAck: false, resume: "new" });
    await getattr(b.client, 0);
    expect(b.leases("grant").length).toBe(1);
    b.ws.close(4001, "dropped");
    await b.closed;
    const c = await lease({ autoAck: false, resume: b.token });
    expect(c.term).toBe(String(TERM));
    const a = await plain();
    const waits = await recallWaits();
    await mkdir(a.client, "resumed");
    expect(await recallWaits(), "the old socket's leases are not waited for").toBe(waits);
    expect(c.leases("recall")).toEqual([]);
  });

  it("a publish recalls nothing: only what a client sees does", async () => {
    const a = await plain();
    await writeFile(a.client, "pub.txt", "some bytes");
    const b = await lease();
    const { fid } = await walk(b.client, "pub.txt");
    await getattr(b.client, fid);
    const before = (await stats()).leases!.recalls;
    await shareObject(SHARE).publishAll();
    expect((await stats()).leases!.recalls).toBe(before);
    expect(b.leases("recall")).toEqual([]);
    const s = await stats();
    expect(s.leases!.held).toBeGreaterThanOrEqual(2);
    expect(s.leases!.grants).toBeGreaterThanOrEqual(2);
  });
});

describe("leases: what a client is promised", () => {
  it("answers X-Edge9p-Leases with the term only when asked", async () => {
    const asked = await lease();
    expect(asked.term).toBe(String(TERM));
    const not = await upgrade(SHARE);
    expect(not.headers.get(LEASES_HEADER)).toBeNull();
    not.webSocket!.accept();
    not.webSocket!.close(1000);
    const other = await upgrade(SHARE, { [LEASES_HEADER]: "2" });
    expect(other.headers.get(LEASES_HEADER)).toBeNull();
    other.webSocket!.accept();
    other.webSocket!.close(1000);
  });

  it("plain 9P clients never see a lease text, while lease clients around them get grants and recalls", async () => {
    const p = await open(SHARE);
    open_.push(p);
    const texts: string[] = [];
    p.ws.addEventListener("message", (ev: MessageEvent) => {
      if (typeof ev.data === "string") texts.push(ev.data);
    });
    await p.client.version(1 << 20);
    await p.client.request({ type: "Tattach", fid: 0, afid: 0xffffffff, uname: "nobody", aname: "", n_uname: 0xffffffff });
    const l = await lease();
    await mkdir(p.client, "pl");
    const { fid } = await walk(l.client, "pl");
    await getattr(l.client, fid);
    const pf = await walkTo(p.client, "pl");
    await getattr(p.client, pf);
    await p.client.request({ type: "Tlopen", fid: pf, flags: 0 });
    await p.client.request({ type: "Treaddir", fid: pf, offset: 0n, count: 4096 });
    await writeFile(p.client, "pl/y", "z");
    await until(() => l.leases("recall").length > 0, 2000, "the lease client's recall");
    expect(texts).toEqual([]);
  });

  it("sends a grant immediately before the reply with its tag: Rgetattr, Rwalk, Rreaddir", async () => {
    const a = await plain();
    await mkdir(a.client, "gp");
    await mkdir(a.client, "gp/sub");
    const b = await lease();
    const before = b.events.length;
    const { fid, qids } = await walk(b.client, "gp/sub");
    await getattr(b.client, fid);
    await b.client.request({ type: "Tlopen", fid, flags: 0 });
    await b.client.request({ type: "Treaddir", fid, offset: 0n, count: 4096 });
    const ev = b.events.slice(before);
    const replies = ev.map((e, i) => [e, i] as const).filter(([e]) => e.kind === "reply");
    const root = String((await getattr(b.client, 0)).qid.path);
    const expected: Record<number, string[]> = {
      [R_WALK]: [root, String(qids[0]!.path)],
      [R_GETATTR]: [String(qids[1]!.path)],
      41: [String(qids[1]!.path)],
    };
    for (const [e, i] of replies) {
      if (e.kind !== "reply") continue;
      const prev = ev[i - 1];
      if (e.type in expected) {
        expect(prev?.kind).toBe("lease");
        if (prev?.kind !== "lease" || prev.m.lease !== "grant") throw new Error("no grant before the reply");
        expect(prev.m.tag).toBe(e.tag);
        expect(prev.m.q).toEqual(expected[e.type]);
      } else {
        // Rlopen carries none.
        expect(prev?.kind === "lease" && prev.m.lease === "grant" ? prev.m.tag : null).not.toBe(e.tag);
      }
    }
  });
});
